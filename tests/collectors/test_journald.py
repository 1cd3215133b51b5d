"""The journald collector and the `journald` parser.

This machine is a container without systemd-journald: `journalctl` is installed but finds no
journal files. The collector tests therefore put a fake `journalctl` first on PATH: a small
script that stands in for the binary, answering the same command lines (``--lines=0``
probe, ``--lines=1`` tail, ``--follow`` with ``--after-cursor`` / ``--since=@`` /
``--no-tail``) with entries in journalctl's real ``-o json`` format (one compact JSON object
per line, string values, ``__CURSOR`` first), read from a file the test appends to. One
test runs the real journalctl of this machine, to check that a missing journal is reported
and the collector returns. The parser tests use entries in the real format, including
binary (byte array), multi-valued and null fields.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from collectors import registry
from collectors.ids import event_id
from collectors.journald import CURSOR_FILE, JournaldCollector, JournaldOptions, cursor_time
from collectors.journald_parse import parse
from collectors.parsing import ParseError, SourceContext
from collectors.pipeline import Pipeline, RawMessage, parse_message
from socmon.spool import Spool
from tests.collectors.file.test_collector import Running, wait_for

# --------------------------------------------------------------------------- real-format entries

BOOT = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
MACHINE = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
SEQNUM_ID = "4b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
T0 = 1_700_000_000_123_456  # µs: 2023-11-14T22:13:20.123456Z


def entry(i: int, message: str | list[int] | None, **fields: Any) -> dict[str, Any]:
    """A journal entry as `journalctl -o json` prints one (systemd 252 field order)."""
    rt = T0 + i * 1_000_000
    e: dict[str, Any] = {
        "__CURSOR": f"s={SEQNUM_ID};i={0x1A2B + i:x};b={BOOT};m={62_000_000 + i * 1000:x};"
        f"t={rt:x};x={(0x5EED * (i + 1)) & 0xFFFFFFFFFFFFFFFF:016x}",
        "__REALTIME_TIMESTAMP": str(rt),
        "__MONOTONIC_TIMESTAMP": str(62_000_000 + i * 1000),
        "_BOOT_ID": BOOT,
        "_TRANSPORT": "syslog",
        "PRIORITY": "6",
        "SYSLOG_FACILITY": "4",
        "SYSLOG_IDENTIFIER": "sshd",
        "SYSLOG_PID": "1234",
        "SYSLOG_TIMESTAMP": "Nov 14 22:13:20 ",
        "_PID": "1234",
        "_UID": "0",
        "_GID": "0",
        "_COMM": "sshd",
        "_EXE": "/usr/sbin/sshd",
        "_CMDLINE": "sshd: admin [priv]",
        "_CAP_EFFECTIVE": "1ffffffffff",
        "_SYSTEMD_CGROUP": "/system.slice/ssh.service",
        "_SYSTEMD_UNIT": "ssh.service",
        "_SYSTEMD_SLICE": "system.slice",
        "_SYSTEMD_INVOCATION_ID": "c3d4e5f60718293a4b5c6d7e8f90a1b2",
        "_MACHINE_ID": MACHINE,
        "_HOSTNAME": "web01",
        "MESSAGE": message,
        "_SOURCE_REALTIME_TIMESTAMP": str(rt - 211),
    }
    e.update(fields)
    return e


def line(e: dict[str, Any]) -> str:
    return json.dumps(e, separators=(",", ":"), ensure_ascii=False)


SSHD = line(
    entry(0, "Accepted publickey for admin from 203.0.113.7 port 52222 ssh2: ED25519 SHA256:x")
)
KERNEL = (
    '{"__CURSOR":"s=4b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e;i=1;b=9f8e7d6c5b4a39281706f5e4d3c2b1a0;'
    'm=1b8a3f;t=60a2c1a8d0f00;x=9a2b3c4d5e6f7081","__REALTIME_TIMESTAMP":"1700000000000000",'
    '"__MONOTONIC_TIMESTAMP":"1804863","_BOOT_ID":"9f8e7d6c5b4a39281706f5e4d3c2b1a0",'
    '"_SOURCE_MONOTONIC_TIMESTAMP":"0","_TRANSPORT":"kernel","PRIORITY":"5",'
    '"SYSLOG_FACILITY":"0","SYSLOG_IDENTIFIER":"kernel","MESSAGE":"Linux version 6.1.0-18-amd64",'
    '"_MACHINE_ID":"0a1b2c3d4e5f60718293a4b5c6d7e8f9","_HOSTNAME":"web01"}'
)


# --------------------------------------------------------------------------- parser


def test_parse_sshd_entry() -> None:
    doc = parse(SSHD, SourceContext())
    assert doc["message"].startswith("Accepted publickey for admin from 203.0.113.7")
    assert doc["@timestamp"] == "2023-11-14T22:13:20.123456Z"
    assert doc["host"] == {"hostname": "web01"}
    assert doc["process"] == {"pid": 1234, "name": "sshd"}
    assert doc["log"]["syslog"] == {
        "severity": {"code": 6, "name": "informational"},
        "facility": {"code": 4},
        "priority": 38,  # 8 x facility (auth) + severity
    }
    assert doc["event"] == {"kind": "event", "dataset": "journald"}
    j = doc["journald"]
    assert j["_systemd_unit"] == "ssh.service"
    assert j["_comm"] == "sshd" and j["_exe"] == "/usr/sbin/sshd"
    assert j["__cursor"].startswith("s=")
    assert j["_source_realtime_timestamp"] == "1700000000123245"
    for mapped in ("message", "__realtime_timestamp", "_hostname", "_pid", "priority"):
        assert mapped not in j
    assert "syslog_identifier" not in j  # it became process.name


def test_parse_kernel_entry_without_pid() -> None:
    doc = parse(KERNEL, SourceContext())
    assert doc["message"] == "Linux version 6.1.0-18-amd64"
    assert doc["@timestamp"] == "2023-11-14T22:13:20Z"
    assert doc["process"] == {"name": "kernel"}
    assert doc["log"]["syslog"]["priority"] == 5 and doc["journald"]["_transport"] == "kernel"


def test_parse_binary_multi_valued_and_missing_fields() -> None:
    binary = [*b"disk \x1b[1mfull\x1b[0m ", 0xFF, 0xFE]
    e = entry(1, binary, TAG=["a", "b"], EMPTY=None)
    del e["SYSLOG_IDENTIFIER"]
    doc = parse(line(e), SourceContext())
    assert doc["message"] == "disk \x1b[1mfull\x1b[0m \\xff\\xfe"
    assert doc["process"]["name"] == "sshd"  # from _COMM
    assert doc["journald"]["tag"] == ["a", "b"]
    assert "empty" not in doc["journald"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not a journal JSON entry"),
        ("[1, 2]", "not a JSON object"),
        (line(entry(2, None)), "MESSAGE left out"),
        (line(entry(3, "x", PRIORITY="9")), "PRIORITY out of range"),
        (line(entry(4, "x", _PID="abc")), "_PID is not a number"),
        (line(entry(5, "x", __REALTIME_TIMESTAMP="soon")), "bad __REALTIME_TIMESTAMP"),
        (line(entry(6, "x", X={"nested": 1})), "unexpected JSON type"),
    ],
)
def test_parse_refuses_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse(text, SourceContext())


def test_registered_parser_and_failures_are_kept() -> None:
    assert registry.PARSERS["journald"] is parse
    assert registry.DATASETS["journald"] == "journald"
    msg = RawMessage(source="journald://local", data=SSHD.encode(), received_at=0.0)
    ok = parse_message(RawMessage(**{**msg.__dict__, "parser": "journald"}))
    assert ok["event"]["dataset"] == "journald" and "tags" not in ok
    bad = parse_message(
        RawMessage(source="journald://local", data=b"{broken", received_at=0.0, parser="journald")
    )
    assert bad["tags"] == ["_parse_failure"] and bad["event"]["original"] == "{broken"
    assert bad["event"]["dataset"] == "journald"


def test_cursor_time() -> None:
    assert cursor_time(json.loads(SSHD)["__CURSOR"]) == T0 // 1_000_000
    assert cursor_time("s=1;i=2") is None


# --------------------------------------------------------------------------- fake journalctl

FAKE_JOURNALCTL = r'''#!{python}
"""Stand-in for journalctl (no systemd-journald in the test container).

Entries come from $FAKE_JOURNAL (JSON lines, journalctl's -o json format); every command
line is appended to $FAKE_JOURNAL_ARGV. $FAKE_JOURNAL_MODE: "ok", "nojournal" (like
journalctl on a machine without journal files), "crash:<n>" (exit 1 after n entries).
"""
import json, os, sys, time

args = sys.argv[1:]
with open(os.environ["FAKE_JOURNAL_ARGV"], "a") as f:
    f.write(json.dumps(args) + "\n")
mode = os.environ.get("FAKE_JOURNAL_MODE", "ok")
path = os.environ["FAKE_JOURNAL"]


def entries():
    # Only whole lines: the test may be appending while this reads, and the real journalctl
    # never prints half an entry.
    with open(path) as f:
        text = f.read()
    return [l for l in text[: text.rfind("\n") + 1].splitlines() if l]


if mode == "nojournal" and "--follow" not in args:
    print("No journal files were found.", file=sys.stderr)
    if "--output=json" not in args:
        print("-- No entries --")
    sys.exit(0)
if "--follow" not in args:
    if "--lines=1" in args and entries():
        print(entries()[-1])
    sys.exit(0)
start = None
for a in args:
    if a.startswith("--after-cursor="):
        cursor = a.split("=", 1)[1]
        found = [i for i, l in enumerate(entries()) if json.loads(l)["__CURSOR"] == cursor]
        if not found:
            print("Failed to seek to cursor: Invalid argument", file=sys.stderr)
            sys.exit(1)
        start = found[0] + 1
    elif a.startswith("--since=@"):
        since = int(a.split("@", 1)[1]) * 1_000_000
        all_ = entries()
        start = next(
            (i for i, l in enumerate(all_) if int(json.loads(l)["__REALTIME_TIMESTAMP"]) >= since),
            len(all_),
        )
if start is None:
    start = len(entries()) if "--lines=0" in args else 0
limit = int(mode.split(":")[1]) if mode.startswith("crash:") else None
shown = 0
while True:
    current = entries()
    for l in current[start:]:
        if limit is not None and shown >= limit:
            sys.stdout.flush()
            print("journalctl: simulated failure", file=sys.stderr)
            sys.exit(1)
        sys.stdout.write(l + "\n")
        shown += 1
    start = len(current)
    sys.stdout.flush()
    time.sleep(0.02)
'''


class Journal:
    """The fake journal: a JSON-lines file the fake journalctl follows."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = root / "journal.jsonl"
        self.path.touch()
        self.argv_log = root / "argv.jsonl"
        self.argv_log.touch()
        bindir = root / "bin"
        bindir.mkdir()
        exe = bindir / "journalctl"
        exe.write_text(FAKE_JOURNALCTL.replace("{python}", sys.executable))
        exe.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
        monkeypatch.setenv("FAKE_JOURNAL", str(self.path))
        monkeypatch.setenv("FAKE_JOURNAL_ARGV", str(self.argv_log))
        self.n = 0

    def write(self, count: int) -> list[dict[str, Any]]:
        new = [
            entry(self.n + k, f"session {self.n + k} opened for user admin") for k in range(count)
        ]
        self.n += count
        with open(self.path, "a") as f:
            f.writelines(line(e) + "\n" for e in new)
        return new

    def commands(self) -> list[list[str]]:
        return [json.loads(x) for x in self.argv_log.read_text().splitlines()]


class Harness:
    def __init__(self, root: Path) -> None:
        self.state_dir = root / "state"
        self.spool = Spool(root / "spool", consumers=["test"])
        self.pipeline = Pipeline(self.spool)
        self.runs: list[Running] = []

    def start(self, **options: Any) -> Running:
        opts = JournaldOptions(type="journald", restart_delay=0.05, shutdown_timeout=2, **options)
        run = Running(JournaldCollector(opts), self.pipeline, self.state_dir)
        self.runs.append(run)
        return run

    def docs(self) -> list[dict[str, Any]]:
        reader = self.spool.reader("test")
        reader.rewind()
        out: list[dict[str, Any]] = []
        while batch := reader.read(10_000):
            out += [orjson.loads(r.payload) for r in batch]
        return out

    def messages(self, n: int | None = None) -> list[str]:
        if n is not None:
            wait_for(lambda: len(self.docs()) >= n, 10, f"{n} journal entries")
        return [d["message"] for d in self.docs()]

    def cursor(self) -> str:
        data: dict[str, str] = orjson.loads((self.state_dir / CURSOR_FILE).read_bytes())
        return data["cursor"]


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Journal:
    return Journal(tmp_path, monkeypatch)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    for run in harness.runs:
        run.stop()
    harness.spool.close()


def session(i: int) -> str:
    return f"session {i} opened for user admin"


# --------------------------------------------------------------------------- collector


def test_follows_the_journal_and_saves_the_cursor(journal: Journal, h: Harness) -> None:
    written = journal.write(3)
    run = h.start(start_at="beginning")
    assert h.messages(3) == [session(i) for i in range(3)]
    written += journal.write(2)
    assert h.messages(5) == [session(i) for i in range(5)]
    run.stop()
    assert h.cursor() == written[-1]["__CURSOR"]
    docs = h.docs()
    for e, doc in zip(written, docs, strict=True):
        raw = line(e).encode()
        assert doc["_id"] == event_id("journald://local", e["__CURSOR"], raw)
        assert doc["event"]["dataset"] == "journald"
        assert doc["host"]["hostname"] == "web01" and doc["process"]["pid"] == 1234
        assert doc["event"]["original"] == line(e)
    follow = journal.commands()[-1]
    assert {"--output=json", "--follow", "--all", "--no-tail"} <= set(follow)


def test_start_at_end_skips_old_entries_but_not_later_ones(journal: Journal, h: Harness) -> None:
    old = journal.write(3)
    run = h.start()  # start_at: end
    assert h.cursor() == old[-1]["__CURSOR"]  # the end, saved before following
    journal.write(2)
    assert h.messages(2) == [session(3), session(4)]
    run.stop()
    assert f"--after-cursor={old[-1]['__CURSOR']}" in journal.commands()[-1]


def test_restart_resumes_after_the_saved_cursor(journal: Journal, h: Harness) -> None:
    journal.write(2)
    run = h.start(start_at="beginning")
    h.messages(2)
    run.stop()
    journal.write(3)  # written while stopped
    h.start(start_at="beginning")
    assert h.messages(5) == [session(i) for i in range(5)]
    time.sleep(0.3)
    assert len(h.docs()) == 5


def test_crash_before_cursor_save_rereads_with_the_same_ids(journal: Journal, h: Harness) -> None:
    journal.write(2)
    run = h.start(start_at="beginning")
    h.messages(2)
    run.stop()
    older = (h.state_dir / CURSOR_FILE).read_bytes()
    run = h.start(start_at="beginning")
    journal.write(3)
    h.messages(5)
    run.stop()
    ids = {d["message"]: d["_id"] for d in h.docs()}
    (h.state_dir / CURSOR_FILE).write_bytes(older)  # as if the last save never happened
    h.start(start_at="beginning")
    h.messages(8)
    time.sleep(0.3)
    docs = h.docs()
    assert [d["message"] for d in docs[5:]] == [session(i) for i in range(2, 5)]
    assert all(d["_id"] == ids[d["message"]] for d in docs[5:])
    assert len({d["_id"] for d in docs}) == 5


def test_refused_cursor_falls_back_to_its_time(journal: Journal, h: Harness) -> None:
    entries = journal.write(4)
    gone = entries[2]["__CURSOR"].replace(f"s={SEQNUM_ID}", "s=" + "0" * 32)  # rotated away
    h.state_dir.mkdir()
    (h.state_dir / CURSOR_FILE).write_bytes(orjson.dumps({"cursor": gone}))
    h.start()
    assert h.messages(2) == [session(2), session(3)]  # from the cursor's second on
    assert f"--since=@{cursor_time(gone)}" in journal.commands()[-1]


def test_journalctl_exit_is_restarted(
    journal: Journal, h: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """journalctl exits after every 2 entries: restarted after the cursor, nothing lost or
    doubled; each interruption is logged once and its recovery once."""
    monkeypatch.setenv("FAKE_JOURNAL_MODE", "crash:2")
    journal.write(7)
    with caplog.at_level(logging.INFO, logger="socmon.collectors.journald"):
        h.start(start_at="beginning")
        assert h.messages(7) == [session(i) for i in range(7)]
        time.sleep(0.3)
    assert len(h.docs()) == 7
    follows = [c for c in journal.commands() if "--follow" in c]
    assert len(follows) >= 4 and any(a.startswith("--after-cursor=") for a in follows[-1])
    kinds = [
        "down" if "interrupted" in r.getMessage() else "up"
        for r in caplog.records
        if "interrupted" in r.getMessage() or "readable again" in r.getMessage()
    ]
    assert kinds[:6] == ["down", "up"] * 3


def test_failing_journalctl_is_logged_once(
    journal: Journal, h: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FAKE_JOURNAL_MODE", "crash:0")
    journal.write(1)
    with caplog.at_level(logging.WARNING, logger="socmon.collectors.journald"):
        run = h.start(start_at="beginning")
        wait_for(lambda: len([c for c in journal.commands() if "--follow" in c]) >= 3)
        run.stop()
    assert sum("interrupted" in r.getMessage() for r in caplog.records) == 1


def test_unavailable_without_journal_files(
    journal: Journal,
    h: Harness,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("FAKE_JOURNAL_MODE", "nojournal")
    with caplog.at_level(logging.WARNING, logger="socmon.collectors.journald"):
        run = h.start()
        run.stop()  # already returned: no error
    unavailable = [r for r in caplog.records if "journal unavailable" in r.getMessage()]
    assert len(unavailable) == 1 and "no journal files" in unavailable[0].getMessage()
    assert not h.docs()
    assert all("--follow" not in c for c in journal.commands())


def test_unavailable_without_journalctl(
    tmp_path: Path, h: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with caplog.at_level(logging.WARNING, logger="socmon.collectors.journald"):
        h.start().stop()
    (record,) = [r for r in caplog.records if "journal unavailable" in r.getMessage()]
    assert "journalctl not found on PATH" in record.getMessage()


def test_real_journalctl_without_journal(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """On this container the real journalctl finds no journal: logged once, run returns."""
    exe = shutil.which("journalctl")
    if exe is None:
        pytest.skip("journalctl not installed")
    probe = subprocess.run([exe, "--lines=0", "--no-pager"], capture_output=True, timeout=30)
    if b"No journal files were found" not in probe.stderr:
        pytest.skip("this machine has a journal")
    with caplog.at_level(logging.WARNING, logger="socmon.collectors.journald"):
        h.start().stop()
    assert sum("journal unavailable" in r.getMessage() for r in caplog.records) == 1
    assert not h.docs()


def test_registered_entry_point_and_options() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    eps = pyproject["project"]["entry-points"]["socmon.collectors"]
    assert eps["journald"] == "collectors.journald:JournaldCollector"
    opts = JournaldOptions.model_validate({"type": "journald", "units": ["ssh.service"]})
    c = JournaldCollector(opts)
    assert c.parser == "journald" and c.source == "journald://local"
    with pytest.raises(ValueError, match="FIELD=value"):
        JournaldOptions.model_validate({"type": "journald", "matches": ["unit=ssh"]})
