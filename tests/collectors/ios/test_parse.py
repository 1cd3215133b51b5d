"""Cisco IOS parser: golden files, mnemonics, malformed input and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each was
checked field by field against the document Elastic's pipeline produces for the same line in the
conformance corpus (`cisco_ios/log`). They differ from it only where the parser documents a
deliberate difference: `event.dataset` / `event.module`, `event.outcome` of `LOGIN_SUCCESS`,
`event.timezone` always set, and no GeoIP / ASN / community id. `@timestamp` is Elastic's value;
the lines carry no year, so only month, day and time are compared (the parser takes the current
year).
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

from collectors.ios import parse
from collectors.parsing import ParseError, SourceContext
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()
HEADER = "Jun 20 02:41:40 192.168.100.2 1663303: Jun 20 02:41:39.326: "


def _parse_or_reason(message: str, ctx: SourceContext = CTX) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, ctx)


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    doc = parse(message, CTX)
    assert doc.pop("@timestamp")[4:] == expected.pop("@timestamp")[4:]
    assert doc == expected


def test_acl_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "acl_fmanfp_permit_udp.log"), CTX)
    assert doc["@timestamp"].endswith("-07-11T09:34:00.334Z")
    assert doc["event"]["action"] == "allow"
    assert doc["event"]["type"] == ["info", "allowed"]
    assert doc["event"]["code"] == "IPACCESSLOGP"
    assert doc["event"]["sequence"] == 1663469
    assert doc["source"] == {
        "address": "172.16.0.26",
        "ip": "172.16.0.26",
        "port": 1985,
        "packets": 327,
    }
    assert doc["destination"] == {"address": "10.100.8.34", "ip": "10.100.8.34", "port": 1985}
    assert doc["network"] == {"transport": "udp", "packets": 327, "type": "ipv4"}
    assert doc["cisco"]["ios"]["access_list"] == "internet_in_gig0"
    assert doc["log"]["syslog"] == {"hostname": "my-router-hostname"}


# --------------------------------------------------------------------------- mnemonics


def test_interface_and_line_protocol_changes() -> None:
    doc = parse(HEADER + "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down", CTX)
    assert doc["cisco"]["ios"]["interface"] == {"name": "GigabitEthernet0/1"}
    assert doc["cisco"]["ios"]["state"] == "down"
    assert doc["log"]["level"] == "error"
    doc = parse(
        HEADER + "%LINEPROTO-5-UPDOWN: Line protocol on Interface Tunnel10, changed state to up",
        CTX,
    )
    assert doc["cisco"]["ios"]["interface"] == {"name": "Tunnel10"}
    assert doc["cisco"]["ios"]["state"] == "up"


def test_routing_neighbours() -> None:
    doc = parse(HEADER + "%BGP-5-ADJCHANGE: neighbor 203.0.113.9 Down BGP Notification sent", CTX)
    assert doc["cisco"]["ios"]["neighbor"] == {"ip": "203.0.113.9"}
    assert doc["cisco"]["ios"]["state"] == "Down"
    assert doc["event"]["reason"] == "BGP Notification sent"
    doc = parse(
        HEADER + "%OSPF-5-ADJCHG: Process 1, Nbr 10.0.0.2 on GigabitEthernet0/2 from LOADING to "
        "FULL, Loading Done",
        CTX,
    )
    assert doc["cisco"]["ios"]["neighbor"] == {"ip": "10.0.0.2"}
    assert doc["cisco"]["ios"]["state"] == "FULL"


def test_config_change_and_failed_login() -> None:
    doc = parse(
        HEADER + "%SYS-5-CONFIG_I: Configured from console by netadmin on vty0 (10.1.1.5)", CTX
    )
    assert doc["event"]["action"] == "configuration-change"
    assert doc["source"]["user"] == {"name": "netadmin"}
    assert doc["source"]["ip"] == "10.1.1.5"
    doc = parse(
        HEADER + "%SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: admin] [Source: 198.51.100.7] "
        "[localport: 22] [Reason: Login Authentication Failed] at 02:41:39 UTC Mon Jun 20 2024",
        CTX,
    )
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["reason"] == "Login Authentication Failed"
    assert doc["source"]["user"] == {"name": "admin"}
    assert doc["related"] == {"ip": ["198.51.100.7"], "user": ["admin"]}


def test_header_forms_and_time_zones() -> None:
    doc = parse("<189>123: *Mar  1 2024 18:46:11.123 CET: %SYS-5-RESTART: System restarted", CTX)
    assert doc["cisco"]["ios"]["message_count"] == 123
    assert doc["log"]["syslog"] == {"priority": 189}
    assert doc["@timestamp"] == "2024-03-01T18:46:11.123Z"  # CET is not known: the context zone
    doc = parse("<189>45: 2w3d: %SYS-5-RESTART: System restarted", CTX)
    assert doc["cisco"]["ios"]["uptime"] == "2w3d"
    assert "@timestamp" not in doc
    local = SourceContext(tz=timezone(timedelta(hours=7)))
    doc = parse("router1: 12: Jun 20 2024 02:41:39: %SYS-5-RESTART: x", local)
    assert doc["@timestamp"] == "2024-06-20T02:41:39.000+07:00"
    assert doc["log"]["syslog"] == {"hostname": "router1"}
    doc = parse("12: Jun 20 2024 02:41:39 EDT: %SYS-5-RESTART: x", local)
    assert doc["@timestamp"] == "2024-06-20T02:41:39.000-04:00"


def test_text_without_mnemonic() -> None:
    doc = parse("<189>45: Jun 20 02:41:39: plain text", CTX)
    assert doc["message"] == "plain text"
    assert "code" not in doc["event"]


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("message", ["", " ", "<189>", "hello world", "%SYS-5-X: y", "x y z"])
def test_no_header_is_a_parse_error(message: str) -> None:
    with pytest.raises(ParseError, match="no Cisco IOS header"):
        parse(message, CTX)


def test_binary_garbage() -> None:
    for raw in contract.garbage_bytes(20261123):
        for message in (raw.decode("latin-1"), raw.decode("utf-8", "replace")):
            for candidate in (message, HEADER + "%SEC-6-IPACCESSLOGP: " + message):
                result = _parse_or_reason(candidate)
                contract.assert_reason_or_original(result, candidate)


def test_truncated_line() -> None:
    line = HEADER + "%SEC-6-IPACCESSLOGP: list 177 denied udp 192.168.100.195(55250) -> 192.1"
    doc = parse(line, CTX)
    assert doc["event"]["code"] == "IPACCESSLOGP"
    assert "source" not in doc
    assert doc["event"]["type"] == ["info"]


def test_64_kib_line() -> None:
    message = HEADER + "%SYS-5-CONFIG_I: Configured from console by " + "x" * 65536
    started = time.perf_counter()
    doc = parse(message, CTX)
    assert time.perf_counter() - started < 1.0
    assert doc["event"]["original"] == message


@pytest.mark.parametrize(
    "message",
    [
        HEADER + "%TCP-6-BADAUTH: No MD5 digest from " + "a(1) to " * 8000,
        HEADER + "%PIM-6-INVALID_RP_JOIN: Received (" + "a, " * 20000,
        HEADER + "%SEC-6-IPACCESSLOGP: list a denied tcp " + "b(1) " * 10000,
        "<189>" + "1: " * 20000,
        "Jun 20 02:41:40 " * 5000,
        HEADER + "%" + "A-1-" * 15000,
    ],
)
def test_pathological_input_is_fast(message: str) -> None:
    started = time.perf_counter()
    _parse_or_reason(message)
    assert time.perf_counter() - started < 0.5


def test_huge_numbers_stay_text() -> None:
    digits = "9" * 40
    doc = parse(
        f"<189>{digits}: {HEADER}%SEC-6-IPACCESSLOGP: list 1 denied tcp 10.0.0.1({digits}) -> "
        f"10.0.0.2(22), {digits} packets",
        CTX,
    )
    json.dumps(doc, allow_nan=False)
    assert "port" not in doc.get("source", {})


# --------------------------------------------------------------------------- fuzz

_CODES = [
    "SEC-6-IPACCESSLOGP",
    "SEC-6-IPACCESSLOGDP",
    "IPV6_ACL-6-ACCESSLOGSP",
    "TCP-6-BADAUTH",
    "SEC_LOGIN-5-LOGIN_SUCCESS",
    "SYS-6-LOGOUT",
    "PIM-SW1-6-INVALID_RP_JOIN",
    "LINK-3-UPDOWN",
    "BGP-5-ADJCHANGE",
    "SYS-5-CONFIG_I",
    "FW-6-DROP_PKT",
    "X-99-Y",
]
_WORDS = [
    "list",
    "denied",
    "permitted",
    "tcp",
    "10.0.0.1(1)",
    "->",
    "::",
    "(3/4),",
    "1 packet",
    "[user: a]",
    "[Source: 1.2.3.4]",
    "[localport: 22]",
    "from",
    "to",
    "Received",
    "(*, 1.2.3.4)",
    "Join",
    "Interface",
    "changed state to",
    "neighbor",
    "Up",
    "by",
]
_body = st.lists(st.one_of(st.sampled_from(_WORDS), st.text(max_size=12)), max_size=20).map(
    " ".join
)
_line = st.tuples(
    st.sampled_from(
        [
            "",
            "<190>9004: ",
            "<999>",
            "Feb  8 04:00:48 192.168.100.2 585917: ",
            "Jul 11 09:34:00 r1 12: ",
            "r1: ",
        ]
    ),
    st.sampled_from(["Feb  8 04:00:47.272: ", "*Mar  1 18:46:11 UTC: ", "2w3d: ", ""]),
    st.sampled_from(["%", ""]),
    st.sampled_from(_CODES),
    st.sampled_from([": ", ":  R0/0: fman_fp_image: ", " "]),
    _body,
).map("".join)
_messages = st.one_of(st.text(max_size=300), _line)


@contract.FUZZ_SETTINGS
@given(_messages)
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
