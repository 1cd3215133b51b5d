"""Linux auth parser: golden files, malformed input and a bounded fuzz test.

Golden files are `fixtures/<case>.log` (one raw line) beside `fixtures/<case>.ecs.json`; each was
checked field by field against the document Elastic's `system.auth` pipeline produces for the
same line in the conformance corpus (`system/auth/*.log`). They differ from it only where the
parser documents a deliberate difference (`event.action` for `user-added`, `event.type` of sudo
commands, `event.outcome` of a sudo error) and in the syslog fields the tool keeps
(`log.syslog.*`, `event.dataset`/`event.module`).

Year-less (RFC 3164) lines get the current year, so their golden `@timestamp` is compared
without the year.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.linux_auth import parse
from collectors.parsing import ParseError, SourceContext
from tests.collectors import parser_contract as contract

FIXTURES = Path(__file__).parent / "fixtures"
CASES = contract.golden_case_names(FIXTURES)
CTX = SourceContext()

SSH_FAILED = (
    "Nov 23 10:00:01 web01 sshd[4242]: Failed password for root from 203.0.113.7 port 50022 ssh2"
)


def _parse_or_reason(message: str, ctx: SourceContext = CTX) -> dict[str, Any] | str:
    return contract.parse_or_reason(parse, message, ctx)


def _without_year(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc["@timestamp"] = doc["@timestamp"][4:]
    return doc


# --------------------------------------------------------------------------- golden files


def test_golden_cases_exist() -> None:
    contract.assert_golden_cases_exist(FIXTURES, CASES)


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    message, expected = contract.load_golden(FIXTURES, case)
    actual = parse(message, CTX)
    if message[:1].isalpha():  # "Feb 21 ...": no year in the record
        assert actual["@timestamp"][:4] == str(datetime.now(UTC).year)
        assert _without_year(actual) == _without_year(expected)
    else:
        assert actual == expected


def test_ssh_accepted_golden_values() -> None:
    """The hand-checked values of one golden document, spelled out."""
    doc = parse(contract.read_line(FIXTURES / "sshd_accepted_publickey.log"), CTX)
    assert doc["@timestamp"].endswith("-02-21T21:54:44Z")
    assert doc["event"]["action"] == "ssh_login"
    assert doc["event"]["category"] == ["authentication", "session"]
    assert doc["event"]["outcome"] == "success"
    assert doc["user"] == {"name": "vagrant"}
    assert doc["source"] == {"address": "10.0.2.2", "ip": "10.0.2.2", "port": 63673}
    assert doc["process"] == {"name": "sshd", "pid": 3402}
    assert doc["system"]["auth"]["ssh"]["signature"].startswith("RSA 39:33")
    assert doc["event"]["dataset"] == "system.auth"


# --------------------------------------------------------------------------- behaviour


def test_pri_is_optional() -> None:
    with_pri = parse("<38>" + SSH_FAILED, CTX)
    without = parse(SSH_FAILED, CTX)
    assert with_pri["log"]["syslog"]["priority"] == 38
    assert "priority" not in without["log"]["syslog"]
    for doc in (with_pri, without):
        del doc["log"], doc["event"]["original"]
    assert with_pri == without


def test_failed_password_for_invalid_user() -> None:
    doc = parse(SSH_FAILED.replace("for root", "for invalid user admin"), CTX)
    assert doc["user"] == {"name": "admin"}
    assert doc["event"]["outcome"] == "failure"
    assert doc["source"]["port"] == 50022


def test_ipv6_source_is_normalised() -> None:
    doc = parse(SSH_FAILED.replace("203.0.113.7", "2001:DB8:0::1"), CTX)
    assert doc["source"]["ip"] == "2001:db8::1"


def test_sudo_without_tty() -> None:
    doc = parse("Aug  6 19:42:10 s1 sudo[1]: alice : PWD=/h ; USER=root ; COMMAND=/usr/bin/id", CTX)
    assert doc["user"] == {"name": "alice", "effective": {"name": "root"}}
    assert doc["system"]["auth"]["sudo"] == {"pwd": "/h", "user": "root", "command": "/usr/bin/id"}


@pytest.mark.parametrize(
    ("line", "action", "user"),
    [
        (
            "Nov 23 10:00:01 h su[9]: pam_unix(su:session): session opened for user root by "
            "alice(uid=1000)",
            "session-opened",
            {"name": "alice", "id": "1000", "effective": {"name": "root"}},
        ),
        (
            "Nov 23 10:00:01 h sshd[9]: pam_unix(sshd:session): session closed for user bob",
            "session-closed",
            {"name": "bob"},
        ),
        ("Nov 23 10:00:01 h su[9]: FAILED su for root by alice", "su", None),
        ("Nov 23 10:00:01 h usermod[9]: add 'bob' to group 'wheel'", "group-member-added", None),
    ],
)
def test_other_programs(line: str, action: str, user: dict[str, Any] | None) -> None:
    doc = parse(line, CTX)
    assert doc["event"]["action"] == action
    if user is not None:
        assert doc["user"] == user


def test_unknown_message_keeps_the_header() -> None:
    doc = parse("Nov 23 10:00:01 web01 sshd[1]: Connection closed by 10.0.0.1 port 22", CTX)
    assert doc["process"] == {"name": "sshd", "pid": 1}
    assert "action" not in doc["event"]
    assert doc["event"]["dataset"] == "system.auth"


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "empty"),
        ("hello world", "neither a syslog PRI"),
        ("<999>x", "out of range"),
        ("Nov 23 10:00:01 h sshd[1]: a\x00b", "NUL"),
    ],
)
def test_malformed_is_a_parse_error(message: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(message, CTX)


def test_binary_garbage() -> None:
    contract.check_binary_garbage(_parse_or_reason, seed=20261123)


@pytest.mark.parametrize("cut", [16, 30, 40, 60, 75, 90])
def test_truncated_line(cut: int) -> None:
    result = _parse_or_reason(SSH_FAILED[:cut])
    contract.assert_reason_or_original(result, SSH_FAILED[:cut])


def test_64_kib_line() -> None:
    message = SSH_FAILED + " " + "x" * 65536
    started = time.perf_counter()
    doc = parse(message, CTX)
    assert time.perf_counter() - started < 1.0
    assert doc["event"]["original"] == message
    assert doc["user"] == {"name": "root"}
    long_user = parse(SSH_FAILED.replace("root", "r" * 65536), CTX)
    assert long_user["user"]["name"] == "r" * 65536


# --------------------------------------------------------------------------- fuzz

_BODIES = [
    "Accepted password for a from 1.2.3.4 port 22 ssh2",
    "Failed publickey for invalid user b from ::1 port 1",
    "Invalid user  from x",
    "a : TTY=t ; PWD=/ ; USER=root ; COMMAND=/bin/ls",
    "pam_unix(sudo:auth): authentication failure; uid=1 ruser= rhost=h user=root",
    "new user: name=a, UID=1, GID=2, home=/h, shell=/s",
    "delete 'a' from group 'b'",
    "password check failed for user (",
]
_line = st.tuples(
    st.sampled_from(["", "<38>", "<999>"]),
    st.sampled_from(["Nov 23 10:00:01", "2026-05-17T18:00:01.000000+00:00", "Nov 99 1", "2026-"]),
    st.sampled_from(["sshd[1]", "sudo", "useradd[2]", "userdel[3]", "unix_chkpwd[4]", "x"]),
    st.one_of(st.sampled_from(_BODIES), st.text(max_size=80)),
).map(lambda p: f"{p[0]}{p[1]} host {p[2]}: {p[3]}")


@contract.FUZZ_SETTINGS
@given(st.one_of(st.text(max_size=300), _line))
def test_fuzz_parse_error_or_document(message: str) -> None:
    contract.assert_document_or_parse_error(_parse_or_reason(message), message)


def test_failed_login_user_name_with_spaces() -> None:
    """sshd prints the attempted name as given: "invalid user  0101" (OpenSSH_2k.log)."""
    line = (
        "Dec 10 06:55:46 LabSZ sshd[24200]: Failed password for invalid user  0101 "
        "from 173.234.31.186 port 38926 ssh2"
    )
    doc = parse(line, CTX)
    assert doc["event"]["outcome"] == "failure"
    assert doc["user"] == {"name": "0101"}
    assert doc["source"]["ip"] == "173.234.31.186" and doc["source"]["port"] == 38926
