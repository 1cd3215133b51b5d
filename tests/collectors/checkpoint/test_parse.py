"""Check Point parser: golden files, malformed input, envelope handling, and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each was
checked field by field against the document Elastic's pipeline produces for the same line in the
conformance corpus (`checkpoint/firewall`). They differ from it only where the parser documents
a deliberate difference: `event.dataset` / `event.module` and `log.syslog.*` (the PRI) are set;
`checkpoint.packets` stays text (Elastic splits it into `checkpoint.packets_dropped`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.checkpoint import parse
from collectors.parsing import ParseError, SourceContext
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()

TRAFFIC = (
    '<134>1 2024-03-01T10:00:00Z gw-01 CheckPoint 2001 - [action:"Accept"; flags:"411908"; '
    'ifdir:"outbound"; ifname:"eth1"; loguid:"{0x1,0x2,0x3,0x4}"; origin:"10.0.0.1"; '
    'sequencenum:"7"; time:"1709287200"; version:"5"; dst:"198.51.100.10"; inzone:"Internal"; '
    'outzone:"External"; product:"VPN-1 & FireWall-1"; proto:"6"; rule_action:"Accept"; '
    'rule_name:"Allow web"; rule_uid:"abc-123"; s_port:"50123"; service:"443"; '
    'src:"10.1.2.3"; xlatedport:"0"; xlatedst:"0.0.0.0"; xlatesport:"40001"; '
    'xlatesrc:"203.0.113.5"; client_outbound_bytes:"1200"; server_outbound_bytes:"3400"; '
    'client_outbound_packets:"10"; server_outbound_packets:"12"]'
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


def test_failed_login_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "admin_login_failed.log"), CTX)
    assert doc["@timestamp"] == "2023-12-27T09:39:55.000Z"  # `time`, UNIX seconds
    assert doc["event"]["action"] == "logon-failed"
    assert doc["event"]["category"] == ["authentication"]
    assert doc["event"]["type"] == ["start"]
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["reason"] == "Wrong Password"
    assert doc["source"]["ip"] == "172.28.11.213"
    assert doc["user"] == {"name": "i.biachi@customer.com"}
    assert doc["observer"] == {
        "name": "192.168.1.153",
        "product": "SmartConsole",
        "type": "firewall",
        "vendor": "Checkpoint",
    }


# --------------------------------------------------------------------------- record kinds


def test_network_connection() -> None:
    doc = parse(TRAFFIC, CTX)
    assert doc["event"]["action"] == "Accept"
    assert doc["event"]["category"] == ["network"]
    assert doc["event"]["type"] == ["allowed", "connection"]
    assert doc["event"]["outcome"] == "success"
    assert doc["source"] == {
        "ip": "10.1.2.3",
        "port": 50123,
        "bytes": 1200,
        "packets": 10,
        "nat": {"ip": "203.0.113.5", "port": 40001},
    }
    assert doc["destination"] == {"ip": "198.51.100.10", "port": 443, "bytes": 3400, "packets": 12}
    assert doc["network"]["transport"] == "tcp"
    assert doc["network"]["bytes"] == 4600
    assert doc["network"]["packets"] == 22
    assert doc["observer"]["ingress"] == {"zone": "Internal"}
    assert doc["observer"]["egress"] == {"zone": "External", "interface": {"name": "eth1"}}
    assert doc["rule"] == {"name": "Allow web", "uuid": "abc-123"}


def test_prevent_is_an_alert() -> None:
    doc = parse(TRAFFIC.replace('rule_action:"Accept"', 'rule_action:"Prevent"'), CTX)
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["type"] == ["connection", "denied"]
    assert doc["event"]["category"] == ["network", "intrusion_detection"]


def test_pairs_without_syslog_header() -> None:
    body = TRAFFIC[TRAFFIC.index("[") :]
    doc = parse(body, CTX)
    assert doc["source"]["ip"] == "10.1.2.3"
    assert "log" not in doc


def test_header_time_when_no_time_field() -> None:
    doc = parse(TRAFFIC.replace('time:"1709287200"; ', ""), CTX)
    assert doc["@timestamp"] == "2024-03-01T10:00:00.000Z"


def test_escaped_characters_in_values() -> None:
    doc = parse('[action:"Drop"; rule_name:"say \\"hi\\" \\] now"; origin:"fw"]', CTX)
    assert doc["rule"]["name"] == 'say "hi" ] now'


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "message",
    ["", " ", "<134>", "<134>1 - - - - - []", "hello world", 'key="value"', "[a:b]"],
)
def test_no_pairs_is_a_parse_error(message: str) -> None:
    with pytest.raises(ParseError, match="no key"):
        parse(message, CTX)


def test_binary_garbage() -> None:
    for raw in contract.garbage_bytes(20261123):
        for message in (raw.decode("latin-1"), 'a:"' + raw.decode("utf-8", "replace") + '"'):
            result = _parse_or_reason(message)
            contract.assert_reason_or_original(result, message)


@pytest.mark.parametrize("cut", [5, 40, 120, 300, len(TRAFFIC) - 2])
def test_truncated_line(cut: int) -> None:
    message = TRAFFIC[:cut]
    result = _parse_or_reason(message)
    contract.assert_reason_or_original(result, message)


def test_invalid_values_stay_in_vendor_namespace() -> None:
    doc = parse(TRAFFIC.replace('src:"10.1.2.3"', 'src:"nowhere"').replace('"50123"', '"x"'), CTX)
    assert "ip" not in doc["source"]
    assert doc["checkpoint"]["src"] == "nowhere"
    assert doc["checkpoint"]["s_port"] == "x"


def test_64_kib_line() -> None:
    message = TRAFFIC.replace('rule_name:"Allow web"', 'rule_name:"' + "x" * 65536 + '"')
    started = time.perf_counter()
    doc = parse(message, CTX)
    assert time.perf_counter() - started < 1.0
    assert doc["rule"]["name"] == "x" * 65536
    for huge in ("k" * 65536, "k" * 65536 + ':"', 'a:"' + "\\" * 65536, "[" + 'a:"b"; ' * 9000):
        started = time.perf_counter()
        assert isinstance(_parse_or_reason(huge), (str, dict))
        assert time.perf_counter() - started < 1.0


def test_output_is_strict_json() -> None:
    for case in CASES:
        json.dumps(parse(contract.read_line(FIXTURES / f"{case}.log"), CTX), allow_nan=False)


# --------------------------------------------------------------------------- fuzz

_fragments = st.sampled_from(
    [TRAFFIC, '"', ":", "; ", "[", "]", "\\", 'time:"', 'src:"', 'operation:"Log In"', "<134>1 "]
)
_messages = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(_fragments, st.text(max_size=20)), max_size=12).map("".join),
    st.dictionaries(
        st.sampled_from(["time", "src", "dst", "service", "proto", "action", "rule_action", "x"]),
        st.text(max_size=30),
        max_size=6,
    ).map(lambda pairs: "[" + "; ".join(f'{k}:"{v}"' for k, v in pairs.items()) + "]"),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_messages)
def test_fuzz_parse_error_or_document(message: str) -> None:
    result = _parse_or_reason(message)
    contract.assert_reason_or_original(result, message)
