"""iptables parser: golden files, malformed input and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each
was checked field by field against the document Elastic's pipeline produces for the same line
in the conformance corpus (`iptables/log`). They differ from it only where the parser documents
a difference: `event.dataset`/`event.module` are set, `event.original` is kept, and the enriched
fields (geo, AS, `related.*`, `network.community_id`) are absent. `truncated_kernel_line` also
keeps `iptables.fragment_flags` (`DF`), which Elastic's pattern misses on that cut line.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.iptables import parse
from collectors.parsing import ParseError, SourceContext
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()
NOW = datetime(2023, 6, 1, tzinfo=UTC)

LINE = (
    "Jan  8 03:37:09 example-host kernel: iptables DROP_INPUT: IN=eth0 OUT= "
    "MAC=90:10:35:5a:1e:3a:90:10:9e:ec:2c:71:08:00 SRC=81.2.69.143 DST=172.16.54.114 LEN=52 "
    "TOS=0x00 PREC=0x00 TTL=115 ID=15743 DF PROTO=TCP SPT=17805 DPT=445 WINDOW=8192 RES=0x00 "
    "SYN URGP=0"
)


def _parse_or_reason(message: str) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, CTX, now=NOW)


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    assert parse(message, CTX, now=NOW) == expected


def test_ubiquiti_golden_values() -> None:
    doc = parse(contract.read_line(FIXTURES / "ubiquiti_wan_lan_drop.log"), CTX, now=NOW)
    assert doc["event"]["action"] == "drop"
    assert doc["event"]["type"] == ["denied", "connection"]
    assert doc["rule"] == {"name": "wan-lan", "id": "default"}
    assert doc["observer"] == {
        "name": "Hostname",
        "ingress": {"zone": "wan"},
        "egress": {"zone": "lan"},
    }
    assert doc["source"] == {"mac": "90-10-65-29-B6-2A", "ip": "67.43.156.15", "port": 38842}
    assert doc["iptables"]["ether_type"] == 2048
    assert doc["network"] == {"transport": "tcp", "type": "ipv4"}


# --------------------------------------------------------------------------- header and fields


def test_iso_timestamp_and_pri() -> None:
    doc = parse("<6>2021-03-12T14:10:18Z " + LINE.removeprefix("Jan  8 03:37:09 "), CTX)
    assert doc["@timestamp"] == "2021-03-12T14:10:18.000Z"
    assert doc["log"] == {"syslog": {"priority": 6}}


def test_year_less_timestamp_uses_now_and_time_zone() -> None:
    local = SourceContext(tz=timezone(timedelta(hours=7)))
    assert parse(LINE, local, now=NOW)["@timestamp"] == "2023-01-07T20:37:09.000Z"


def test_accept_rule_without_zones() -> None:
    line = LINE.replace("iptables DROP_INPUT: ", "[WAN_OUT-2000-A]")
    doc = parse(line, CTX, now=NOW)
    assert doc["event"]["action"] == "accept"
    assert doc["event"]["type"] == ["allowed", "connection"]
    assert doc["rule"] == {"name": "WAN_OUT", "id": "2000"}
    assert "ingress" not in doc["observer"]


def test_udp_and_icmp_repeated_keys() -> None:
    udp = parse(LINE.replace("PROTO=TCP", "PROTO=UDP") + " LEN=32", CTX, now=NOW)
    assert udp["iptables"]["udp"] == {"length": 32}
    assert udp["iptables"]["length"] == 52
    icmp = parse(LINE.replace("PROTO=TCP", "PROTO=ICMP TYPE=8 CODE=0 ID=7 SEQ=3"), CTX, now=NOW)
    assert icmp["iptables"]["icmp"] == {"type": 8, "code": 0, "seq": 3, "id": 7}
    assert icmp["iptables"]["id"] == 15743


def test_invalid_address_is_left_out() -> None:
    doc = parse(LINE.replace("SRC=81.2.69.143", "SRC=81.2.69.999"), CTX, now=NOW)
    assert "ip" not in doc["source"]


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "message",
    ["", " ", "<6>", "hello world", "Jan  8 03:37:09 host sshd: hello", "IN=eth0 SRC=1.2.3.4"],
)
def test_not_an_iptables_line(message: str) -> None:
    with pytest.raises(ParseError):
        parse(message, CTX, now=NOW)


def test_binary_garbage() -> None:
    for raw in contract.garbage_bytes(20261123):
        for body in (raw.decode("latin-1"), raw.decode("utf-8", "replace")):
            for message in (body, "Jan  8 03:37:09 h kernel: " + body):
                result = _parse_or_reason(message)
                contract.assert_reason_or_original(result, message)


@pytest.mark.parametrize("cut", [20, 45, 80, 150, 200, len(LINE) - 3])
def test_truncated_line(cut: int) -> None:
    result = _parse_or_reason(LINE[:cut])
    contract.assert_reason_or_original(result, LINE[:cut])


def test_invalid_date_keeps_the_document() -> None:
    doc = parse(LINE.replace("Jan  8", "Feb 31"), CTX, now=NOW)
    assert "@timestamp" not in doc
    assert doc["source"]["port"] == 17805


def test_64_kib_line() -> None:
    message = LINE + " X=" + "9" * 65536
    started = time.perf_counter()
    doc = parse(message, CTX, now=NOW)
    assert time.perf_counter() - started < 1.0
    assert doc["event"]["original"] == message
    huge = parse(LINE.replace("SPT=17805", "SPT=" + "9" * 5000), CTX, now=NOW)
    assert "port" not in huge["source"]
    json.dumps(huge, allow_nan=False)


# --------------------------------------------------------------------------- fuzz

_TOKENS = [
    "IN=eth0",
    "OUT=",
    "MAC=90:10:35:5a:1e:3a:90:10:9e:ec:2c:71:08:00",
    "MAC=zz:10",
    "SRC=10.0.0.1",
    "DST=::1",
    "LEN=52",
    "TOS=0xZZ",
    "TTL=64",
    "HOPLIMIT=1",
    "ID=1",
    "DF",
    "PROTO=TCP",
    "PROTO=UDP",
    "PROTO=ICMP",
    "PROTO=ICMPv6",
    "SPT=1",
    "DPT=99999999999999999999999",
    "TYPE=8",
    "[SRC=1.2.3.4",
    "[a-b-A]",
    "[x-1-D]",
    "DROP:",
    "L=126",
]
_token = st.one_of(st.sampled_from(_TOKENS), st.text(max_size=20))
_line = st.tuples(
    st.sampled_from(["", "<6>", "<999>"]),
    st.sampled_from(["Jan  8 03:37:09 ", "2021-03-12T14:10:18Z ", "Feb 30 99:00:00 "]),
    st.sampled_from(["h kernel: ", "h user.info kernel: ", "", "h kernel: [ 1.5] "]),
    st.lists(_token, max_size=25),
).map(lambda parts: parts[0] + parts[1] + parts[2] + " ".join(parts[3]))


@contract.FUZZ_SETTINGS
@given(st.one_of(st.text(max_size=300), _line))
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
