"""Sophos XG parser: golden files, malformed input, context handling, and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each was
checked field by field against the document Elastic's pipeline produces for the same line in the
conformance corpus (`sophos/xg/test-sophos-18-5-firewall.log`, with the corpus's `_conf`
mappings). They differ from it only in `event.dataset`/`event.module`, in the vendor fields kept
under `sophos.xg` and in what Elastic enriches (GeoIP, community ID).
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
from collectors.sophos_xg import parse
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
MAPPINGS = [{"serial_number": "1234567890123456", "hostname": "testhost.local"}]
CORPUS_CTX = SourceContext(extra={"mappings": MAPPINGS, "default": "defaulttest.local"})
CTX = SourceContext()

FIREWALL = (
    'device="SFW" date=2020-06-05 time=03:45:23 timezone="CEST" device_name="SF01V" '
    'device_id=1234567890123456 log_id=010101600001 log_type="Firewall" '
    'log_component="Firewall Rule" log_subtype="Allowed" status="Allow" priority=Information '
    'duration=90 fw_rule_id=5 policy_type=1 user_name="an" user_gp="" in_interface="Port2" '
    'out_interface="Port1" src_mac=00:50:56:99:51:94 src_ip=203.0.113.30 dst_ip=10.8.142.181 '
    'protocol="TCP" src_port=45294 dst_port=443 sent_pkts=3 recv_pkts=4 sent_bytes=100 '
    'recv_bytes=2000 tran_src_ip= tran_dst_ip=10.0.0.9 tran_dst_port=8443 srczonetype="WAN" '
    'srczone="WAN" dstzonetype="DMZ" dstzone="DMZ" connevent="Stop"'
)


def _parse_or_reason(message: str, ctx: SourceContext = CTX) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, ctx)


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    assert parse(message, CORPUS_CTX) == expected


def test_allowed_stop_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "firewall_allowed_stop_outbound.log"), CORPUS_CTX)
    assert doc["@timestamp"] == "2017-01-31T14:16:19.000Z"
    assert doc["event"]["end"] == "2017-01-31T14:16:49.000Z"
    assert doc["event"]["duration"] == 30_000_000_000
    assert doc["event"]["type"] == ["end", "allowed", "connection"]
    assert doc["observer"]["serial_number"] == "C44313350024- P29PUA"  # value with a space
    assert doc["network"] == {
        "protocol": "youtube video streaming",
        "transport": "udp",
        "bytes": 182,
        "packets": 2,
        "direction": "outbound",
    }
    assert doc["source"]["nat"] == {"ip": "81.2.69.144", "port": 0}
    assert doc["host"] == {"name": "defaulttest.local"}


# --------------------------------------------------------------------------- mapping


def test_firewall_fields() -> None:
    doc = parse(FIREWALL, CTX)
    assert doc["event"]["action"] == "allowed"
    assert doc["network"]["direction"] == "inbound"
    assert doc["destination"]["nat"] == {"ip": "10.0.0.9", "port": 8443}
    assert "nat" not in doc["source"]
    assert doc["source"]["user"] == {"name": "an"}
    assert doc["event"]["end"] == "2020-06-05T03:46:53.000Z"
    assert doc["related"]["ip"] == ["203.0.113.30", "10.8.142.181", "10.0.0.9"]


@pytest.mark.parametrize(
    ("ingress", "egress", "direction"),
    [
        ("LAN", "WAN", "outbound"),
        ("WAN", "LAN", "inbound"),
        ("VPN", "DMZ", "internal"),
        ("WAN", "WAN", "external"),
        ("LAN", "GUEST", None),
    ],
)
def test_direction_from_zones(ingress: str, egress: str, direction: str | None) -> None:
    message = FIREWALL.replace('srczonetype="WAN"', f'srczonetype="{ingress}"').replace(
        'dstzonetype="DMZ"', f'dstzonetype="{egress}"'
    )
    assert parse(message, CTX)["network"].get("direction") == direction


def test_serial_number_mapping() -> None:
    assert "host" not in parse(FIREWALL, CTX)
    assert parse(FIREWALL, CORPUS_CTX)["host"] == {"name": "testhost.local"}
    ctx = SourceContext(extra={"mappings": MAPPINGS})
    other = FIREWALL.replace("device_id=1234567890123456", "device_id=X1")
    assert "host" not in parse(other, ctx)


def test_pri_and_context_zone() -> None:
    doc = parse("<30>" + FIREWALL, SourceContext(tz=timezone(timedelta(hours=2))))
    assert doc["log"]["syslog"]["priority"] == 30
    assert doc["@timestamp"] == "2020-06-05T03:45:23.000+02:00"


def test_syslog_header_before_pairs() -> None:
    doc = parse("<30>Jun  5 03:45:23 fw01 " + FIREWALL, CTX)
    assert doc["source"]["port"] == 45294


def test_other_log_types_keep_common_fields() -> None:
    message = FIREWALL.replace('log_type="Firewall"', 'log_type="IDP"')
    doc = parse(message, CTX)
    assert doc["source"]["ip"] == "203.0.113.30"
    assert "kind" not in doc["event"]
    assert doc["sophos"]["xg"]["log_type"] == "IDP"


def test_empty_values_are_dropped() -> None:
    doc = parse(FIREWALL + ' message="-" app_name="N/A"', CTX)
    for key in ("message", "app_name", "tran_src_ip", "user_gp"):
        assert key not in doc["sophos"]["xg"]


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("message", ["", " ", "<30>", "hello world", "=value", "Device=x", '""'])
def test_no_pairs_is_a_parse_error(message: str) -> None:
    with pytest.raises(ParseError, match="no key=value pairs"):
        parse(message, CTX)


def test_binary_garbage() -> None:
    contract.check_binary_garbage(_parse_or_reason, seed=20240523)


def test_truncated_line() -> None:
    cut = FIREWALL[: FIREWALL.index("sent_bytes=") + len("sent_bytes=1")]
    doc = parse(cut, CTX)
    assert doc["source"]["bytes"] == 1
    assert "bytes" not in doc["destination"]
    cut = FIREWALL[: FIREWALL.index('user_name="an"') + len('user_name="a')]
    assert parse(cut, CTX)["source"]["user"] == {"name": "a"}


def test_invalid_values_stay_in_vendor_namespace() -> None:
    message = FIREWALL.replace("src_ip=203.0.113.30", "src_ip=203.0.113.300").replace(
        "src_port=45294", "src_port=x1"
    )
    doc = parse(message, CTX)
    assert doc["sophos"]["xg"]["src_ip"] == "203.0.113.300"
    assert doc["sophos"]["xg"]["src_port"] == "x1"
    assert "ip" not in doc["source"]


@pytest.mark.parametrize("field", ["duration", "src_port", "sent_bytes", "date", "log_id"])
def test_huge_values(field: str) -> None:
    digits = "9" * 5000
    doc = parse(f'log_type="Firewall" {field}={digits} date=2020-01-01 time=00:00:00', CTX)
    json.dumps(doc, allow_nan=False)
    doc = parse("duration=9223372036 date=9999-12-31 time=23:59:59", CTX)
    assert "end" not in doc["event"]


def test_64_kib_line() -> None:
    message = FIREWALL + ' message="' + "x " * 32768 + '"'
    started = time.perf_counter()
    doc = parse(message, CTX)
    assert time.perf_counter() - started < 0.5
    assert doc["sophos"]["xg"]["message"] == "x " * 32768  # only quotes are trimmed
    for hostile in ("a" * 65536 + "=", " a=" * 20000, "a=" + " " * 65536 + "b", "=" * 65536):
        started = time.perf_counter()
        _parse_or_reason(hostile)
        assert time.perf_counter() - started < 0.5


# --------------------------------------------------------------------------- fuzz

_KEYS = [
    "date",
    "time",
    "duration",
    "log_id",
    "log_type",
    "log_subtype",
    "status",
    "connevent",
    "src_ip",
    "dst_ip",
    "tran_src_ip",
    "src_port",
    "sent_bytes",
    "recv_pkts",
    "protocol",
    "application",
    "srczonetype",
    "dstzonetype",
    "device_id",
    "user_name",
    "src_mac",
]
_VALUES = [
    "Firewall",
    "Allowed",
    "Deny",
    "Start",
    "Stop",
    "2020-01-01",
    "12:00:00",
    "LAN",
    "WAN",
    "10.0.0.1",
    "::1",
    "0",
    "99999999999999999999",
    "N/A",
    "-",
    "010101600001",
]
_pair = st.tuples(
    st.one_of(st.sampled_from(_KEYS), st.from_regex(r"[a-z0-9_\-]{1,10}", fullmatch=True)),
    st.one_of(st.sampled_from(_VALUES), st.text(max_size=30)),
    st.booleans(),
).map(lambda kv: f'{kv[0]}="{kv[1]}"' if kv[2] else f"{kv[0]}={kv[1]}")
_line = st.tuples(
    st.sampled_from(["", "<30>", "<999>", "<30>Jun  5 03:45:23 fw01 "]),
    st.lists(_pair, max_size=25),
).map(lambda parts: parts[0] + " ".join(parts[1]))


@contract.FUZZ_SETTINGS
@given(st.one_of(st.text(max_size=300), _line))
def test_fuzz_parse_error_or_document(message: str) -> None:
    for ctx in (CTX, CORPUS_CTX):
        result = _parse_or_reason(message, ctx)
        if isinstance(result, str):
            assert result
            continue
        assert result["event"]["original"] == message
        json.dumps(result, allow_nan=False)
