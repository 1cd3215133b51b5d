"""The file collector against real files, a real Spool and Pipeline.

Each test runs the collector under asyncio (an event loop in a background thread, with a
`CollectorContext` as `socmon collect` builds it), while the test body writes, renames,
copies and truncates files as applications and logrotate do. What reached the spool is read
back through a spool consumer and compared line by line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import collectors.file.collector as collector_module
from collectors.base import CollectorContext
from collectors.file import FileCollector, FileOptions
from collectors.file.collector import STATE_FILE
from collectors.file.fingerprint import Line, cut_point, split_lines
from collectors.health import SourceHealth
from collectors.pipeline import Pipeline
from socmon.spool import Spool

FAST = {
    "scan_interval": 0.1,
    "poll_interval": 0.02,
    "close_removed_after": 0.2,
    "state_flush_interval": 0.05,
    "shutdown_timeout": 2.0,
}


def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Running:
    """A collector running under asyncio in a background thread until `stop()`."""

    def __init__(self, collector: Any, pipeline: Pipeline, state_dir: Path) -> None:
        self.collector = collector
        self.error: BaseException | None = None
        self.ctx: CollectorContext | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, args=(pipeline, state_dir))
        self._thread.start()
        wait_for(
            lambda: (
                (self.ctx is not None and self.ctx.ready.is_set()) or not self._thread.is_alive()
            ),
            what="collector ready",
        )
        if self.error is not None:
            raise self.error

    def _main(self, pipeline: Pipeline, state_dir: Path) -> None:
        async def go() -> None:
            self.ctx = CollectorContext(
                out=pipeline,
                shutdown=asyncio.Event(),
                state_dir=state_dir,
                health=SourceHealth(),
            )
            await self.collector.run(self.ctx)

        try:
            self._loop.run_until_complete(go())
        except BaseException as e:
            self.error = e
        finally:
            self._loop.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            assert self.ctx is not None
            shutdown = self.ctx.shutdown
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(shutdown.set)
        self._thread.join(20)
        assert not self._thread.is_alive(), "collector did not stop"
        if self.error is not None:
            raise self.error


class Harness:
    def __init__(self, root: Path, **spool_options: Any) -> None:
        self.root = root
        self.logs = root / "logs"
        self.logs.mkdir()
        self.state_dir = root / "state"
        self.spool = Spool(root / "spool", consumers=["test"], **spool_options)
        self.pipeline = Pipeline(self.spool)
        self.running: list[Running] = []

    def start(self, paths: list[str] | None = None, **options: Any) -> Running:
        opts = {**FAST, **options}
        collector = FileCollector(
            FileOptions(type="file", paths=paths or [str(self.logs / "*.log")], **opts)
        )
        run = Running(collector, self.pipeline, self.state_dir)
        self.running.append(run)
        return run

    def docs(self) -> list[dict[str, Any]]:
        reader = self.spool.reader("test")
        reader.rewind()
        out: list[dict[str, Any]] = []
        while batch := reader.read(10_000):
            out += [orjson.loads(r.payload) for r in batch]
        return out

    def lines(self) -> list[str]:
        return [d["event"]["original"] for d in self.docs()]

    def wait_lines(self, n: int, timeout: float = 10.0) -> list[str]:
        wait_for(lambda: len(self.docs()) >= n, timeout, f"{n} lines in the spool")
        return self.lines()

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads((self.state_dir / STATE_FILE).read_bytes())
        return data

    def close(self) -> None:
        for run in self.running:
            if run._thread.is_alive():
                run.stop()
        self.spool.close()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def append(path: Path, *lines: str | bytes) -> None:
    with open(path, "ab") as f:
        for line in lines:
            f.write(line if isinstance(line, bytes) else line.encode() + b"\n")


# --------------------------------------------------------------------------- start, appends


def test_start_at_end_reads_only_what_is_appended(h: Harness) -> None:
    log = h.logs / "app.log"
    append(log, "old 1", "old 2")
    run = h.start()
    append(log, "new 1", "new 2")
    assert h.wait_lines(2) == ["new 1", "new 2"]
    time.sleep(0.2)
    append(log, "new 3")
    assert h.wait_lines(3)[2] == "new 3"
    run.stop()
    docs = h.docs()
    assert len(docs) == 3
    assert all(d["event"]["dataset"] == "syslog" for d in docs)  # parser "auto"
    assert len({d["_id"] for d in docs}) == 3
    (row,) = h.pipeline.health.snapshot()
    assert (row["source"], row["collector"], row["events"]) == (f"file://{log}", "file", 3)


def test_start_at_beginning_reads_existing_lines(h: Harness) -> None:
    log = h.logs / "app.log"
    append(log, "old 1", "old 2")
    h.start(start_at="beginning")
    append(log, "new 1")
    assert h.wait_lines(3) == ["old 1", "old 2", "new 1"]


def test_start_at_end_keeps_a_partial_last_line(h: Harness) -> None:
    """A line being written at start-up is read once complete, not cut in half."""
    log = h.logs / "app.log"
    append(log, "old 1", b"half of a li")
    h.start()
    append(log, b"ne\n")
    assert h.wait_lines(1) == ["half of a line"]


def test_file_appearing_after_start_is_read_from_its_beginning(h: Harness) -> None:
    h.start()  # start_at: end applies only to files present at start-up
    append(h.logs / "late.log", "first", "second")
    assert h.wait_lines(2) == ["first", "second"]


def test_glob_and_exclude(h: Harness) -> None:
    (h.logs / "sub" / "deep").mkdir(parents=True)
    wanted = [h.logs / "a.log", h.logs / "sub" / "b.log", h.logs / "sub" / "deep" / "c.log"]
    unwanted = [
        h.logs / "a.log.gz",
        h.logs / "sub" / "skip-me.log",
        h.logs / "notes.txt",
        h.logs / "sub" / "deep" / "d.log.gz",
    ]
    h.start(
        paths=[str(h.logs / "**" / "*.log"), str(h.logs / "**" / "*.gz")],
        exclude=["*.gz", str(h.logs / "sub" / "skip-*")],
    )
    for p in wanted + unwanted:
        append(p, f"from {p.name}")
    lines = h.wait_lines(3)
    time.sleep(0.4)  # two more scans: nothing else comes
    assert sorted(h.lines()) == sorted(f"from {p.name}" for p in wanted)
    assert sorted(lines) == sorted(h.lines())


def test_partial_line_completed_later(h: Harness) -> None:
    log = h.logs / "app.log"
    h.start()
    append(log, b"first\nsecond hal")
    assert h.wait_lines(1) == ["first"]
    time.sleep(0.3)
    assert h.lines() == ["first"]  # the partial line waits
    append(log, b"f\r\n\nthird\n")  # CRLF is stripped; the empty line is not an event
    assert h.wait_lines(3) == ["first", "second half", "third"]
    docs = h.docs()
    assert docs[1]["message"] == "second half"
    time.sleep(0.2)
    assert len(h.docs()) == 3


# --------------------------------------------------------------------------- awkward content


def test_lines_longer_than_max_are_delivered_in_pieces(h: Harness) -> None:
    log = h.logs / "app.log"
    h.start()
    long_ascii = "A" * (150 * 1024)
    long_utf8 = "é" * 40_000  # 80 000 bytes of two-byte characters
    append(log, long_ascii, "short", long_utf8)
    lines = h.wait_lines(6)
    assert [len(x.encode()) for x in lines[:3]] == [65536, 65536, 150 * 1024 - 131072]
    assert "".join(lines[:3]) == long_ascii
    assert lines[3] == "short"
    assert "".join(lines[4:6]) == long_utf8  # cut between characters, both pieces valid
    docs = h.docs()
    assert not any("invalid UTF-8" in d.get("error", {}).get("message", "") for d in docs)
    assert len({d["_id"] for d in docs}) == 6
    pieces = [docs[i] for i in (0, 1, 2, 4, 5)]
    assert all("_framing" in d["tags"] for d in pieces)  # cut pieces say so
    assert "cut here" in docs[0]["error"]["message"]
    assert "continues the previous event" in docs[2]["error"]["message"]
    assert "_framing" not in docs[3].get("tags", [])


def test_invalid_utf8_is_stored_with_parse_failure(h: Harness) -> None:
    log = h.logs / "app.log"
    h.start(parser="syslog")
    append(log, b"<13>Nov 14 22:13:20 host app: bad \xff\xfe bytes\n", "<13>fine")
    h.wait_lines(2)
    bad, good = h.docs()
    assert "_parse_failure" in bad["tags"]
    assert "invalid UTF-8" in bad["error"]["message"]
    assert "\\xff\\xfe" in bad["event"]["original"]
    assert "_parse_failure" not in good.get("tags", [])


def test_split_lines_is_deterministic_across_chunkings() -> None:
    """A re-read in other chunk sizes cuts at the same offsets (same positions, same ids)."""
    data = (
        b"short\n" + "é".encode() * 100 + b"\n\x00\x00\x00after hole\n\r\n" + b"x" * 250 + b"\nend"
    )
    whole = split_lines(data, 1000, 64, final=True)
    for step in (1, 7, 64, 65, 100):
        got: list[Line] = []
        buf, base, after_cut = b"", 1000, False
        for i in range(0, len(data), step):
            buf += data[i : i + step]
            cut = split_lines(buf, base, 64, final=i + step >= len(data), after_cut=after_cut)
            got += cut.lines
            buf, base, after_cut = buf[cut.consumed :], base + cut.consumed, cut.after_cut
        assert got == whole.lines, step
    assert whole.blank == 1 and whole.nul_bytes == 3
    notes = [n for _, _, _, n in whole.lines]
    assert notes[1] == ("line longer than 64 bytes: cut here, continued in the next event",)
    assert notes[2] == (
        "continues the previous event (a line longer than 64 bytes)",
        "line longer than 64 bytes: cut here, continued in the next event",
    )
    assert notes[-1] == ("no line end: the file was closed before the line was completed",)
    assert cut_point("aé".encode(), 0, 2) == 1  # never splits the é


# --------------------------------------------------------------------------- rotation


def _writer(
    path: Path,
    total: int,
    every: int,
    rotate: Callable[[int], None],
    pace: float,
) -> threading.Thread:
    """Write `total` numbered lines to `path` (O_APPEND, one write per line), calling
    `rotate(generation)` after every `every` lines with the file closed."""

    def run() -> None:
        n = 0
        generation = 0
        while n < total:
            with open(path, "ab", buffering=0) as f:
                for _ in range(min(every, total - n)):
                    f.write(f"line {n:06d} {'x' * 40}\n".encode())
                    n += 1
                    if n % 50 == 0:
                        time.sleep(pace)
            if n < total:
                generation += 1
                rotate(generation)

    t = threading.Thread(target=run)
    t.start()
    return t


def _assert_exactly_once(h: Harness, total: int, timeout: float = 15.0) -> None:
    expected = {f"line {n:06d} {'x' * 40}" for n in range(total)}
    wait_for(lambda: len(h.docs()) >= total, timeout, f"{total} lines")
    time.sleep(0.5)  # several scans and polls: a duplicate would show now
    lines = h.lines()
    doubled = [line for line, c in Counter(lines).items() if c > 1]
    assert not doubled, f"{len(doubled)} lines twice, e.g. {doubled[:3]}"
    assert set(lines) == expected
    assert len(lines) == total


@pytest.mark.parametrize("glob_rotated", [False, True], ids=["only-app.log", "app.log*"])
def test_rename_rotation_during_continuous_writing(h: Harness, glob_rotated: bool) -> None:
    """Rename rotation (app.log -> app.log.<n>, new app.log) while lines keep coming.

    The renamed file is read to its end through the open descriptor, the new one from 0:
    every line exactly once. With only `app.log` in `paths`, a file must live at that name
    for at least one scan to be seen at all (true of any glob-based tailer): the writer
    rotates every ~0.25 s, the collector scans every 0.1 s.
    """
    log = h.logs / "app.log"
    total, every = 6000, 500
    paths = [str(log) + ("*" if glob_rotated else "")]
    h.start(paths=paths)

    def rotate(generation: int) -> None:
        os.rename(log, h.logs / f"app.log.{generation}")

    writer = _writer(log, total, every, rotate, pace=0.025)
    writer.join()
    _assert_exactly_once(h, total)
    if not glob_rotated:  # rotated files were read to the end, then closed
        wait_for(lambda: _open_paths(h.logs) <= {str(log)}, 5, "rotated files closed")


def test_copytruncate_during_writing(h: Harness) -> None:
    """copytruncate rotation (copy app.log to app.log.<n>, truncate app.log) while writing.

    The race inherent to copytruncate: lines the application writes between the copy and the
    truncate are in neither file, and no tailer can deliver them (Filebeat documents the
    same). logrotate's copytruncate leaves that window open; here the writer pauses while
    the rotation copies and truncates (as if the window were empty), so exact delivery can
    be asserted. The other loss copytruncate threatens is lines written before the copy but
    not yet read when the truncate happens: they are read from the copy, which `paths`
    matches (`app.log*`) and which has the same fingerprint, from the saved offset on. The
    truncated file is read again from 0. Result: every line exactly once, however far the
    tailer lags behind the writer.
    """
    log = h.logs / "app.log"
    total, every = 6000, 400
    h.start(paths=[str(log) + "*"])

    def rotate(generation: int) -> None:
        shutil.copyfile(log, h.logs / f"app.log.{generation}")
        os.truncate(log, 0)

    writer = _writer(log, total, every, rotate, pace=0.01)
    writer.join()
    _assert_exactly_once(h, total)


def test_truncation_restarts_from_zero(h: Harness) -> None:
    log = h.logs / "app.log"
    h.start()
    append(log, *[f"before {i} {'y' * 60}" for i in range(40)])  # > 1 KiB: fingerprinted
    h.wait_lines(40)
    with open(log, "r+b") as f:  # truncate, then more than before, in place (same inode)
        f.truncate(0)
        f.write(b"".join(f"after {i} {'z' * 70}\n".encode() for i in range(60)))
    lines = h.wait_lines(100)
    assert lines[40:] == [f"after {i} {'z' * 70}" for i in range(60)]
    time.sleep(0.3)
    assert len(h.docs()) == 100


def test_deleted_file_is_read_to_the_end_and_closed(h: Harness) -> None:
    log = h.logs / "app.log"
    h.start()
    with open(log, "ab") as f:
        f.write(b"one\n")
        f.flush()
        wait_for(lambda: h.lines() == ["one"], what="first line")
        f.write(b"".join(f"more {i}\n".encode() for i in range(2000)))
        f.flush()
        os.unlink(log)  # deleted while the tailer may still be behind
        f.write(b"written after the delete\nno line end")
    lines = h.wait_lines(2003)
    assert lines[-2:] == ["written after the delete", "no line end"]  # delivered at close
    assert len(lines) == 2003
    assert "_framing" in h.docs()[-1]["tags"]
    wait_for(lambda: not _open_paths(h.logs), 5, "deleted file closed")
    wait_for(lambda: [f["status"] for f in h.state()["files"]] == ["done"], 5, "state")


def _open_paths(under: Path) -> set[str]:
    """Paths under `under` this process holds open (Linux /proc)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc")
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(under)):
                out.add(target.removesuffix(" (deleted)"))
    return out


# --------------------------------------------------------------------------- offsets


def test_restart_resumes_from_saved_offsets(h: Harness) -> None:
    log = h.logs / "app.log"
    append(log, "before start")
    run = h.start()
    append(log, "a1", "a2", b"a3 parti")
    h.wait_lines(2)
    run.stop()
    append(log, b"al\n", "b1")  # written while stopped
    h.start()
    append(log, "c1")
    assert h.wait_lines(5) == ["a1", "a2", "a3 partial", "b1", "c1"]
    time.sleep(0.3)
    assert len(h.docs()) == 5


def test_rotation_while_stopped(h: Harness) -> None:
    """Renamed (and appended to) while socmon was stopped: the rest of the old file is read,
    and the new file at the known path is read from its beginning despite start_at=end."""
    log = h.logs / "app.log"
    run = h.start(paths=[str(log)])
    append(log, *[f"gen1 {i} {'w' * 50}" for i in range(30)])
    h.wait_lines(30)
    run.stop()
    append(log, "gen1 tail written before the rename")
    os.rename(log, h.logs / "app.log.1")
    append(log, "gen2 first", "gen2 second")
    h.start(paths=[str(log)])
    lines = h.wait_lines(33)
    assert sorted(lines[30:]) == sorted(
        ["gen1 tail written before the rename", "gen2 first", "gen2 second"]
    )
    time.sleep(0.3)
    assert len(h.docs()) == 33


def test_crash_between_spooling_and_offset_save_rereads_with_same_ids(h: Harness) -> None:
    """A crash after `process` returned but before the offsets were saved is simulated by
    putting back an older offsets file: the lines after that offset are read again, with
    the same event ids (source + fingerprint:offset + bytes), so the store keeps one copy."""
    log = h.logs / "app.log"
    run = h.start()
    append(log, *[f"early {i}" for i in range(3)])
    h.wait_lines(3)
    run.stop()
    old_state = (h.state_dir / STATE_FILE).read_bytes()
    run = h.start()
    append(log, *[f"late {i}" for i in range(4)])
    h.wait_lines(7)
    run.stop()
    first = {d["event"]["original"]: d["_id"] for d in h.docs()}
    (h.state_dir / STATE_FILE).write_bytes(old_state)  # the offsets as before "late"
    h.start()
    h.wait_lines(11)
    time.sleep(0.3)
    docs = h.docs()
    assert len(docs) == 11
    replayed = docs[7:]
    assert [d["event"]["original"] for d in replayed] == [f"late {i}" for i in range(4)]
    assert all(d["_id"] == first[d["event"]["original"]] for d in replayed)
    assert len({d["_id"] for d in docs}) == 7


def test_offsets_are_saved_only_after_spooling(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state file never claims an offset past the end of what `process` accepted."""
    log = h.logs / "app.log"
    saved: list[int] = []
    accepted_end = [0]
    real_process = h.pipeline.process

    def process(messages: Any, *, timeout: float | None = None) -> list[int]:
        seqs = real_process(messages, timeout=timeout)
        for m in messages:
            end = int(m.position.rsplit(":", 1)[1]) + len(m.data) + 1
            accepted_end[0] = max(accepted_end[0], end)
        return seqs

    monkeypatch.setattr(h.pipeline, "process", process)
    real_write = collector_module.write_atomic

    def write_atomic(target: Path, data: bytes) -> None:
        for f in orjson.loads(data)["files"]:
            saved.append(f["offset"])
            assert f["offset"] <= accepted_end[0]
        real_write(target, data)

    monkeypatch.setattr(collector_module, "write_atomic", write_atomic)
    h.start()
    for i in range(50):
        append(log, f"line {i:02d}")
        time.sleep(0.005)
    h.wait_lines(50)
    wait_for(lambda: saved[-1:] == [50 * 8], what="final offset saved")


def test_full_spool_pauses_tailing(tmp_path: Path) -> None:
    """`process` blocks while the spool is full: tailing pauses, nothing is dropped, and
    the collector still stops (after `shutdown_timeout`) while blocked."""
    h = Harness(tmp_path, max_bytes=60_000, segment_bytes=20_000)
    try:
        log = h.logs / "app.log"
        run = h.start()
        append(log, *[f"line {i:05d} {'p' * 100}" for i in range(1000)])
        time.sleep(1.0)
        stuck = len(h.docs())
        assert 0 < stuck < 1000  # paused, not dropped
        assert h.spool.stats().dropped == 0
        t0 = time.monotonic()
        run.stop()  # returns while the worker thread is still blocked in `process`
        assert time.monotonic() - t0 < 5
        assert _tail_threads() == 1
        saved = max(f["offset"] for f in h.state()["files"])
        assert saved <= os.path.getsize(log)

        reader = h.spool.reader("test")
        reader.rewind()  # docs() read ahead without committing
        seen: list[dict[str, Any]] = []
        expected = {f"line {i:05d} {'p' * 100}" for i in range(1000)}

        def drain() -> None:
            while {d["event"]["original"] for d in seen} != expected:
                batch = reader.read(100)
                if batch:
                    seen.extend(orjson.loads(r.payload) for r in batch)
                    reader.commit(batch[-1].seq)
                else:
                    time.sleep(0.01)

        drainer = threading.Thread(target=drain)
        drainer.start()
        # Space frees up: the blocked batch is accepted, the old worker saves and ends.
        wait_for(lambda: _tail_threads() == 0, 10, "stopped worker to end")
        h.start()  # the next run reads on from the saved offset
        drainer.join(20)
        assert not drainer.is_alive()
        ids: dict[str, set[str]] = {}
        for d in seen:
            ids.setdefault(d["event"]["original"], set()).add(d["_id"])
        assert set(ids) == expected
        assert all(len(v) == 1 for v in ids.values())  # a line read twice has one id
    finally:
        h.close()


def _tail_threads() -> int:
    return sum(t.name == "socmon-file-tail" for t in threading.enumerate())


# --------------------------------------------------------------------------- registration


def test_registered_entry_point_and_options() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    eps = pyproject["project"]["entry-points"]["socmon.collectors"]
    assert eps["file"] == "collectors.file.collector:FileCollector"
    opts = FileCollector.Options.model_validate({"type": "file", "paths": ["/var/log/*.log"]})
    c = FileCollector(opts)
    assert (opts.start_at, opts.max_line_bytes, opts.scan_interval) == ("end", 65536, 1.0)
    assert [r.address for r in c.resources()] == ["/var/log/*.log"]
    with pytest.raises(ValueError):
        FileCollector.Options.model_validate({"type": "file", "paths": []})
