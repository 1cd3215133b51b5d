"""Snort parser: golden files, malformed input, context handling, and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each was
checked field by field against the document Elastic's pipeline produces for the same line in the
conformance corpus (`snort/log/test-log-fast.log`, `test-log-syslog.log`, parsed in
America/Chicago with the year taken from a fixed `now`). They differ from it only where the
parser documents a difference (`event.dataset`/`event.module`, `network.iana_number` for the
syslog form, `event.created` equal to `@timestamp`) and in what Elastic enriches (GeoIP,
community ID).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.parsing import ParseError, SourceContext
from collectors.snort import parse
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CHICAGO = SourceContext(tz=ZoneInfo("America/Chicago"))
NOW = datetime(2022, 10, 1, tzinfo=UTC)
CTX = SourceContext()

FAST = (
    "05/30-19:09:28.472094  [**] [1:2012811:2] ET DNS DNS Query to a .tk domain [**] "
    "[Classification: Potentially Bad Traffic] [Priority: 2] {UDP} 192.168.88.10:1029 -> "
    "175.16.199.1:53"
)
SYSLOG = (
    "<33>Sep  5 16:05:26 sensor-1 snort[4242]: [1:1000017:0] UDP Connection "
    "[Classification: Misc activity] [Priority: 3] {UDP} 10.150.10.44:55776 -> 10.25.10.22:32414"
)


def _parse_or_reason(message: str, ctx: SourceContext = CTX) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, ctx, now=NOW)


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    assert parse(message, CHICAGO, now=NOW) == expected


def test_fast_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "fast_dns_query_outbound.log"), CHICAGO, now=NOW)
    assert doc["@timestamp"] == "2022-05-30T19:09:28.472-05:00"
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["severity"] == 2
    assert doc["rule"] == {
        "id": "2012811",
        "version": "2",
        "description": "ET DNS DNS Query to a .tk domain - Likely Hostile",
        "category": "Potentially Bad Traffic",
    }
    assert doc["source"] == {"address": "192.168.88.10", "ip": "192.168.88.10", "port": 1029}
    assert doc["network"]["direction"] == "outbound"
    assert doc["observer"] == {"vendor": "snort", "product": "ids", "type": "ids"}


# --------------------------------------------------------------------------- forms and time


def test_syslog_header_fields() -> None:
    doc = parse(SYSLOG, CTX, now=NOW)
    assert doc["log"] == {"syslog": {"priority": 33}}
    assert doc["observer"]["name"] == "sensor-1"
    assert doc["process"] == {"name": "snort", "pid": 4242}
    assert doc["@timestamp"] == "2022-09-05T16:05:26.000Z"


def test_syslog_observer_ip() -> None:
    doc = parse(SYSLOG.replace("sensor-1", "192.0.2.7"), CTX, now=NOW)
    assert doc["observer"]["ip"] == "192.0.2.7"
    assert "name" not in doc["observer"]


def test_fast_with_year() -> None:
    doc = parse(FAST.replace("05/30-", "05/30/19-"), CTX, now=NOW)
    assert doc["@timestamp"] == "2019-05-30T19:09:28.472Z"


def test_year_rollover() -> None:
    december = FAST.replace("05/30-", "12/31-")
    january_now = datetime(2023, 1, 1, 3, tzinfo=UTC)
    assert parse(december, CTX, now=january_now)["@timestamp"].startswith("2022-12-31")
    january = FAST.replace("05/30-", "01/01-")
    december_now = datetime(2022, 12, 31, 20, tzinfo=UTC)
    assert parse(january, CTX, now=december_now)["@timestamp"].startswith("2023-01-01")


def test_internal_networks_from_context() -> None:
    assert parse(FAST, CTX, now=NOW)["network"]["direction"] == "outbound"
    ctx = SourceContext(internal_networks=("175.16.0.0/16",))
    assert parse(FAST, ctx, now=NOW)["network"]["direction"] == "inbound"


def test_ipv6_endpoints() -> None:
    doc = parse(FAST.replace("192.168.88.10:1029", "fe80:0000::1"), CTX, now=NOW)
    assert doc["source"] == {"address": "fe80:0000::1", "ip": "fe80::1"}
    assert doc["network"]["type"] == "ipv6"


def test_description_with_brackets() -> None:
    doc = parse(FAST.replace("ET DNS DNS", "ET [DNS] query"), CTX, now=NOW)
    assert doc["rule"]["description"] == "ET [DNS] query Query to a .tk domain"


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "message",
    [
        "",
        " ",
        "hello world",
        "<13>Sep  5 16:05:26 dev snort: not an alert",
        "13/45-19:09:28.472094  [**] [1:2:3] x [**] [Priority: 2] {UDP} 1.2.3.4 -> 5.6.7.8",
        "Sep 31 16:05:26 dev snort: [1:2:3] x [Priority: 2] {UDP} 1.2.3.4 -> 5.6.7.8",
    ],
)
def test_not_an_alert_is_a_parse_error(message: str) -> None:
    with pytest.raises(ParseError):
        parse(message, CTX, now=NOW)


def test_binary_garbage() -> None:
    contract.check_binary_garbage(_parse_or_reason, seed=20240523)


@pytest.mark.parametrize("cut", [10, 30, 60, 100, 140, len(FAST) - 3])
def test_truncated_line(cut: int) -> None:
    result = _parse_or_reason(FAST[:cut])
    contract.assert_reason_or_original(result, FAST[:cut])


def test_truncated_port_still_parses() -> None:
    doc = parse(FAST[:-1], CTX, now=NOW)
    assert doc["destination"]["port"] == 5


def test_invalid_address_is_kept_as_address_only() -> None:
    doc = parse(FAST.replace("192.168.88.10", "999.168.88.10"), CTX, now=NOW)
    assert doc["source"] == {"address": "999.168.88.10", "port": 1029}
    assert doc["network"]["direction"] == "unknown"


@pytest.mark.parametrize(
    "message",
    [
        FAST.replace("ET DNS", "x" * 65536),
        "01/01-00:00:00.1 [**] [1:2:3] " + "[**] " * 13000,
        "01/01-00:00:00.1 [**] [1:2:3] " + " " * 65536 + "[**]",
        "Sep  5 16:05:26 dev snort: [1:1:0] " + "[Priority: 3] {UDP} " * 3200,
        "Sep  5 16:05:26 dev snort: [1:1:0] " + "a" * 65536,
    ],
)
def test_64_kib_line_is_fast(message: str) -> None:
    started = time.perf_counter()
    result = _parse_or_reason(message)
    assert time.perf_counter() - started < 0.5
    contract.assert_reason_or_original(result, message)


def test_huge_numbers_are_not_numbers() -> None:
    doc = parse(FAST.replace("[Priority: 2]", "[Priority: 9999999999]"), CTX, now=NOW)
    assert doc["event"]["severity"] == 9999999999
    doc = parse(SYSLOG.replace("[4242]", "[9999999999]"), CTX, now=NOW)
    assert doc["process"] == {"name": "snort"}
    doc = parse(FAST.replace(":1029", ":99999"), CTX, now=NOW)
    assert "port" not in doc["source"]


# --------------------------------------------------------------------------- fuzz

_parts = st.sampled_from(
    [
        "05/30-19:09:28.472094 ",
        "Sep  5 16:05:26 dev snort: ",
        "<13>",
        "[**] ",
        "[1:2:3] ",
        "[Classification: x] ",
        "[Priority: 2] ",
        "{TCP} ",
        "1.2.3.4:80 ",
        "-> ",
        "::1 ",
        "99/99-99:99:99.9 ",
        "Feb 30 25:61:61 h p[1]: ",
    ]
)
_line = st.lists(st.one_of(_parts, st.text(max_size=12)), max_size=20).map("".join)


@contract.FUZZ_SETTINGS
@given(st.one_of(st.text(max_size=300), _line))
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
