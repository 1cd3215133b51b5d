"""Juniper SRX parser: golden files, malformed input and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each
was checked field by field against the document Elastic's pipeline produces for the same line
in the conformance corpus (`juniper_srx/log`). They differ from it only where the parser
documents a difference: `event.dataset`/`event.module` are set, `event.original` and the
remaining text (`message`) are kept, `client.*`/`server.*` copies and enriched fields (geo, AS,
`related.*`) are absent, and a few vendor fields Elastic drops (`juniper.srx.service_name`,
`dst_nat_rule_name` etc. when set) are kept.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.parsing import ParseError, SourceContext
from collectors.srx import parse
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()
NOW = datetime(2023, 6, 1, tzinfo=UTC)
FLOW = (FIXTURES / "rt_flow_session_close_snat.log").read_text(encoding="utf-8").removesuffix("\n")


def _parse_or_reason(message: str) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, CTX, now=NOW)


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    assert parse(message, CTX, now=NOW) == expected


def test_session_close_golden_values() -> None:
    doc = parse(FLOW, CTX, now=NOW)
    assert doc["@timestamp"] == "2019-04-12T14:29:06.576Z"
    assert doc["event"]["action"] == "flow_close"
    assert doc["event"]["type"] == ["end", "allowed", "connection"]
    assert doc["source"]["nat"] == {"ip": "10.3.136.49", "port": 19162}
    assert doc["network"]["bytes"] == 872
    assert doc["network"]["packets"] == 10
    assert doc["network"]["transport"] == "tcp"
    assert doc["rule"] == {"name": "permit_all"}
    assert doc["observer"]["ingress"]["zone"] == "trust"
    assert doc["observer"]["egress"]["zone"] == "untrust"


def test_threat_record_is_an_alert() -> None:
    line = (
        "<14>1 2020-01-01T00:00:00Z fw RT_IDP - IDP_ATTACK_LOG_EVENT [junos@2636 "
        'source-address="10.0.0.1" destination-address="10.0.0.2" policy-name="p1"]'
    )
    doc = parse(line, CTX, now=NOW)
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["category"] == ["network", "intrusion_detection"]
    assert doc["rule"] == {"name": "p1"}


@pytest.mark.parametrize("message", ["", " ", "<14>", "hello", " <14>1 2023-05-04T15:21:01Z h"])
def test_not_a_junos_message(message: str) -> None:
    with pytest.raises(ParseError):
        parse(message, CTX, now=NOW)


def test_binary_garbage() -> None:
    for raw in contract.garbage_bytes(20261123):
        for body in (raw.decode("latin-1"), raw.decode("utf-8", "replace")):
            for prefix in ("", "<14>1 2019-11-14T09:37:51Z h RT_FLOW - X [junos@1 "):
                message = prefix + body
                result = _parse_or_reason(message)
                contract.assert_reason_or_original(result, message)


@pytest.mark.parametrize("cut", range(5, len(FLOW), 41))
def test_truncated_line(cut: int) -> None:
    result = _parse_or_reason(FLOW[:cut])
    contract.assert_reason_or_original(result, FLOW[:cut])


@pytest.mark.parametrize(
    "message",
    [
        FLOW[:-1] + ' x="' + "y" * 65536 + '"]',
        "<14>1 2019-11-14T09:37:51Z h RT_FLOW - X [junos@1 " + 'a="x" ' * 10000,
        "<14>1 2019-11-14T09:37:51Z h RT_FLOW - X [junos@1 " + 'a=x" ' * 10000,
        FLOW.replace('source-port="47776"', 'source-port="' + "9" * 5000 + '"'),
    ],
)
def test_long_and_pathological_lines(message: str) -> None:
    started = time.perf_counter()
    result = _parse_or_reason(message)
    assert time.perf_counter() - started < 1.0
    contract.assert_reason_or_original(result, message)
    json.dumps(result, allow_nan=False)


_KEYS = [
    "source-address",
    "source-port",
    "protocol-id",
    "bytes-from-client",
    "elapsed-time",
    "bytes-from-server",
    "application-risk",
    "username",
    "x",
]
_pair = st.tuples(st.sampled_from(_KEYS), st.text(max_size=12)).map(lambda kv: f'{kv[0]}="{kv[1]}"')
_line = st.tuples(
    st.sampled_from(
        [
            "<14>1 2019-11-14T09:37:51.184+01:00 h RT_FLOW - RT_FLOW_SESSION_CLOSE [junos@1 ",
            "<14>1 2013-01-19T15:18:17 h RT_FLOW - APPTRACK_SESSION_CREATE_LS [j ",
            "<13>May 4 05:16:01 host RT_SYSTEM: ",
        ]
    ),
    st.lists(_pair, max_size=20),
    st.sampled_from(["]", "", "] trailing text"]),
).map(lambda parts: parts[0] + " ".join(parts[1]) + parts[2])


@contract.FUZZ_SETTINGS
@given(st.one_of(st.text(max_size=300), _line))
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
