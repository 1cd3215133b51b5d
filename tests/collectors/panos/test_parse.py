"""PAN-OS parser: golden files, malformed input, envelope handling, and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each was
checked field by field against the document Elastic's pipeline produces for the same line in the
conformance corpus (`panw/panos`), in the time zone of that test's config (`_CASE_TZ`). They
differ from it only where the parser documents a deliberate difference: `event.dataset` /
`event.module`; no GeoIP, `network.community_id`, `labels.*`; `related.ip` without the
untranslated NAT address 0.0.0.0; and the THREAT case's `@timestamp`, which Elastic's test
produced in an unstated +09:30 zone (the parser reads it in UTC, as the test config says nothing).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.panos import parse
from collectors.parsing import ParseError, SourceContext
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
EST = timezone(timedelta(hours=-5))
CTX = SourceContext(tz=EST)
# The configured time zone of the corpus test each golden line comes from.
_CASE_TZ: dict[str, tzinfo | None] = {"system_general": UTC, "threat_url_alert": None}

TRAFFIC = (
    "1,2012/10/30 09:46:12,01606001116,TRAFFIC,end,1,2012/04/10 04:39:58,192.168.0.2,"
    "175.16.199.1,203.0.113.7,0.0.0.0,rule1,EXAMPLE\\crusher,,web-browsing,vsys1,trust,untrust,"
    "ethernet1/2,ethernet1/1,forwardAll,2012/04/10 04:39:59,11449,1,59324,80,40001,0,0x200000,"
    "tcp,deny,300,100,200,6,2012/04/10 04:39:59,12,any,0,77,0x0,192.168.0.0-192.168.255.255,"
    "United States,0,4,2,policy-deny,0,0,0,0,,PA-VM"
)


def _parse_or_reason(message: str, ctx: SourceContext = CTX) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, ctx)


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    ctx = SourceContext(tz=_CASE_TZ.get(case, EST))
    assert parse(message, ctx) == expected


def test_traffic_start_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "traffic_start.log"), CTX)
    assert doc["@timestamp"] == "2012-04-10T04:39:58.000-05:00"  # generated time, not received
    assert doc["event"]["action"] == "flow_started"
    assert doc["event"]["type"] == ["allowed", "start", "connection"]
    assert doc["event"]["end"] == "2012-04-10T04:39:59.000-05:00"
    assert doc["source"] == {
        "ip": "192.168.0.2",
        "port": 59324,
        "bytes": 78,
        "packets": 1,
        "user": {"name": "crusher"},
    }
    assert "nat" not in doc["destination"]  # 0.0.0.0 / 0: no translation
    assert doc["panw"]["panos"]["destination"]["nat"] == {"ip": "0.0.0.0", "port": 0}
    assert doc["observer"]["ingress"] == {"interface": {"name": "ethernet1/2"}, "zone": "trust"}


# --------------------------------------------------------------------------- log types


def test_traffic_deny_end() -> None:
    doc = parse(TRAFFIC, CTX)
    assert doc["event"]["action"] == "flow_terminated"
    assert doc["event"]["type"] == ["denied", "end", "connection"]
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["duration"] == 12_000_000_000
    assert doc["source"]["nat"] == {"ip": "203.0.113.7", "port": 40001}
    assert doc["user"] == {"name": "crusher", "domain": "EXAMPLE"}
    assert doc["network"]["bytes"] == 300
    assert doc["destination"]["packets"] == 2
    assert doc["observer"]["hostname"] == "PA-VM"
    assert doc["panw"]["panos"]["endreason"] == "policy-deny"


def test_threat_direction_and_url() -> None:
    doc = parse(contract.read_line(FIXTURES / "threat_url_alert.log"), SourceContext())
    assert doc["event"]["kind"] == "alert"
    assert doc["network"]["direction"] == "inbound"  # client-to-server, as Elastic maps it
    assert doc["url"] == {
        "original": "consent.cmp.oath.com/",
        "domain": "consent.cmp.oath.com",
        "path": "/",
    }
    assert doc["panw"]["panos"]["threat"]["id"] == "9999"


def test_config_record() -> None:
    message = (
        "1,2021/10/26 15:05:03,0123456789,CONFIG,0,0,2021/10/26 15:05:03,10.0.0.5,vsys1,edit,"
        "admin,Web,Succeeded,deviceconfig system,,,1234,0x0,0,0,0,0,,PA-VM"
    )
    doc = parse(message, SourceContext())
    assert doc["event"]["category"] == ["configuration"]
    assert doc["event"]["action"] == "edit"
    assert doc["event"]["outcome"] == "success"
    assert doc["user"] == {"name": "admin"}
    assert doc["source"] == {"address": "10.0.0.5", "ip": "10.0.0.5"}
    assert doc["observer"]["hostname"] == "PA-VM"


def test_globalprotect_prefers_ipv4_then_ipv6() -> None:
    doc = parse(contract.read_line(FIXTURES / "globalprotect_ipv6_tunnel.log"), CTX)
    assert doc["source"]["ip"] == "fc00::abcd"
    assert doc["source"]["nat"] == {"ip": "fc00::1234"}
    assert doc["network"]["type"] == "ipv6"


# --------------------------------------------------------------------------- envelope


@pytest.mark.parametrize(
    "prefix",
    [
        "",
        "<14>",
        "Oct 30 09:46:12 ",
        "<14>Oct 30 09:46:12 pa-fw-01 ",
        "<14>1 2012-10-30T09:46:12Z pa-fw-01 - - - - ",
    ],
)
def test_syslog_envelopes(prefix: str) -> None:
    doc = parse(prefix + TRAFFIC, CTX)
    assert doc["source"]["ip"] == "192.168.0.2"
    assert doc["@timestamp"] == "2012-04-10T04:39:58.000-05:00"
    assert ("syslog" in doc.get("log", {})) == prefix.startswith("<14>")


def test_syslog_host_is_the_observer_hostname_without_device_name() -> None:
    message = "<14>Oct 30 09:46:12 pa-fw-01 " + TRAFFIC.removesuffix(",PA-VM")
    assert parse(message, CTX)["observer"]["hostname"] == "pa-fw-01"


def test_context_time_zone() -> None:
    assert parse(TRAFFIC, SourceContext())["@timestamp"] == "2012-04-10T04:39:58.000Z"


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "message",
    ["", " ", "<14>", "hello world", "Oct 30 09:46:12 host text", "a,b,c", "1,2,3"],
)
def test_not_a_record_is_a_parse_error(message: str) -> None:
    with pytest.raises(ParseError):
        parse(message, CTX)


def test_unknown_log_type() -> None:
    with pytest.raises(ParseError, match="unsupported PAN-OS log type"):
        parse("1,2021/10/26 15:05:03,123,NOSUCHTYPE,x,0,2021/10/26 15:05:03", CTX)


def test_binary_garbage() -> None:
    for raw in contract.garbage_bytes(20261123):
        for message in (raw.decode("latin-1"), "1," + raw.decode("utf-8", "replace")):
            result = _parse_or_reason(message)
            contract.assert_reason_or_original(result, message)


@pytest.mark.parametrize("cut", [10, 40, 80, 150, 250, len(TRAFFIC) - 3])
def test_truncated_line(cut: int) -> None:
    message = TRAFFIC[:cut]
    result = _parse_or_reason(message)
    contract.assert_reason_or_original(result, message)


def test_truncated_quote() -> None:
    doc = parse(
        "1,2021/10/26 15:05:03,,SYSTEM,general,2561,2021/10/26 15:05:03,,general,,0,0,general,"
        'informational,"Connection closed, source: 81.2.69.193',
        SourceContext(),
    )
    assert doc["message"] == "Connection closed, source: 81.2.69.193"


def test_invalid_values_stay_out_of_ecs() -> None:
    message = TRAFFIC.replace("192.168.0.2", "not-an-ip").replace(
        ",59324,", ",99999999999999999999,"
    )
    doc = parse(message, CTX)
    assert "ip" not in doc["source"]
    assert "port" not in doc["source"]
    assert parse(TRAFFIC.replace("2012/04/10 04:39:58", "yesterday"), CTX)["@timestamp"] == (
        "2012-10-30T09:46:12.000-05:00"  # falls back to the receive time
    )


def test_64_kib_line() -> None:
    message = TRAFFIC.replace("web-browsing", "x" * 65536)
    started = time.perf_counter()
    doc = parse(message, CTX)
    assert time.perf_counter() - started < 1.0
    assert doc["network"]["application"] == "x" * 65536
    for huge in ("1," * 32768, "Oct 30 09:46:12 " + "a" * 65536, "<14>" + "9" * 65536):
        started = time.perf_counter()
        assert isinstance(_parse_or_reason(huge), (str, dict))
        assert time.perf_counter() - started < 1.0


def test_output_is_strict_json() -> None:
    for case in CASES:
        doc = parse(contract.read_line(FIXTURES / f"{case}.log"), CTX)
        json.dumps(doc, allow_nan=False)


# --------------------------------------------------------------------------- fuzz

_fragments = st.sampled_from(
    [TRAFFIC, "1,", ",", '"', "TRAFFIC", "THREAT", "SYSTEM", "CONFIG", "GLOBALPROTECT", "<14>"]
)
_messages = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(_fragments, st.text(max_size=20)), max_size=12).map("".join),
    st.tuples(st.sampled_from(["TRAFFIC", "THREAT", "GLOBALPROTECT"]), st.text(max_size=200)).map(
        lambda parts: f"1,2021/10/26 15:05:03,1,{parts[0]},x,0,2021/10/26 15:05:03,{parts[1]}"
    ),
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
