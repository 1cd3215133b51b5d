"""Cisco ASA parser: golden files, message ids, malformed input and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each was
checked field by field against the document Elastic's pipeline produces for the same line in the
conformance corpus (`cisco_asa/log`). They differ from it only where the parser documents a
deliberate difference: `event.dataset` / `event.module`, `message` kept, `event.outcome`
"failure" for 106023, and no GeoIP / ASN / community id. `@timestamp` is Elastic's value; for a
line without a year only month, day and time are compared (the parser takes the current year).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.asa import parse
from collectors.parsing import ParseError, SourceContext
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()

TEARDOWN = (
    "<166>Jan 15 2021 19:12:37 fw-edge-01 : %ASA-6-302014: Teardown TCP connection 261246338 "
    "for OUTSIDE:67.43.156.15/50120(LOCAL\\domain\\USER001) to INSIDE:10.1.3.4/443 duration "
    "1:02:05 bytes 9610 TCP FINs from OUTSIDE (domain\\USER001)"
)


def _parse_or_reason(message: str, ctx: SourceContext = CTX) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, ctx)


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    doc = parse(message, CTX)
    if "@timestamp" in expected:
        want, got = expected.pop("@timestamp"), doc.pop("@timestamp")
        assert got[4:] == want[4:] if want[:4] not in message else got == want
    assert doc == expected


def test_icmp_outbound_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "icmp_outbound_nat.log"), CTX)
    assert doc["@timestamp"] == "2026-08-18T18:24:31.000Z"
    assert doc["source"] == {
        "address": "192.0.2.30",
        "ip": "192.0.2.30",
        "nat": {"ip": "198.51.100.10"},
    }
    assert doc["destination"] == {"address": "203.0.113.20", "ip": "203.0.113.20"}
    assert doc["network"] == {"direction": "outbound", "type": "icmp"}
    assert doc["event"]["action"] == "flow-creation"
    assert doc["event"]["type"] == ["connection", "start"]
    assert doc["cisco"]["asa"] == {
        "mapped_source_ip": "198.51.100.10",
        "icmp_type": 8,
        "icmp_code": 0,
    }


# --------------------------------------------------------------------------- message ids


def test_teardown_fields() -> None:
    doc = parse(TEARDOWN, CTX)
    assert doc["event"]["action"] == "flow-expiration"
    assert doc["event"]["duration"] == 3725 * 1_000_000_000
    assert doc["source"]["ip"] == "67.43.156.15"
    assert doc["source"]["port"] == 50120
    assert doc["source"]["user"] == {"name": "USER001", "domain": "domain"}
    assert doc["destination"]["port"] == 443
    assert doc["network"] == {"transport": "tcp", "iana_number": "6", "bytes": 9610}
    assert doc["observer"]["ingress"] == {"interface": {"name": "OUTSIDE"}}
    assert doc["observer"]["egress"] == {"interface": {"name": "INSIDE"}}
    assert doc["event"]["reason"] == "TCP FINs from OUTSIDE"


def test_built_outbound_swaps_sides_and_sets_nat() -> None:
    doc = parse(
        "Apr 29 2013 12:59:50: %ASA-6-302013: Built outbound TCP connection 89743274 for "
        "outside:192.168.2.43/443 (192.168.2.43/443) to inside:10.123.3.42/4952 "
        "(203.0.113.42/12834)",
        CTX,
    )
    assert doc["network"]["direction"] == "outbound"
    assert doc["source"] == {
        "address": "10.123.3.42",
        "ip": "10.123.3.42",
        "port": 4952,
        "nat": {"ip": "203.0.113.42", "port": 12834},
    }
    assert doc["destination"] == {"address": "192.168.2.43", "ip": "192.168.2.43", "port": 443}
    assert doc["cisco"]["asa"]["connection_id"] == "89743274"


@pytest.mark.parametrize(
    ("text", "action", "outcome"),
    [
        (
            "access-list acl_in permitted tcp inside/10.0.0.16(2006) -> outside/192.0.2.89(2000) "
            "hit-cnt 1 first hit [0x71a87d94, 0x0]",
            "firewall-rule",
            "success",
        ),
        (
            "access-list acl_in denied tcp inside/10.0.0.16(2006) -> outside/192.0.2.89(2000) "
            "hit-cnt 1 first hit [0x71a87d94, 0x0]",
            "firewall-rule",
            "failure",
        ),
    ],
)
def test_106100_outcome_from_text(text: str, action: str, outcome: str) -> None:
    doc = parse(f"Apr 30 2013 09:22:38: %ASA-5-106100: {text}", CTX)
    assert doc["event"]["action"] == action
    assert doc["event"]["outcome"] == outcome
    assert doc["cisco"]["asa"]["rule_name"] == "acl_in"
    assert doc["source"]["port"] == 2006


@pytest.mark.parametrize(
    ("message_id", "text", "outcome", "user"),
    [
        (
            "113004",
            "AAA user authentication Successful : server =  10.1.1.5 : user = alice",
            "success",
            "alice",
        ),
        (
            "113005",
            "AAA user authentication Rejected : reason = Invalid password : server = "
            "10.1.1.5 : user = bob : user IP = 198.51.100.7",
            "failure",
            "bob",
        ),
        (
            "605004",
            'Login denied from 198.51.100.7/52314 to outside:192.0.2.1/ssh for user "root"',
            "failure",
            "root",
        ),
        (
            "605005",
            'Login permitted from 10.0.0.5/52314 to inside:10.0.0.1/https for user "admin"',
            "success",
            "admin",
        ),
        (
            "611102",
            "User authentication failed: IP address: 198.51.100.7, Uname: eve",
            "failure",
            "eve",
        ),
    ],
)
def test_aaa_and_logins(message_id: str, text: str, outcome: str, user: str) -> None:
    doc = parse(f"<166>Jan 14 2015 13:16:13 fw1 : %ASA-6-{message_id}: {text}", CTX)
    assert doc["event"]["category"] == ["authentication", "network"]
    assert doc["event"]["outcome"] == outcome
    assert doc["source"]["user"]["name"] == user
    assert doc["related"]["user"] == [user]


def test_time_zone_in_the_log_and_in_the_context() -> None:
    line = (
        "Apr 15 2014 09:34:34 EDT: %ASA-session-5-106100: access-list a permitted tcp "
        "inside/10.1.2.16(2241) -> outside/192.0.2.89(2000) hit-cnt 1 first hit [0x0, 0x0]"
    )
    assert parse(line, CTX)["@timestamp"] == "2014-04-15T09:34:34.000-04:00"
    local = SourceContext(tz=timezone(timedelta(hours=7)))
    doc = parse(line.replace(" EDT", ""), local)
    assert doc["@timestamp"] == "2014-04-15T09:34:34.000+07:00"


def test_header_forms() -> None:
    doc = parse(
        "LOCAL4.WARNING: fw-1 %ASA-4-106023: Deny udp src a:10.8.1.9 dst b:172.16.1.3/53 "
        'by access-group "x" [0x0, 0x0]',
        CTX,
    )
    assert doc["process"] == {"name": "LOCAL4.WARNING"}
    assert doc["host"] == {"name": "fw-1"}
    assert "@timestamp" not in doc
    doc = parse(
        "2021-01-15T19:12:37+02:00 fw2 %ASA-6-302021: Teardown ICMP connection for "
        "faddr ff02::1/0 gaddr fe80::1/0 laddr fe80::1/0 type 134 code 0",
        CTX,
    )
    assert doc["@timestamp"] == "2021-01-15T19:12:37.000+02:00"
    assert doc["host"] == {"hostname": "fw2"}
    assert doc["source"]["ip"] == "ff02::1"
    assert doc["destination"]["ip"] == "fe80::1"


def test_unknown_message_id_keeps_the_text() -> None:
    doc = parse("<166>Jan 14 2015 13:16:13 fw1 : %ASA-7-999999: something new", CTX)
    assert doc["event"]["code"] == "999999"
    assert doc["event"]["severity"] == 7
    assert doc["log"]["level"] == "debug"
    assert doc["message"] == "something new"
    assert "type" not in doc["event"]


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "message", ["", " ", "<166>", "hello world", "%ASA", "%ASA-x-1: y", "Jan 1 00:00:00 h x"]
)
def test_no_label_is_a_parse_error(message: str) -> None:
    with pytest.raises(ParseError, match="no Cisco ASA"):
        parse(message, CTX)


def test_binary_garbage() -> None:
    for raw in contract.garbage_bytes(20261123):
        for message in (raw.decode("latin-1"), raw.decode("utf-8", "replace")):
            for candidate in (message, "%ASA-6-302013: " + message):
                result = _parse_or_reason(candidate)
                contract.assert_reason_or_original(result, candidate)


def test_truncated_line() -> None:
    cut = TEARDOWN[: TEARDOWN.index(" duration")]
    doc = parse(cut, CTX)
    assert doc["event"]["code"] == "302014"
    assert "source" not in doc
    assert doc["message"].startswith("Teardown TCP connection")


def test_64_kib_line() -> None:
    message = TEARDOWN + " " + "x" * 65536
    started = time.perf_counter()
    doc = parse(message, CTX)
    assert time.perf_counter() - started < 1.0
    assert doc["event"]["original"] == message
    with pytest.raises(ParseError):
        parse("x" * 65536 + " %ASA-6-302013: y", CTX)


@pytest.mark.parametrize(
    "message",
    [
        "%ASA-4-106023: Deny tcp src " + "a:" * 30000 + " dst",
        "%ASA-4-106023: Deny tcp src a:b dst " + "c:" * 30000 + ' by access-group "x"',
        "%ASA-6-302014: Teardown TCP connection 1 for a:b/1" + " to" * 20000,
        "%ASA-6-302013: Built inbound TCP connection 1 for " + "a:b/1 (c/2)" * 5000,
        "%ASA-6-302020: Built inbound ICMP connection for faddr " + "a/0 " * 10000,
        "<166>" + "Jan 1 " * 10000 + "%ASA-6-1: x",
    ],
)
def test_pathological_input_is_fast(message: str) -> None:
    started = time.perf_counter()
    _parse_or_reason(message)
    assert time.perf_counter() - started < 0.5


def test_huge_numbers_stay_text() -> None:
    digits = "9" * 40
    doc = parse(
        f"%ASA-6-302016: Teardown UDP connection 1 for o:10.0.0.1/{digits} to i:10.0.0.2/53 "
        f"duration {digits}:00:00 bytes {digits}",
        CTX,
    )
    json.dumps(doc, allow_nan=False)
    assert "port" not in doc["source"]
    assert "duration" not in doc["event"]
    assert "bytes" not in doc.get("network", {})


# --------------------------------------------------------------------------- fuzz

_IDS = [
    "106006",
    "106023",
    "106100",
    "302013",
    "302014",
    "302020",
    "305012",
    "113005",
    "605004",
    "751025",
    "304001",
    "338002",
    "1",
    "",
]
_WORDS = [
    "Deny",
    "Built",
    "Teardown",
    "inbound",
    "outbound",
    "tcp",
    "ICMP",
    "src",
    "dst",
    "for",
    "to",
    "faddr",
    "gaddr",
    "laddr",
    "in:10.0.0.1/80",
    "(10.0.0.1/80)",
    "fe80::1/0",
    "duration",
    "1:00:00",
    "bytes",
    "99",
    "access-list",
    "->",
    "inside/10.0.0.1(1)",
    'access-group "a"',
    "Local:1.2.3.4:5",
    "(LOCAL\\u)",
    "user = x",
]
_body = st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=12)), max_size=20).map(
    " ".join
)
_line = st.tuples(
    st.sampled_from(
        [
            "",
            "<166>",
            "<999>",
            "Apr 29 2013 12:59:50: ",
            "Jan 23 15:10:55 h ",
            "<166>Aug 18 2026 18:24:29 fw : ",
            "2021-01-15T19:12:37Z fw ",
        ]
    ),
    st.sampled_from(["%ASA-6-", "%FTD-session-5-", "%ASA-"]),
    st.sampled_from(_IDS),
    st.sampled_from([": ", " ", ":"]),
    _body,
).map("".join)
_messages = st.one_of(st.text(max_size=300), _line)


@contract.FUZZ_SETTINGS
@given(_messages)
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
