"""Suricata EVE parser: golden files, malformed input, and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one EVE record) beside `fixtures/<case>.ecs.json`; each
was checked field by field against the document Elastic's pipeline produces for the same record
in the conformance corpus (`suricata/eve/test-eve-small.log`). They differ from it only where the
parser documents a difference (`event.dataset`/`event.module`, no `event.created`, IPs in
canonical form in `*.ip` while `*.address` keeps the record's text, what `suricata.eve` keeps)
and in what Elastic enriches (GeoIP, community ID, user agent, x509 subject/issuer split,
registered domain).
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

from collectors.parsing import ParseError, SourceContext
from collectors.suricata import parse
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()

ALERT: dict[str, Any] = {
    "timestamp": "2018-07-05T15:07:20.910626-0400",
    "event_type": "alert",
    "src_ip": "10.0.0.5",
    "src_port": 55641,
    "dest_ip": "192.0.2.70",
    "dest_port": 443,
    "proto": "TCP",
    "alert": {
        "action": "blocked",
        "gid": 1,
        "signature_id": 2024833,
        "rev": 3,
        "signature": "ET POLICY test",
        "category": "Policy",
        "severity": 2,
    },
    "flow": {"pkts_toserver": 4, "pkts_toclient": 0, "bytes_toserver": 793, "bytes_toclient": 0},
}


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record)


def _parse_or_reason(message: str, ctx: SourceContext = CTX) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, ctx)


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    assert parse(message, CTX) == expected


def test_flow_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "flow_ipv6_new.log"), CTX)
    assert doc["@timestamp"] == "2018-07-05T19:51:54.001Z"
    assert doc["event"]["type"] == ["connection", "start"]
    assert doc["event"]["duration"] == 0
    assert doc["source"]["ip"] == "fe80::fada:cff:fedc:87f1"
    assert doc["source"]["address"] == "fe80:0000:0000:0000:fada:0cff:fedc:87f1"
    assert doc["network"] == {"transport": "udp", "bytes": 110, "packets": 1}
    assert doc["observer"] == {"vendor": "OISF", "product": "Suricata", "type": "ids"}


# --------------------------------------------------------------------------- event types


def test_blocked_alert_is_denied() -> None:
    doc = parse(_line(ALERT), CTX)
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["type"] == ["denied"]
    assert doc["event"]["severity"] == 2
    assert doc["rule"] == {"category": "Policy", "id": "2024833", "name": "ET POLICY test"}
    assert doc["network"] == {"transport": "tcp", "bytes": 793, "packets": 4}
    assert doc["destination"]["bytes"] == 0


def test_http_failure_and_url_parts() -> None:
    record = {
        "timestamp": "2020-12-09T16:02:43.000505+0000",
        "event_type": "http",
        "http": {"hostname": "h.example", "url": "/a/b?x=1#frag", "status": 404},
    }
    doc = parse(_line(record), CTX)
    assert doc["event"]["outcome"] == "failure"
    assert doc["url"] == {
        "domain": "h.example",
        "original": "/a/b?x=1#frag",
        "path": "/a/b",
        "query": "x=1",
        "fragment": "frag",
    }


def test_stats_is_a_metric() -> None:
    doc = parse('{"timestamp":"2018-07-05T15:51:23.009510-0400","event_type":"stats"}', CTX)
    assert doc["event"] == {
        "kind": "metric",
        "category": ["network"],
        "dataset": "suricata.eve",
        "module": "suricata",
        "original": '{"timestamp":"2018-07-05T15:51:23.009510-0400","event_type":"stats"}',
    }
    assert doc["@timestamp"] == "2018-07-05T19:51:23.009Z"


def test_time_without_offset_uses_context_zone() -> None:
    record = {"timestamp": "2020-01-01T10:00:00.5", "event_type": "flow"}
    assert parse(_line(record), CTX)["@timestamp"] == "2020-01-01T10:00:00.500Z"
    ctx = SourceContext(tz=timezone(timedelta(hours=7)))
    assert parse(_line(record), ctx)["@timestamp"] == "2020-01-01T03:00:00.500Z"


def test_failed_app_proto_sets_no_protocol() -> None:
    record = {"timestamp": "2020-01-01T10:00:00Z", "event_type": "flow", "app_proto": "failed"}
    assert "network" not in parse(_line(record), CTX)


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "message",
    ["", " ", "hello", "[1, 2]", '"text"', "{", '{"a": NaN}', '{"a": Infinity}', "null"],
)
def test_not_an_object_is_a_parse_error(message: str) -> None:
    with pytest.raises(ParseError):
        parse(message, CTX)


@pytest.mark.parametrize(
    "record",
    [
        {"timestamp": "not a time", "src_port": "x", "dest_port": 70000, "proto": 6},
        {"timestamp": 12, "src_ip": ["a"], "flow": "x", "alert": [], "http": {"status": "ok"}},
        {"event_type": "flow", "flow": {"start": "2020-13-01T00:00:00Z", "bytes_toserver": -5}},
        {"event_type": "tls", "app_proto": "tls", "tls": {"version": 3, "ja3": "x", "sni": 5}},
        {"event_type": "dns", "dns": {"type": "answer", "rdata": {"x": 1}, "ttl": True}},
        {"src_port": True, "flow": {"pkts_toserver": 2**70}, "alert": {"severity": 1.5}},
        {"flow": {"state": {}}, "event_type": ["alert"], "app_proto": {"x": 1}},
    ],
)
def test_wrong_types_are_left_in_the_vendor_namespace(record: dict[str, Any]) -> None:
    doc = parse(_line(record), CTX)
    json.dumps(doc, allow_nan=False)
    assert doc["event"]["original"] == _line(record)


def test_binary_garbage() -> None:
    contract.check_binary_garbage(_parse_or_reason, seed=20240523)


def test_truncated_record() -> None:
    line = contract.read_line(FIXTURES / "alert_tls_allowed.log")
    for cut in (1, 20, len(line) // 2, len(line) - 1):
        assert isinstance(_parse_or_reason(line[:cut]), str)


@pytest.mark.parametrize(
    "message",
    [
        _line({**ALERT, "payload_printable": "x" * 65536}),
        "[" * 65536 + "]" * 65536,
        '{"a": ' + "9" * 65536 + "}",
        '{"timestamp": "' + "2" * 65536 + '"}',
    ],
)
def test_64_kib_line(message: str) -> None:
    started = time.perf_counter()
    result = _parse_or_reason(message)
    assert time.perf_counter() - started < 0.5
    contract.assert_reason_or_original(result, message)


# --------------------------------------------------------------------------- fuzz

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=20),
    st.sampled_from(["alert", "flow", "http", "tls", "dns", "new", "closed", "blocked", "::1"]),
)
_keys = st.sampled_from(
    [
        "timestamp",
        "event_type",
        "src_ip",
        "dest_ip",
        "src_port",
        "dest_port",
        "proto",
        "app_proto",
        "flow",
        "alert",
        "http",
        "tls",
        "dns",
        "fileinfo",
        "ether",
        "state",
        "start",
        "end",
        "status",
        "url",
        "sni",
        "version",
        "ja3",
        "hash",
        "rdata",
        "type",
    ]
)
_values = st.recursive(
    _scalar, lambda inner: st.dictionaries(_keys, inner, max_size=6), max_leaves=20
)
_records = st.dictionaries(_keys, _values, max_size=12).map(json.dumps)


@contract.FUZZ_SETTINGS
@given(st.one_of(st.text(max_size=200), _records))
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
