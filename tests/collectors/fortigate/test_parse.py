"""FortiGate parser: golden files, malformed input, context handling, and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each was
checked field by field against the document Elastic's pipeline produces for the same line in the
conformance corpus (`fortinet_fortigate/log/test-fortinet.log`). They differ from it only where
the parser documents a deliberate difference: `event.dataset`/`event.module`,
`observer.*.zone`, `user.name` copied from `source.user.name`.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.fortigate import parse
from collectors.parsing import ParseError, SourceContext
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()

TRAFFIC = (
    '<189>date=2023-05-02 time=08:31:47 devname="fw1" devid="FG100" eventtime=1683012706143815633 '
    'tz="+0200" logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" '
    'srcip=10.10.10.6 srcport=61031 srcintf="port1" dstip=8.8.8.8 dstport=53 dstintf="wan1" '
    'proto=17 action="accept" policyid=7 service="DNS" sentbyte=60 rcvdbyte=120'
)


def _parse_or_reason(message: str, ctx: SourceContext = CTX) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, ctx)


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    assert parse(message, CTX) == expected


def test_traffic_deny_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "traffic_forward_deny.log"), CTX)
    assert doc["@timestamp"] == "2023-05-02T08:31:47.000+02:00"
    assert doc["event"]["start"] == "2023-05-02T09:31:46.143+02:00"  # eventtime, ns
    assert doc["event"]["type"] == ["connection", "end", "denied"]
    assert doc["event"]["outcome"] == "success"  # Elastic: any traffic action is a success
    assert doc["source"] == {
        "ip": "10.10.10.6",
        "mac": "B4-B5-B6-E6-DB-BB",
        "port": 61031,
        "bytes": 0,
        "packets": 0,
        "user": {"name": "USER-NAME"},
    }
    assert doc["network"]["direction"] == "internal"
    assert doc["network"]["transport"] == "tcp"
    assert doc["host"]["name"] == "hostname-for-pc"
    assert doc["fortinet"]["firewall"]["srcname"] == "HOSTNAME-FOR-PC"


# --------------------------------------------------------------------------- framing and time


def test_pri_is_optional() -> None:
    with_pri = parse(TRAFFIC, CTX)
    without = parse(TRAFFIC.removeprefix("<189>"), CTX)
    assert with_pri["log"]["syslog"] == {
        "priority": 189,
        "facility": {"code": 23},
        "severity": {"code": 5},
    }
    assert "syslog" not in without["log"]
    for doc in (with_pri, without):
        del doc["log"], doc["event"]["original"]
    assert with_pri == without


def test_rfc5424_header_names_the_observer() -> None:
    body = TRAFFIC.removeprefix("<189>").replace('devname="fw1" ', "")
    doc = parse(f"<189>1 2023-05-02T06:31:47Z fw-edge-01 - - - - {body}", CTX)
    assert doc["observer"]["name"] == "fw-edge-01"
    assert doc["source"]["ip"] == "10.10.10.6"


def test_traffic_fields() -> None:
    doc = parse(TRAFFIC, CTX)
    assert doc["event"]["action"] == "accept"
    assert doc["event"]["type"] == ["connection", "end", "allowed"]
    assert doc["network"] == {
        "iana_number": "17",
        "protocol": "dns",
        "direction": "outbound",
        "bytes": 180,
        "transport": "udp",
    }
    assert doc["rule"] == {"id": "7"}
    assert doc["observer"]["ingress"] == {"interface": {"name": "port1"}}


@pytest.mark.parametrize(
    "eventtime",
    ["1683012706", "1683012706000", "1683012706000000", "1683012706000000000"],
)
def test_eventtime_units(eventtime: str) -> None:
    doc = parse(TRAFFIC.replace("1683012706143815633", eventtime), CTX)
    assert doc["event"]["start"] == "2023-05-02T09:31:46.000+02:00"


def test_timestamp_from_eventtime_without_date() -> None:
    message = TRAFFIC.replace("date=2023-05-02 time=08:31:47 ", "")
    assert parse(message, CTX)["@timestamp"] == "2023-05-02T09:31:46.143+02:00"


def test_context_time_zone_applies_without_tz_field() -> None:
    message = TRAFFIC.replace('tz="+0200" ', "")
    assert parse(message, CTX)["@timestamp"] == "2023-05-02T08:31:47.000Z"
    local = SourceContext(tz=timezone(timedelta(hours=3)))
    assert parse(message, local)["@timestamp"] == "2023-05-02T08:31:47.000+03:00"


def test_human_time_zone_text() -> None:
    doc = parse(TRAFFIC.replace('tz="+0200"', 'tz="UTC-5:00"'), CTX)
    assert doc["event"]["timezone"] == "-0500"
    assert doc["@timestamp"] == "2023-05-02T08:31:47.000-05:00"


def test_invalid_date_keeps_the_text() -> None:
    doc = parse(TRAFFIC.replace("date=2023-05-02", "date=2023-13-45"), CTX)
    assert doc["@timestamp"] == doc["event"]["start"]
    assert doc["fortinet"]["firewall"]["date"] == "2023-13-45"


def test_internal_networks_from_context() -> None:
    assert parse(TRAFFIC, CTX)["network"]["direction"] == "outbound"
    ctx = SourceContext(internal_networks=("8.8.8.0/24",))
    assert parse(TRAFFIC, ctx)["network"]["direction"] == "inbound"
    ctx = SourceContext(internal_networks=("private", "public"))
    assert parse(TRAFFIC, ctx)["network"]["direction"] == "internal"


def test_observer_ip_from_the_syslog_sender() -> None:
    assert "ip" not in parse(TRAFFIC, CTX)["observer"]
    doc = parse(TRAFFIC, SourceContext(observer_ip="192.0.2.10"))
    assert doc["observer"]["ip"] == ["192.0.2.10"]
    assert "ip" not in parse(TRAFFIC, SourceContext(observer_ip="fw.example"))["observer"]


def test_unknown_internal_network_name_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="neither a CIDR block nor one of"):
        parse(TRAFFIC, SourceContext(internal_networks=("intranet",)))


def test_invalid_address_stays_in_vendor_namespace() -> None:
    doc = parse(TRAFFIC.replace("srcip=10.10.10.6", "srcip=10.10.10.666"), CTX)
    assert "ip" not in doc["source"]
    assert doc["fortinet"]["firewall"]["srcip"] == "10.10.10.666"
    assert "direction" not in doc["network"]


def test_control_characters_are_removed() -> None:
    doc = parse(TRAFFIC + " passedcount=9\x00", CTX)
    assert doc["fortinet"]["firewall"]["passedcount"] == "9"
    doc = parse(TRAFFIC.replace(" srcport=", "\tsrcport="), CTX)
    assert doc["source"]["port"] == 61031


def test_not_applicable_values_are_dropped() -> None:
    doc = parse('type="event" subtype="vpn" user="N/A" group="N/A" msg="x"', CTX)
    assert "user" not in doc.get("source", {})


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "message",
    ["", " ", "<189>", "<189>   ", "hello world", "no pairs here at all", "=value", '""'],
)
def test_no_pairs_is_a_parse_error(message: str) -> None:
    with pytest.raises(ParseError, match="no key=value pairs"):
        parse(message, CTX)


def test_binary_garbage() -> None:
    contract.check_binary_garbage(_parse_or_reason, seed=20240523)


def test_truncated_quote_runs_to_the_end() -> None:
    doc = parse('<190>devname="fw1" type="event" msg="Administrator admin login fail', CTX)
    assert doc["message"] == "Administrator admin login fail"
    assert doc["observer"]["name"] == "fw1"


def test_truncated_line() -> None:
    cut = TRAFFIC[: TRAFFIC.index('service="DNS"') + len('service="DN')]
    doc = parse(cut, CTX)
    assert doc["observer"]["name"] == "fw1"
    assert doc["source"]["port"] == 61031
    assert doc["network"]["protocol"] == "dn"
    assert "bytes" not in doc["source"]


def test_64_kib_line() -> None:
    message = TRAFFIC + ' msg="' + "x" * 65536 + '"'
    started = time.perf_counter()
    doc = parse(message, CTX)
    assert time.perf_counter() - started < 1.0
    assert len(doc["message"]) == 65536
    assert doc["event"]["original"] == message
    long_key = parse("k" * 65536 + "=v", CTX)
    assert long_key["fortinet"]["firewall"] == {"k" * 65536: "v"}


@pytest.mark.parametrize(
    "field",
    ["eventtime", "srcport", "sentbyte", "duration", "jitter", "auditid", "date"],
)
def test_huge_numbers_stay_text(field: str) -> None:
    """Beyond Python's 4300-digit int() limit and beyond a 64-bit long: kept as text."""
    digits = "9" * 5000
    doc = parse(f'type="event" subtype="system" {field}={digits} msg="x"', CTX)
    json.dumps(doc, allow_nan=False)
    assert doc["fortinet"]["firewall"][field] == digits
    doc = parse('type="traffic" duration=9999999999999999999 sentbyte=9223372036854775807', CTX)
    assert "duration" not in doc["event"]
    assert doc["source"]["bytes"] == 2**63 - 1
    doc = parse(f"type=traffic proto={digits} tz={digits} date=2020-01-01 time=00:00:00", CTX)
    assert doc["network"] == {"iana_number": digits}
    assert doc["event"]["timezone"] == digits
    assert doc["@timestamp"] == "2020-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "message",
    [
        'type="event" msg="Administrator ' + "a login b from c " * 2000 + '"',
        'type="event" msg="Administrator ' + "x logged in y from z " * 2000 + '"',
        'type="event" msg="Login from ssh: ' + "a for b from c port " * 2000 + ' for"',
        'type="traffic" url="http://' + "a@" * 30000 + '"',
        "<13>1 2020-01-01T00:00:00Z h a p m [" + "x " * 30000,
        "a=" * 30000,
        'a="' * 20000,
    ],
)
def test_pathological_input_is_fast(message: str) -> None:
    started = time.perf_counter()
    _parse_or_reason(message)
    assert time.perf_counter() - started < 0.5


def test_output_is_strict_json() -> None:
    message = TRAFFIC + ' jitter="nan" latency="1.5" mem="abc"'
    doc = parse(message.replace('type="traffic"', 'type="event"'), CTX)
    json.dumps(doc, allow_nan=False)
    assert doc["fortinet"]["firewall"]["latency"] == 1.5
    assert doc["fortinet"]["firewall"]["jitter"] == "nan"


# --------------------------------------------------------------------------- fuzz

_KEYS = [
    "date",
    "time",
    "tz",
    "eventtime",
    "type",
    "subtype",
    "action",
    "srcip",
    "dstip",
    "srcport",
    "dstport",
    "proto",
    "sentbyte",
    "rcvdbyte",
    "duration",
    "msg",
    "url",
    "ipaddr",
    "user",
    "userfrom",
    "tlsver",
    "san",
    "addr",
    "dir",
    "interface",
    "srcmac",
    "utmaction",
    "app",
]
_VALUES = [
    "traffic",
    "utm",
    "event",
    "dns",
    "vpn",
    "user",
    "deny",
    "pass",
    "block",
    "FSSO-logon",
    "perf-stats",
    "2020-04-23",
    "12:17:48",
    "-0500",
    "UTC-5:00",
    "1587230269052907555",
    "10.0.0.1",
    "::1",
    "6",
    "17",
    "N/A",
    "http://h/p?q#f",
    "JSON(1.2.3.4)",
    "Administrator a login failed from ssh(1.2.3.4) x",
    "Login from ssh: Failed for a from 1.2.3.4 port 22",
    "TLSv1.3",
    "outgoing",
]
_key = st.one_of(st.sampled_from(_KEYS), st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True))
_value = st.one_of(
    st.sampled_from(_VALUES),
    st.text(max_size=40),
    st.text(alphabet="0123456789", min_size=10, max_size=6000),
)
_pair = st.tuples(_key, _value, st.booleans()).map(
    lambda kv: f'{kv[0]}="{kv[1]}"' if kv[2] else f"{kv[0]}={kv[1]}"
)
_line = st.tuples(
    st.sampled_from(["", "<189>", "<7>", "<999>", "<13>1 2020-01-01T00:00:00Z h a p m - "]),
    st.lists(_pair, max_size=25),
).map(lambda parts: parts[0] + " ".join(parts[1]))
_messages = st.one_of(st.text(max_size=300), _line)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_messages)
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
