"""pfSense parser: golden files, malformed input and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each
was checked field by field against the document Elastic's pipeline produces for the same line
in the conformance corpus (`pfsense/log`, time zone -04:00). They differ from it only where the
parser documents a difference: `event.dataset`/`event.module` are set, `event.original` is kept,
the enriched fields (geo, `related.*`, `network.community_id`) are absent,
`pfsense.tcp.seq` is kept, and the IPv6 hop limit is `pfsense.ip.ttl` (Elastic:
`pfsense.ip.flags`).
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

from collectors.parsing import ParseError, SourceContext
from collectors.pfsense import parse
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext(tz=timezone(timedelta(hours=-4)))
NOW = datetime(2022, 8, 1, tzinfo=UTC)

TCP = (
    "<134>Jul  3 19:10:30 filterlog[72237]: 146,,,1535324496,igb1.12,match,block,in,4,0x0,,63,"
    "12617,0,DF,6,tcp,60,10.170.12.50,175.16.199.1,49724,853,0,S,1891286705,,64240,,"
    "mss;sackOK;TS;nop;wscale"
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


def test_tcp_block_golden_values() -> None:
    doc = parse(contract.read_line(FIXTURES / "filterlog_ipv4_tcp_block.log"), CTX, now=NOW)
    assert doc["@timestamp"] == "2022-07-03T19:10:30.000-04:00"
    assert doc["event"]["action"] == "block"
    assert doc["event"]["type"] == ["connection", "denied"]
    assert doc["rule"] == {"id": "1535324496"}
    assert doc["network"]["direction"] == "inbound"
    assert doc["network"]["bytes"] == 60
    assert doc["source"]["port"] == 49724
    assert doc["observer"]["ingress"]["vlan"] == {"id": "12"}
    assert doc["process"] == {"name": "filterlog", "pid": 72237}


# --------------------------------------------------------------------------- record kinds


def test_carp_and_other_protocols() -> None:
    carp = TCP.replace(
        "6,tcp,60,10.170.12.50,175.16.199.1,49724,853,0,S,1891286705,,64240,,mss;sackOK;TS;nop;wscale",
        "112,carp,56,10.0.0.2,224.0.0.18,advertise,255,1,2,0,1",
    )
    doc = parse(carp, CTX, now=NOW)
    assert doc["pfsense"]["carp"] == {
        "type": "advertise",
        "ttl": 255,
        "vhid": 1,
        "version": 2,
        "advskew": 0,
        "advbase": 1,
    }
    igmp = carp.replace("112,carp,56,", "2,igmp,32,").replace(
        "advertise,255,1,2,0,1", "datalength=8"
    )
    assert parse(igmp, CTX, now=NOW)["network"]["packets"] == 8


def test_icmp_unreachable_port() -> None:
    line = TCP.replace(
        "6,tcp,60,10.170.12.50,175.16.199.1,49724,853,0,S,1891286705,,64240,,mss;sackOK;TS;nop;wscale",
        "1,icmp,56,10.0.0.1,10.0.0.2,unreachport,10.0.0.9,udp,53",
    )
    icmp = parse(line, CTX, now=NOW)["pfsense"]["icmp"]
    assert icmp == {
        "type": "unreachport",
        "destination": {"ip": "10.0.0.9"},
        "unreachable": {"iana_number": "udp", "port": 53},
    }


def test_openvpn_peer_connection() -> None:
    line = (
        "<29>Jul  3 21:42:57 openvpn[66026]: 10.170.120.149:37849 [bob] Peer Connection "
        "Initiated with [AF_INET]10.170.120.149:37849"
    )
    doc = parse(line, CTX, now=NOW)
    assert doc["event"]["type"] == ["connection", "start"]
    assert doc["user"] == {"name": "bob"}
    assert doc["source"]["port"] == 37849


def test_other_program_keeps_the_header() -> None:
    doc = parse("<30>Jul  3 21:42:57 fw dhcpd[12]: DHCPACK on 10.0.0.5", CTX, now=NOW)
    assert doc["process"] == {"name": "dhcpd", "pid": 12}
    assert doc["observer"]["name"] == "fw"
    assert doc["message"] == "DHCPACK on 10.0.0.5"


def test_year_less_timestamp_without_time_zone_is_utc() -> None:
    doc = parse(TCP, SourceContext(), now=NOW)
    assert doc["@timestamp"] == "2022-07-03T19:10:30.000Z"
    assert "timezone" not in doc["event"]


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "message", ["", " ", "<134>", "hello", "<999>Jul  3 19:10:30 filterlog[1]: 1,2", "Jul  3 x"]
)
def test_not_a_pfsense_message(message: str) -> None:
    with pytest.raises(ParseError):
        parse(message, CTX, now=NOW)


def test_binary_garbage() -> None:
    for raw in contract.garbage_bytes(20261123):
        for body in (raw.decode("latin-1"), raw.decode("utf-8", "replace")):
            for prefix in ("", "<134>Jul  3 19:10:30 filterlog[1]: ", "<29>Jul  3 1:1:1 openvpn: "):
                message = prefix + body
                result = _parse_or_reason(message)
                contract.assert_reason_or_original(result, message)


@pytest.mark.parametrize("cut", range(10, len(TCP), 7))
def test_truncated_line(cut: int) -> None:
    result = _parse_or_reason(TCP[:cut])
    contract.assert_reason_or_original(result, TCP[:cut])


def test_64_kib_line() -> None:
    message = TCP + "," * 65536
    started = time.perf_counter()
    doc = parse(message, CTX, now=NOW)
    assert time.perf_counter() - started < 1.0
    assert doc["event"]["original"] == message
    huge = parse(TCP.replace(",49724,", "," + "9" * 5000 + ","), CTX, now=NOW)
    assert "port" not in huge["source"]
    json.dumps(huge, allow_nan=False)


# --------------------------------------------------------------------------- fuzz

_CELLS = [
    "",
    "4",
    "6",
    "in",
    "out",
    "block",
    "pass",
    "tcp",
    "udp",
    "icmp",
    "carp",
    "igmp",
    "10.0.0.1",
    "::1",
    "request",
    "unreachport",
    "needfrag",
    "S",
    "99999999999999999999",
    "datalength=8",
]
_cell = st.one_of(
    st.sampled_from(_CELLS), st.text(alphabet=st.characters(blacklist_characters=","), max_size=12)
)
_line = st.tuples(
    st.sampled_from(
        [
            "<134>Jul  3 19:10:30 filterlog[72237]: ",
            "<29>Jul  3 21:42:57 openvpn[66026]: ",
            "<27>1 2021-07-03T22:17:01.074560-05:00 h openvpn 66026 - - ",
            "<134>Feb 30 25:10:30 h filterlog: ",
        ]
    ),
    st.lists(_cell, max_size=35),
).map(lambda parts: parts[0] + ",".join(parts[1]))


@contract.FUZZ_SETTINGS
@given(st.one_of(st.text(max_size=300), _line))
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
