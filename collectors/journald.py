"""The systemd journal, read from ``journalctl --output=json --follow``.

Delivery: **at-least-once**. Each entry is one JSON line; it is spooled as it is (parser
``journald``, see `collectors.journald_parse`) with its journal cursor as the event position,
so the same entry always gets the same event id. The cursor of the last spooled entry is
saved in ``<state_dir>/journald.cursor`` (temporary file, fsync, rename) only after
`Pipeline.process` returned and `Spool.sync` made the records durable; a restart continues
with ``--after-cursor``: nothing is skipped, and what is read twice (spooled after the last
save) has the same ids, which the store recognises. When the spool is full, reading stops,
the pipe fills and journalctl waits: the journal itself is the buffer (until journald's
own retention deletes old entries, which is logged by journald, not visible here).

Without a saved cursor, reading starts at ``since`` (journalctl's time syntax) if set, else
at the beginning of the journal or at its end (``start_at``). For ``end``, the cursor of the
journal's last entry is saved before following, so entries written before a restart are
not skipped even if none arrived meanwhile. A saved cursor journalctl refuses (journal
files rotated away, corruption) falls back to the cursor's timestamp (``--since=@<unix>``;
entries read twice keep their ids).

Where ``journalctl`` is missing or there is no journal (no systemd-journald, e.g. in a
container), the collector logs once that the journal is unavailable and returns. If
journalctl exits while following, it is started again after a delay (backing off to 30 s),
logged once per episode.
"""

from __future__ import annotations

import logging
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, ClassVar, Final, Literal

import orjson
from pydantic import Field, field_validator

from collectors.base import CollectorContext, CollectorOptions, Resource
from collectors.file.collector import BlockingSpooler, run_in_thread, write_atomic
from collectors.file.fingerprint import split_lines
from collectors.parsing import SourceContext
from collectors.pipeline import RawMessage
from collectors.syslog.parse import source_context
from socmon.logging import kv

__all__ = ["JournaldCollector", "JournaldOptions"]

log = logging.getLogger("socmon.collectors.journald")

CURSOR_FILE: Final = "journald.cursor"
READ_SIZE: Final = 1 << 16
PROBE_TIMEOUT: Final = 30.0
MAX_RESTART_DELAY: Final = 30.0
#: A journalctl that ran this long before exiting is a fresh failure (the back-off restarts).
STABLE_RUN: Final = 60.0
_MATCH = re.compile(r"^(?:\+|[A-Z0-9_]+=.*)$", re.S)
_CURSOR_TIME = re.compile(r"(?:^|;)t=([0-9a-f]+)(?:;|$)")


class JournaldOptions(CollectorOptions):
    journalctl: str = "journalctl"  # name on PATH, or a path
    start_at: Literal["beginning", "end"] = "end"
    since: str | None = None  # journalctl --since syntax, used when there is no saved cursor
    directory: str | None = None  # journal files of another machine or container
    units: list[str] = Field(default_factory=list)
    matches: list[str] = Field(default_factory=list)  # FIELD=value, "+" for OR
    batch: int = Field(default=500, ge=1)
    max_entry_bytes: int = Field(default=16 << 20, ge=4096)
    state_flush_interval: float = Field(default=0.2, ge=0)
    restart_delay: float = Field(default=1.0, gt=0)
    shutdown_timeout: float = Field(default=5.0, ge=0)

    @field_validator("matches")
    @classmethod
    def _journal_matches(cls, v: list[str]) -> list[str]:
        for m in v:
            if not _MATCH.match(m):
                raise ValueError(f"journal match {m!r} is not FIELD=value (upper case) or +")
        return v


def cursor_time(cursor: str) -> int | None:
    """Unix seconds of a journal cursor's realtime field (``t=<hex µs>``), if it has one."""
    m = _CURSOR_TIME.search(cursor)
    return int(m.group(1), 16) // 1_000_000 if m else None


class JournaldCollector:
    """The local (or a mounted) systemd journal. Delivery: at-least-once (module docstring).

    The journal cursor is saved only after the entries are spooled; entries read again
    after a crash keep their ids (the cursor is their position).
    """

    type_name: ClassVar[str] = "journald"
    can_acknowledge: ClassVar[bool] = True
    Options: ClassVar[type[JournaldOptions]] = JournaldOptions

    def __init__(self, options: JournaldOptions) -> None:
        self.options = options
        self.source = f"journald://{options.directory or 'local'}"
        self.parser = "journald" if options.parser == "auto" else options.parser
        self.context = source_context(options.timezone)

    def resources(self) -> list[Resource]:
        return []  # journal readers do not exclude one another

    async def run(self, ctx: CollectorContext) -> None:
        def work(stop: threading.Event, ready: Callable[[], None]) -> None:
            _JournalReader(self, ctx, stop, ready).run()

        await run_in_thread(
            ctx, work, name="socmon-journald", shutdown_timeout=self.options.shutdown_timeout
        )


class _JournalReader:
    """One run of a JournaldCollector, in its own thread."""

    def __init__(
        self,
        collector: JournaldCollector,
        ctx: CollectorContext,
        stop: threading.Event,
        ready: Callable[[], None],
    ) -> None:
        self.opts = collector.options
        self.source = collector.source
        self.parser = collector.parser
        self.context: SourceContext = collector.context
        self.ctx = ctx
        self.stop = stop
        self.ready = ready
        self.spool = BlockingSpooler(ctx, stop)
        self.cursor_path = Path(ctx.state_dir) / CURSOR_FILE
        self.cursor: str | None = None
        self.cursor_refused = False
        self.dirty = False
        self.last_save = 0.0
        self.failing = False

    def run(self) -> None:
        self.cursor_path.parent.mkdir(parents=True, exist_ok=True)
        self.cursor = self._load_cursor()
        exe = self._probe()
        if exe is None:
            return
        if self.cursor is None and self.opts.since is None and self.opts.start_at == "end":
            self.cursor = self._tail_cursor(exe)
            if self.cursor is not None:
                self._save()
        self.ready()
        failures = 0
        while not self.stop.is_set():
            started = time.monotonic()
            got = self._follow(exe)
            if self.stop.is_set():
                break
            healthy = got > 0 or time.monotonic() - started > STABLE_RUN
            failures = 1 if healthy else failures + 1
            delay = min(MAX_RESTART_DELAY, self.opts.restart_delay * 2 ** (failures - 1))
            self.stop.wait(delay)
        if self.dirty:
            self._save()

    # ------------------------------------------------------------------ journalctl

    def _selection(self) -> list[str]:
        args: list[str] = []
        if self.opts.directory:
            args += ["--directory", self.opts.directory]
        for unit in self.opts.units:
            args += ["--unit", unit]
        return args

    def _probe(self) -> str | None:
        """journalctl's path, or None (logged once) when there is no journal to read."""
        exe = shutil.which(self.opts.journalctl)
        reason = None
        if exe is None:
            reason = f"{self.opts.journalctl} not found on PATH"
        else:
            cmd = [exe, "--lines=0", "--no-pager"]
            if self.opts.directory:
                cmd += ["--directory", self.opts.directory]
            try:
                r = subprocess.run(
                    cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                reason = f"journalctl failed to run: {e}"
            else:
                err = r.stderr.decode("utf-8", "replace").strip()
                if r.returncode != 0:
                    reason = f"journalctl exit status {r.returncode}: {err[-500:]}"
                elif "No journal files were found" in err:
                    reason = "no journal files (systemd-journald does not run here)"
                elif err:  # e.g. the hint that only the user's own journal is readable
                    log.warning("journalctl reports %s", kv(message=err[-500:]))
        if reason is not None:
            log.warning(
                "journal unavailable, journald collector not running %s",
                kv(
                    reason=reason,
                    systemd_running=os.path.isdir("/run/systemd/system"),
                    directory=self.opts.directory or "",
                ),
            )
            return None
        return exe

    def _tail_cursor(self, exe: str) -> str | None:
        """The cursor of the journal's last entry (None when it is empty)."""
        cmd = [exe, "--output=json", "--all", "--lines=1", "--no-pager", *self._selection()]
        try:
            r = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            log.warning("journal end not found, reading from the start %s", kv(error=e))
            return None
        for line in reversed(r.stdout.splitlines()):
            cursor = _cursor_of(line)
            if cursor is not None:
                return cursor
        return None

    def _command(self, exe: str) -> list[str]:
        cmd = [exe, "--output=json", "--follow", "--all", "--no-pager", *self._selection()]
        if self.cursor is not None and not self.cursor_refused:
            cmd += [f"--after-cursor={self.cursor}", "--no-tail"]
        elif self.cursor is not None and cursor_time(self.cursor) is not None:
            cmd += [f"--since=@{cursor_time(self.cursor)}", "--no-tail"]
        elif self.opts.since is not None:
            cmd += [f"--since={self.opts.since}", "--no-tail"]
        else:
            # From the beginning; also for start_at=end when the journal was empty at start
            # (the end was otherwise turned into a cursor): nothing written since is skipped.
            cmd += ["--no-tail"]
        return cmd + list(self.opts.matches)

    def _follow(self, exe: str) -> int:
        """Run journalctl until it exits or we stop; spool its lines, save the cursor.
        Returns the number of lines it printed."""
        cmd = self._command(exe)
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
                )
            except OSError as e:
                self._failed(f"journalctl failed to start: {e}")
                return 0
            try:
                got = self._read_entries(proc)
            finally:
                _stop_process(proc)
            message = _tail_of(errors)
        if self.stop.is_set():
            return got
        if (
            got == 0
            and self.cursor is not None
            and not self.cursor_refused
            and ("cursor" in message.lower())
        ):
            self.cursor_refused = True
            log.warning(
                "journalctl refused the saved cursor; continuing from its time %s",
                kv(cursor=self.cursor, error=message),
            )
            return got
        self._failed(f"journalctl exited with status {proc.returncode}: {message}")
        return got

    def _read_entries(self, proc: subprocess.Popen[bytes]) -> int:
        """Spool what journalctl prints until it exits or we stop; the number of lines."""
        assert proc.stdout is not None
        got = 0
        buf = b""
        after_cut = False
        with proc.stdout:
            fd = proc.stdout.fileno()
            while not self.stop.is_set():
                readable, _, _ = select.select([fd], [], [], 0.2)
                if readable:
                    chunk = os.read(fd, READ_SIZE)
                    if not chunk:
                        break  # journalctl exited
                    buf = buf + chunk if buf else chunk
                    cut = split_lines(buf, 0, self.opts.max_entry_bytes, after_cut=after_cut)
                    buf, after_cut = buf[cut.consumed :], cut.after_cut
                    if cut.lines:
                        if got == 0 and self.failing:
                            self.failing = False
                            log.info("journal readable again %s", kv(source=self.source))
                        got += len(cut.lines)
                        if not self._deliver([(line, notes) for _, line, _, notes in cut.lines]):
                            break
                if self.dirty and (
                    time.monotonic() - self.last_save >= self.opts.state_flush_interval
                ):
                    self._save()
        return got

    def _failed(self, reason: str) -> None:
        if not self.failing:
            self.failing = True
            log.warning("journal reading interrupted, restarting journalctl %s", kv(reason=reason))

    def _deliver(self, lines: list[tuple[bytes, tuple[str, ...]]]) -> bool:
        """Spool journal lines in batches; the cursor advances after each accepted batch."""
        now = time.time()
        step = self.opts.batch
        for i in range(0, len(lines), step):
            messages: list[RawMessage] = []
            last: str | None = None
            for line, notes in lines[i : i + step]:
                cursor = _cursor_of(line)
                if cursor is not None:
                    last = cursor
                messages.append(
                    RawMessage(
                        source=self.source,
                        data=line,
                        received_at=now,
                        position=cursor,  # None: not an entry; the spool seq is used
                        parser=self.parser,
                        context=self.context,
                        collector=JournaldCollector.type_name,
                        notes=notes,  # an entry longer than max_entry_bytes, cut
                    )
                )
            if not self.spool(messages):
                return False
            if last is not None:
                self.cursor = last
                self.cursor_refused = False
                self.dirty = True
        return True

    # ------------------------------------------------------------------ cursor file

    def _load_cursor(self) -> str | None:
        try:
            data = orjson.loads(self.cursor_path.read_bytes())
            cursor = data["cursor"]
            if not isinstance(cursor, str) or not cursor:
                raise ValueError("no cursor")
            return cursor
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as e:
            log.error(
                "journal cursor file unreadable, starting without it %s",
                kv(path=self.cursor_path, error=e),
            )
            return None

    def _save(self) -> None:
        if self.cursor is None:
            return
        self.ctx.out.spool.sync()  # the cursor must never be durable before the entries
        write_atomic(self.cursor_path, orjson.dumps({"cursor": self.cursor}) + b"\n")
        self.dirty = False
        self.last_save = time.monotonic()


def _cursor_of(line: bytes) -> str | None:
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    cursor = entry.get("__CURSOR") if isinstance(entry, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail_of(f: IO[bytes]) -> str:
    """The last 2000 bytes written to `f` (journalctl's stderr), as text."""
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - 2000))
    return f.read().decode("utf-8", "replace").strip()
