"""auditd parser: golden files, malformed input and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw record) beside `fixtures/<case>.ecs.json`; each
was checked field by field against the document Elastic's `auditd.log` pipeline produces for
the same record in the conformance corpus (`auditd/log/*.log`). They differ from it in
`event.outcome: success` of the SYSCALL record (from `success=yes`; Elastic leaves it out), in
`event.dataset`/`event.module`, and in `auditd.log.*` value types (all text, `sequence` a number).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.auditd import parse
from collectors.parsing import ParseError, SourceContext
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()

LOGIN = (
    "type=USER_LOGIN msg=audit(1700000000.123:5): pid=1 uid=0 auid=4294967295 ses=1 "
    'msg=\'op=login acct=726F6F74 exe="/usr/sbin/sshd" hostname=? addr=203.0.113.9 '
    "terminal=ssh res=failed'"
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


def test_add_group_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "add_group.log"), CTX)
    assert doc["@timestamp"] == "2021-01-17T17:12:33.686Z"
    assert doc["event"]["action"] == ["added-group-account-to"]
    assert doc["event"]["category"] == ["iam"]
    assert doc["event"]["type"] == ["group", "creation"]
    assert doc["event"]["outcome"] == "success"
    assert doc["group"] == {"id": "1004"}
    assert doc["user"] == {
        "audit": {"id": "1000"},
        "id": "1000",
        "effective": {"id": "0"},
        "terminal": "pts/2",
    }
    assert doc["process"] == {"pid": 2940, "executable": "/usr/sbin/groupadd"}
    assert doc["source"] == {"address": "127.0.0.1", "ip": "127.0.0.1"}
    assert doc["auditd"]["log"]["sequence"] == 584
    assert doc["auditd"]["log"]["op"] == "adding group to /etc/group"


# --------------------------------------------------------------------------- behaviour


def test_hex_encoded_account_and_unset_ids() -> None:
    doc = parse(LOGIN, CTX)
    assert doc["user"]["name"] == "root"
    assert "audit" not in doc["user"]  # auid=4294967295: unset
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["action"] == ["logged-in"]


def test_syslog_envelope() -> None:
    doc = parse("<13>Nov 23 10:00:00 web01 audisp-syslog: " + LOGIN, CTX)
    assert doc["host"] == {"name": "web01"}
    assert doc["log"]["syslog"]["priority"] == 13
    assert doc["@timestamp"] == "2023-11-14T22:13:20.123Z"


def test_node_prefix_and_unknown_type() -> None:
    doc = parse("node=n1 type=PROCTITLE msg=audit(1.5:2): proctitle=6C73002D6C", CTX)
    assert doc["host"] == {"name": "n1"}
    assert doc["event"]["action"] == ["proctitle"]
    assert "category" not in doc["event"]
    assert doc["@timestamp"] == "1970-01-01T00:00:01.500Z"


def test_group_separator_before_enrichment() -> None:
    doc = parse(
        'type=SYSCALL msg=audit(1.000:1): syscall=59 success=no exit=-13 pid=5 uid=1 comm="sh"'
        '\x1dARCH=x86_64 SYSCALL=execve UID="bob"',
        CTX,
    )
    assert doc["event"]["action"] == ["executed"]
    assert doc["event"]["outcome"] == "failure"
    assert doc["auditd"]["log"]["UID"] == "bob"
    assert doc["process"] == {"pid": 5, "name": "sh", "exit_code": -13}


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "empty"),
        ("hello world", "no audit record header"),
        ("type=X msg=audit(abc:1): a=b", "no audit record header"),
        ("garbage before type=X msg=audit(1.0:1): a=b", "text before the audit record header"),
        ("type=X msg=audit(99999999999999999999.0:1): a=b", "out of range"),
    ],
)
def test_malformed_is_a_parse_error(message: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(message, CTX)


def test_binary_garbage() -> None:
    for raw in contract.garbage_bytes(20261123):
        for message in (raw.decode("latin-1"), raw.decode("utf-8", "replace")):
            result = _parse_or_reason("type=X msg=audit(1.0:1): " + message)
            assert isinstance(result, str) or result["auditd"]["log"]["record_type"] == "X"
            assert isinstance(_parse_or_reason(message), str | dict)


@pytest.mark.parametrize("cut", [10, 30, 60, 120, 200, len(LOGIN) - 3])
def test_truncated_record(cut: int) -> None:
    result = _parse_or_reason(LOGIN[:cut])
    contract.assert_reason_or_original(result, LOGIN[:cut])


def test_64_kib_record() -> None:
    message = LOGIN + " proctitle=" + "41" * 32768
    started = time.perf_counter()
    doc = parse(message, CTX)
    assert time.perf_counter() - started < 1.0
    assert doc["event"]["original"] == message
    assert len(doc["auditd"]["log"]["proctitle"]) == 32768
    started = time.perf_counter()
    _parse_or_reason("type=X msg=audit(1.0:1): " + "a='" * 20000)
    _parse_or_reason("x" * 65536 + LOGIN)
    assert time.perf_counter() - started < 1.0


# --------------------------------------------------------------------------- fuzz

_PAIRS = [
    "pid=1",
    "uid=0",
    "auid=1000",
    "res=success",
    "success=no",
    'acct="a"',
    "acct=726F6F74",
    "addr=::1",
    "addr=?",
    "id=5",
    "exit=-2",
    "SYSCALL=unlink",
    'msg=\'op=x acct="b"',
    "msg='",
]
_record = st.tuples(
    st.sampled_from(["", "node=n ", "<13>Nov 23 10:00:00 h audispd: "]),
    st.sampled_from(["ADD_USER", "USER_AUTH", "SYSCALL", "X"]),
    st.sampled_from(["1610903553.686:584", "0.0:0", "1.1:1"]),
    st.lists(st.one_of(st.sampled_from(_PAIRS), st.text(max_size=20)), max_size=12),
).map(lambda p: f"{p[0]}type={p[1]} msg=audit({p[2]}): " + " ".join(p[3]))


@contract.FUZZ_SETTINGS
@given(st.one_of(st.text(max_size=300), _record))
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
