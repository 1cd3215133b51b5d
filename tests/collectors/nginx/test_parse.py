"""nginx parser: golden files, malformed input and a bounded fuzz test.

There is no conformance corpus for nginx: the golden files `fixtures/<case>.log` beside
`fixtures/<case>.ecs.json` were written by hand and each field checked by hand against the line
(time converted to UTC from the line's offset; status, bytes, request split into `http.*` and
`url.*`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.nginx import parse
from collectors.parsing import ParseError, SourceContext
from socmon.corpus import corpus_dir
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()

ACCESS = (
    '198.51.100.7 - bob [23/Nov/2026:10:00:00 +0700] "GET /a/b?x=1&y=2 HTTP/1.1" 200 512 '
    '"https://ref.example/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"'
)
ERROR = "2016/10/25 14:49:34 [warn] 1#1: *7 upstream timed out, client: 10.1.2.3, server: _"


def _parse_or_reason(message: str, ctx: SourceContext = CTX) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, ctx)


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    assert parse(message, CTX) == expected


def test_access_values() -> None:
    doc = parse(ACCESS, CTX)
    assert doc["@timestamp"] == "2026-11-23T03:00:00.000Z"
    assert doc["event"]["dataset"] == "nginx.access"
    assert doc["event"]["outcome"] == "success"
    assert doc["source"] == {"address": "198.51.100.7", "ip": "198.51.100.7"}
    assert doc["user"] == {"name": "bob"}
    assert doc["url"] == {"original": "/a/b?x=1&y=2", "path": "/a/b", "query": "x=1&y=2"}
    assert doc["http"] == {
        "request": {"method": "GET", "referrer": "https://ref.example/"},
        "version": "1.1",
        "response": {"status_code": 200, "body": {"bytes": 512}},
    }
    assert doc["user_agent"] == {"original": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"}


def test_error_values() -> None:
    doc = parse(ERROR, CTX)
    assert doc["event"]["dataset"] == "nginx.error"
    assert doc["event"]["type"] == ["error"]
    assert doc["log"]["level"] in {"notice", "warn"}


def test_escaped_quotes_and_bad_request() -> None:
    doc = parse(ACCESS.replace('"Mozilla', '"Moz\\"q\\" illa'), CTX)
    assert doc["user_agent"]["original"].startswith('Moz"q" illa')
    doc = parse(ACCESS.replace("GET /a/b?x=1&y=2 HTTP/1.1", "\\x16\\x03\\x01"), CTX)
    assert doc["url"] == {"original": "\\x16\\x03\\x01"}
    assert "request" not in doc["http"] or "method" not in doc["http"]["request"]


def test_syslog_envelope() -> None:
    doc = parse("<190>Nov 23 10:00:00 web01 nginx: " + ACCESS, CTX)
    assert doc["log"]["syslog"]["hostname"] == "web01"
    assert doc["http"]["response"]["status_code"] == 200


def test_apache_error_corpus_every_line_parses() -> None:
    """Robustness: every line of the LogHub Apache error log gives a document."""
    base = corpus_dir()
    path = base / "logs" / "Apache" / "Apache_2k.log" if base is not None else None
    if path is None or not path.is_file():
        pytest.skip("shared corpus logs/Apache/Apache_2k.log not found (set SOCMON_CORPUS)")
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    assert len(lines) == 2000
    for number, line in enumerate(lines, 1):
        result = _parse_or_reason(line)
        # An Apache error log is no nginx log: refused with a reason, never a crash.
        assert isinstance(result, str) and result, (number, line)


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    "message",
    [
        "",
        "hello world",
        '1.2.3.4 - - [99/Zzz/2026:10:00:00 +0700] "GET / HTTP/1.1" 200 1',
        '1.2.3.4 - - [31/Feb/2026:10:00:00 +0700] "GET / HTTP/1.1" 200 1',
        '1.2.3.4 - - [23/Nov/2026:10:00:00 +9999] "GET / HTTP/1.1" 200 1',
        "[Xxx Yyy 04 04:47:44 2005] [notice] x",
        "2016/13/45 14:49:34 [error] 1#0: x",
        "<999>x",
    ],
)
def test_malformed_is_a_parse_error(message: str) -> None:
    with pytest.raises(ParseError):
        parse(message, CTX)


def test_binary_garbage() -> None:
    contract.check_binary_garbage(_parse_or_reason, seed=20261123)


@pytest.mark.parametrize("cut", [10, 40, 60, 80, 100, len(ACCESS) - 5])
def test_truncated_line(cut: int) -> None:
    result = _parse_or_reason(ACCESS[:cut])
    contract.assert_reason_or_original(result, ACCESS[:cut])


def test_64_kib_line() -> None:
    message = ACCESS.replace("/a/b", "/" + "a" * 65536)
    started = time.perf_counter()
    doc = parse(message, CTX)
    assert len(doc["url"]["path"]) == 65537
    for hostile in (
        "1.2.3.4 - - [" + "1" * 65536,
        'x - - [23/Nov/2026:10:00:00 +0700] "' + '\\"' * 30000,
    ):
        _parse_or_reason(hostile)
    assert time.perf_counter() - started < 1.0


# --------------------------------------------------------------------------- fuzz

_line = st.tuples(
    st.sampled_from(["", "<190>", "<190>Nov 23 10:00:00 h nginx: ", "::1 ", "1.2.3.4 - - "]),
    st.sampled_from(
        ["[23/Nov/2026:10:00:00 +0700] ", "[Sun Dec 04 04:47:44 2005] ", "2016/10/25 14:49:34 ", ""]
    ),
    st.sampled_from(['"GET / HTTP/1.1" 200 1 "-" "-"', "[error] 1#0: x", "[notice] y", '"', "- -"]),
    st.text(max_size=60),
).map("".join)


@contract.FUZZ_SETTINGS
@given(st.one_of(st.text(max_size=300), _line))
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)
