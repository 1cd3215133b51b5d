"""Tail log files matched by globs, following rotation, with durable offsets.

Delivery: **at-least-once**. A line is *accepted* when `Pipeline.process` has returned its
spool seqs. The file's offset is saved (in ``<state_dir>/files.json``: temporary file, fsync,
rename, fsync of the directory) only after that, and only after `Spool.sync` made those
records durable, so a crash (kill -9 or power loss) at any instant loses no line: a restart
resumes from the saved offset and re-reads at most the lines spooled since the last save.
Those re-read lines have the same event ids (source + ``key:offset`` + bytes, see
`collectors.file.fingerprint`), so the store recognises them as already stored. When the spool
is full (``when_full="block"``), `process` blocks and tailing simply pauses: the data waits
in the file. With ``when_full="drop_newest"`` a refused batch is retried until accepted.

What can still be missed, as by any tailer (Filebeat documents the same):

- ``copytruncate`` rotation: lines written between the copy and the truncate exist in neither
  file. Lines written before the copy but not yet read when the truncate happens are in the
  copy: they are read from it (same fingerprint, resumed at the saved offset) when `paths`
  match the copy's name (e.g. ``/var/log/app.log*``), and lost otherwise.
- A file deleted (or rotated out of the globs and then deleted) before it was read to the end.
- A file created and renamed out of the globs between two scans (``scan_interval``) is never
  seen: rotate less often than that, or let `paths` match the rotated names.
- Files whose first `fingerprint_bytes` bytes are identical are taken for copies of one another
  while both exist with the same content at the end; a new file with a long constant header
  may be taken for the continuation of a rotated one (raise `fingerprint_bytes`).

File identity: the fingerprint (hash of the first ``fingerprint_bytes`` = 1 KiB) and, for
a file shorter than that, device + inode checked against the hash of the bytes it has, until
it has grown to 1 KiB. Short files are read at once (a rare security line must not wait for
1 KiB more); the price is that a plain copy (``cp``, not followed by a truncate) of a file
under 1 KiB that `paths` also match is read as a new file: lines duplicated, never lost. Each
file keeps the key it got when first seen (see `collectors.file.fingerprint`): event
positions are ``f"{key}:{offset}"`` of the line start.

Rotation:

- rename (``app.log`` -> ``app.log.1``, new ``app.log``): the open file is read to its end
  (it is identified by the open descriptor, then by fingerprint), and closed
  ``close_removed_after`` seconds after it stopped growing; the new file is read from 0.
- ``copytruncate``: a file found shorter than the read offset, or whose first bytes changed,
  is read again from 0 (a new key, so no id collides with the old content).
- A file that appears after start-up, or at a path that was tailed before (a rotation while
  socmon was stopped), is read from its beginning; ``start_at`` applies only to files first
  seen at start-up at a new path.

Lines end with LF; a partial last line is kept (not delivered, its start is the saved offset)
until it completes, or delivered as it is when the file is closed after removal. Lines longer
than ``max_line_bytes`` are delivered in pieces. Empty lines are counted in
`socmon_component_discarded_events_total{reason="empty_line"}`, not delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import glob
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

import orjson
from prometheus_client import Counter, Gauge
from pydantic import Field, field_validator

from collectors.base import CollectorContext, CollectorOptions, Resource
from collectors.file.fingerprint import (
    FINGERPRINT_BYTES,
    head_hash,
    short_key,
    split_lines,
    unique_key,
)
from collectors.health import DISCARDED
from collectors.parsing import SourceContext
from collectors.pipeline import RawMessage
from collectors.syslog.parse import source_context
from socmon.errors import SpoolFull
from socmon.logging import kv

__all__ = ["BlockingSpooler", "FileCollector", "FileOptions", "run_in_thread", "write_atomic"]

log = logging.getLogger("socmon.collectors.file")

STATE_FILE: Final = "files.json"
STATE_VERSION: Final = 1
#: Bytes read from one file per turn (all files get a turn before the next read).
READ_CHUNK: Final = 1 << 20
#: How long a path stays "known" (a new file there is a rotation, read from its beginning).
KNOWN_PATH_TTL: Final = 7 * 86400.0
#: Wait between retries when a ``drop_newest`` spool refused a batch.
RETRY_DELAY: Final = 0.5

TRUNCATIONS = Counter(
    "socmon_file_truncations_total",
    "Files found truncated or rewritten in place (copytruncate); read again from 0",
)
NUL_BYTES = Counter(
    "socmon_file_nul_skipped_bytes_total",
    "NUL bytes skipped at line starts (holes left by writers without O_APPEND)",
)
ERRORS = Counter(
    "socmon_file_errors_total",
    "File open/read/state errors",
    ["stage", "error_code"],
)
OPEN_FILES = Gauge("socmon_file_open_files", "Files held open by the file collectors")

# Statuses of a tracked file.
OPEN: Final = "open"  # descriptor held, being read
CLOSED: Final = "closed"  # known inode, no descriptor (idle, or loaded from the state file)
ORPHAN: Final = "orphan"  # its inode now holds other content (truncated); waits for a copy
DONE: Final = "done"  # removed and read to the end; kept `forget_after` to recognise copies


class FileOptions(CollectorOptions):
    paths: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    scan_interval: float = Field(default=1.0, gt=0)
    start_at: Literal["beginning", "end"] = "end"
    max_line_bytes: int = Field(default=64 << 10, ge=64)
    fingerprint_bytes: int = Field(default=FINGERPRINT_BYTES, ge=64, le=1 << 20)
    batch: int = Field(default=1000, ge=1)
    poll_interval: float = Field(default=0.2, gt=0)  # how often open files are checked
    close_removed_after: float = Field(default=2.0, ge=0)
    close_inactive: float = Field(default=300.0, gt=0)
    forget_after: float = Field(default=3600.0, gt=0)
    state_flush_interval: float = Field(default=0.2, ge=0)
    shutdown_timeout: float = Field(default=5.0, ge=0)

    @field_validator("paths", "exclude")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if any(not p.strip() for p in v):
            raise ValueError("empty path pattern")
        return v


def write_atomic(target: Path, data: bytes) -> None:
    """Write `data` to a temporary file, fsync it, rename it over `target`, fsync the dir."""
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)
    dfd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _error_code(e: OSError) -> str:
    return errno.errorcode.get(e.errno or 0, "EUNKNOWN")


class BlockingSpooler:
    """Hands batches to the pipeline for a source that can wait (files, the journal).

    `process(timeout=None)` blocks while a ``when_full="block"`` spool is full, so the
    source pauses. A ``drop_newest`` spool refuses the batch instead: it is retried every
    `RETRY_DELAY` seconds until accepted (the data waits in the file or journal; the spool
    counts each refusal in its `dropped` statistic). A batch larger than the whole spool is
    split. The episode is logged once when it starts and once when it ends.
    """

    def __init__(self, ctx: CollectorContext, stop: threading.Event) -> None:
        self.ctx = ctx
        self.stop = stop
        self.refused = False

    def __call__(self, messages: list[RawMessage]) -> bool:
        """Spool `messages`; True once accepted, False if stopping before that."""
        while True:
            try:
                seqs = self.ctx.out.process(messages, timeout=None)
            except SpoolFull:  # larger than the whole spool: halve it
                if len(messages) == 1:
                    raise
                half = len(messages) // 2
                return self(messages[:half]) and self(messages[half:])
            if seqs:
                if self.refused:
                    self.refused = False
                    log.info("spool accepting again %s", kv(source=messages[0].source))
                return True
            if not self.refused:
                self.refused = True
                log.warning(
                    "spool refused a batch (full, drop_newest); reading paused, retrying %s",
                    kv(count=len(messages), source=messages[0].source),
                )
            if self.stop.wait(RETRY_DELAY):
                return False


@dataclass(eq=False)
class _File:
    """One tracked file content: what is persisted, plus the runtime read state."""

    key: str  # position prefix of its events, fixed for its life
    source: str  # "file://<path where first seen>"
    path: str  # where it was last seen
    dev: int
    ino: int
    head_len: int  # bytes hashed into head_hash (the fingerprint length once fully grown)
    head_hash: str
    offset: int  # first byte not yet spooled (the saved offset)
    size: int = 0  # size at the last look
    mtime_ns: int = 0
    status: str = CLOSED
    since: float = 0.0  # unix time it became ORPHAN or DONE
    truncated_inode: tuple[int, int] | None = None  # the inode it was truncated on
    # runtime only
    fd: int = -1
    read_pos: int = 0  # == offset + len(partial)
    partial: bytes = b""
    listed: bool = False
    at_eof: bool = False
    idle_since: float = 0.0  # monotonic time data was last read
    deadline: float = 0.0  # monotonic: ORPHAN gives up waiting for a copy
    nul_warned: bool = False
    after_cut: bool = False  # reading inside a line whose first piece was delivered

    def state(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "source": self.source,
            "path": self.path,
            "dev": self.dev,
            "ino": self.ino,
            "head_len": self.head_len,
            "head_hash": self.head_hash,
            "offset": self.offset,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "status": CLOSED if self.status == OPEN else self.status,
            "since": self.since,
            "truncated_inode": list(self.truncated_inode) if self.truncated_inode else None,
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> _File:
        t = d.get("truncated_inode")
        status = d["status"]
        if status not in (CLOSED, ORPHAN, DONE):
            raise ValueError(f"unknown status {status!r}")
        return cls(
            key=str(d["key"]),
            source=str(d["source"]),
            path=str(d["path"]),
            dev=int(d["dev"]),
            ino=int(d["ino"]),
            head_len=int(d["head_len"]),
            head_hash=str(d["head_hash"]),
            offset=int(d["offset"]),
            size=int(d["size"]),
            mtime_ns=int(d["mtime_ns"]),
            status=status,
            since=float(d["since"]),
            truncated_inode=(int(t[0]), int(t[1])) if t else None,
        )


class FileCollector:
    """Tail files by glob. Delivery: at-least-once (see the module docstring).

    Offsets are saved only after the lines are in the spool (and the spool is synced); a
    re-read after a crash yields the same event ids. Rotation by rename and by copytruncate
    is followed through file fingerprints; a full spool pauses tailing.
    """

    type_name: ClassVar[str] = "file"
    can_acknowledge: ClassVar[bool] = True
    Options: ClassVar[type[FileOptions]] = FileOptions

    def __init__(self, options: FileOptions) -> None:
        self.options = options
        self.patterns = [os.path.abspath(os.path.expanduser(p)) for p in options.paths]
        self.excludes = [os.path.expanduser(p) for p in options.exclude]
        self.context = source_context(options.timezone)

    def resources(self) -> list[Resource]:
        return [Resource("path", p) for p in self.patterns]

    async def run(self, ctx: CollectorContext) -> None:
        def work(stop: threading.Event, ready: Callable[[], None]) -> None:
            _Tailer(self, ctx, stop, ready).run()

        await run_in_thread(
            ctx, work, name="socmon-file-tail", shutdown_timeout=self.options.shutdown_timeout
        )


async def run_in_thread(
    ctx: CollectorContext,
    work: Callable[[threading.Event, Callable[[], None]], None],
    *,
    name: str,
    shutdown_timeout: float,
) -> None:
    """Run the blocking `work(stop, ready)` in a daemon thread until it returns or
    `ctx.shutdown` is set (then `stop` is set and `work` gets `shutdown_timeout` seconds to
    finish its batch and save its position). `ready()` sets `ctx.ready`; an exception of
    `work` is raised here.

    A thread blocked in `Pipeline.process` on a full spool cannot be interrupted: after the
    timeout it is left behind (it ends when the spool frees space or is closed; what it had
    not spooled is read again at the next start, since its position was not saved).
    """
    loop = asyncio.get_running_loop()
    stop = threading.Event()
    finished = asyncio.Event()
    errors: list[BaseException] = []

    def call_soon(fn: Callable[[], Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            loop.call_soon_threadsafe(fn)

    def target() -> None:
        try:
            work(stop, lambda: call_soon(ctx.ready.set))
        except BaseException as e:
            errors.append(e)
        finally:
            call_soon(finished.set)

    threading.Thread(target=target, name=name, daemon=True).start()
    try:
        waits = {
            asyncio.ensure_future(ctx.shutdown.wait()),
            asyncio.ensure_future(finished.wait()),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
    finally:
        stop.set()
        if not finished.is_set():
            try:
                await asyncio.wait_for(finished.wait(), shutdown_timeout)
            except TimeoutError:
                log.warning(
                    "collector still blocked on a full spool at shutdown; the unspooled rest "
                    "is read again at the next start %s",
                    kv(thread=name),
                )
    if errors:
        raise errors[0]


class _Tailer:
    """One run of a FileCollector, in its own thread (file I/O and `process` block)."""

    def __init__(
        self,
        collector: FileCollector,
        ctx: CollectorContext,
        stop: threading.Event,
        ready: Callable[[], None],
    ) -> None:
        self.opts = collector.options
        self.patterns = collector.patterns
        self.excludes = collector.excludes
        self.context: SourceContext = collector.context
        self.ctx = ctx
        self.stop = stop
        self.ready = ready
        self.n = self.opts.fingerprint_bytes
        self.state_path = Path(ctx.state_dir) / STATE_FILE
        self.files: list[_File] = []
        self.known_paths: dict[str, float] = {}
        self.dirty = False
        self.rescan = False
        self.last_save = 0.0
        self.warned: set[str] = set()  # paths with an open error logged (once per episode)
        self.copies_noted: set[tuple[int, int]] = set()
        self.spool = BlockingSpooler(ctx, stop)
        self.orphan_wait = max(2 * self.opts.scan_interval, self.opts.close_removed_after)

    # ------------------------------------------------------------------ main loop

    def run(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self._load()
        try:
            self._scan(initial=True)
            self._save()
            self.ready()
            next_scan = time.monotonic() + self.opts.scan_interval
            while not self.stop.is_set():
                busy = False
                for f in [f for f in self.files if f.status == OPEN]:
                    if self.stop.is_set():
                        break
                    busy |= self._read(f)
                mono = time.monotonic()
                if mono >= next_scan or self.rescan:
                    self.rescan = False
                    self._scan(initial=False)
                    next_scan = mono + self.opts.scan_interval
                self._housekeeping(mono, time.time())
                if self.dirty and mono - self.last_save >= self.opts.state_flush_interval:
                    self._save()
                if not busy:
                    self.stop.wait(min(self.opts.poll_interval, max(0.0, next_scan - mono)))
            if self.dirty:
                self._save()
        finally:
            for f in self.files:
                if f.fd >= 0:
                    self._close_fd(f)

    # ------------------------------------------------------------------ state

    def _load(self) -> None:
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            return
        try:
            data = orjson.loads(raw)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"unknown state version {data.get('version')!r}")
            files = [_File.from_state(d) for d in data["files"]]
            known = {str(p): float(t) for p, t in data.get("paths", {}).items()}
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            aside = self.state_path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
            os.replace(self.state_path, aside)
            ERRORS.labels("receiving", "state_corrupt").inc()
            log.error(
                "file offsets unreadable, starting without them %s",
                kv(path=self.state_path, moved_to=aside, error=e),
            )
            return
        mono = time.monotonic()
        for f in files:
            if f.status == ORPHAN:
                f.deadline = mono + self.orphan_wait
        self.files = files
        self.known_paths = known

    def _save(self) -> None:
        # The offsets must never be durable before the lines they cover: sync the spool first.
        self.ctx.out.spool.sync()
        now = time.time()
        self.known_paths = {p: t for p, t in self.known_paths.items() if now - t < KNOWN_PATH_TTL}
        data = orjson.dumps(
            {
                "version": STATE_VERSION,
                "files": [f.state() for f in self.files],
                "paths": self.known_paths,
            },
            option=orjson.OPT_INDENT_2,
        )
        write_atomic(self.state_path, data)
        self.dirty = False
        self.last_save = time.monotonic()

    # ------------------------------------------------------------------ discovery

    def _excluded(self, path: str) -> bool:
        name = os.path.basename(path)
        for pattern in self.excludes:
            if fnmatchcase(path, pattern):
                return True
            if "/" not in pattern and fnmatchcase(name, pattern):
                return True
        return False

    def _glob(self) -> list[str]:
        found: dict[str, None] = {}
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern, recursive=True)):
                if not self._excluded(path):
                    found[path] = None
        return list(found)

    def _scan(self, *, initial: bool) -> None:
        now = time.time()
        listing: dict[tuple[int, int], tuple[str, os.stat_result]] = {}
        for path in self._glob():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            except OSError as e:
                self._warn_once(path, "stat", e)
                continue
            if stat.S_ISREG(st.st_mode):
                listing.setdefault((st.st_dev, st.st_ino), (path, st))
        tracked = {(f.dev, f.ino): f for f in self.files if f.status in (OPEN, CLOSED)}
        for t in tracked.values():
            t.listed = False
        new: list[str] = []
        for ident, (path, st) in listing.items():
            f = tracked.get(ident)
            if f is None:
                new.append(path)
                continue
            f.listed = True
            self.known_paths[path] = now
            if f.path != path:
                log.info("file renamed %s", kv(source=f.source, old=f.path, new=path))
                f.path = path
                self.dirty = True
            if f.status == CLOSED and (st.st_size != f.offset or st.st_mtime_ns != f.mtime_ns):
                self._reopen(f)
        for path in new:
            self._track_new(path, initial=initial)
        for f in list(self.files):
            if f.status == CLOSED and not f.listed and not self._follow_renamed(f):
                self._finish(f, now, reason="removed")

    def _open(self, path: str) -> int | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as e:
            self._warn_once(path, "open", e)
            return None
        if path in self.warned:
            self.warned.discard(path)
            log.info("file readable again %s", kv(path=path))
        OPEN_FILES.inc()
        return fd

    def _close_fd(self, f: _File) -> None:
        with contextlib.suppress(OSError):
            os.close(f.fd)
        f.fd = -1
        OPEN_FILES.dec()

    def _warn_once(self, path: str, stage: str, e: OSError) -> None:
        ERRORS.labels("receiving", _error_code(e)).inc()
        if path not in self.warned:
            self.warned.add(path)
            log.warning("file not readable %s", kv(path=path, stage=stage, error=e))

    def _attach(self, f: _File, fd: int, st: os.stat_result, path: str, *, listed: bool) -> None:
        f.fd = fd
        f.dev, f.ino = st.st_dev, st.st_ino
        f.path = path
        f.status = OPEN
        f.read_pos = f.offset
        f.partial = b""
        f.after_cut = False
        f.listed = listed
        f.at_eof = False
        f.size = st.st_size
        f.mtime_ns = st.st_mtime_ns
        f.idle_since = time.monotonic()
        self.dirty = True

    def _reopen(self, f: _File) -> None:
        """A known inode (idle-closed, or from the state file) changed: open it again."""
        fd = self._open(f.path)
        if fd is None:
            return
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (f.dev, f.ino):  # renamed meanwhile: next scan
            os.close(fd)
            OPEN_FILES.dec()
            return
        self._attach(f, fd, st, f.path, listed=True)
        if st.st_size < f.offset or not self._head_ok(f):
            self._truncated(f, "changed while closed")

    def _track_new(self, path: str, *, initial: bool) -> None:
        """An inode no tracked file has: a new file, a copy, or a known content moved."""
        fd = self._open(path)
        if fd is None:
            return
        keep = False
        try:
            st = os.fstat(fd)
            ident = (st.st_dev, st.st_ino)
            if st.st_size == 0 or not stat.S_ISREG(st.st_mode):
                return  # nothing to identify it by yet; a later scan sees it grow
            if any((f.dev, f.ino) == ident for f in self.files if f.status in (OPEN, CLOSED)):
                return  # the path was renamed onto a tracked file meanwhile
            head = os.pread(fd, self.n, 0)
            other = self._same_content(path, fd, st, head)
            if other is not None:
                keep = other
                return
            used = {f.key for f in self.files}
            if len(head) == self.n:
                key = unique_key(head_hash(head), st.st_dev, st.st_ino, used)
            else:
                key = unique_key(short_key(head, st.st_dev, st.st_ino), st.st_dev, st.st_ino, used)
            offset = 0
            if initial and self.opts.start_at == "end" and path not in self.known_paths:
                offset = self._end_offset(fd, st.st_size)
            f = _File(
                key=key,
                source=f"file://{path}",
                path=path,
                dev=st.st_dev,
                ino=st.st_ino,
                head_len=len(head),
                head_hash=head_hash(head),
                offset=offset,
            )
            self._attach(f, fd, st, path, listed=True)
            self.files.append(f)
            self.known_paths[path] = time.time()
            keep = True
            log.info("tailing file %s", kv(path=path, key=key, offset=offset, size=st.st_size))
        except OSError as e:
            self._warn_once(path, "open", e)
        finally:
            if not keep:
                os.close(fd)
                OPEN_FILES.dec()

    def _same_content(self, path: str, fd: int, st: os.stat_result, head: bytes) -> bool | None:
        """Whether a new inode holds content already tracked: None if not; True if it was
        attached as the continuation of that content, False if it is a copy not to read.

        Continuation: content whose file is gone (renamed away while closed or stopped,
        truncated after a copy, moved) resumes at its saved offset in the new file. Matched
        by the full fingerprint; content truncated moments ago (ORPHAN) also by the shorter
        head it had, so a copy made before the tailer saw the file reach the fingerprint
        length is still recognised. A copy: an open file has the same fingerprint and the
        same bytes at the copy's end.
        """
        ident = (st.st_dev, st.st_ino)
        full = head_hash(head) if len(head) == self.n else None
        for f in self.files:  # bring heads up to date; notice truncations now
            if f.status == OPEN and (f.head_len < self.n or f.head_hash == full):
                self._check_intact(f)
        hashes: dict[int, str] = {}

        def matches(f: _File) -> bool:
            if f.head_len == 0 or f.head_len > len(head):
                return False
            if f.head_len < self.n and f.status != ORPHAN:
                return False  # short heads identify by inode only (module docstring)
            if f.head_len not in hashes:
                hashes[f.head_len] = head_hash(head[: f.head_len])
            return hashes[f.head_len] == f.head_hash

        same = [f for f in self.files if matches(f)]
        movable = [
            f
            for f in same
            if (f.status in (ORPHAN, DONE) or (f.status == CLOSED and not f.listed))
            and f.truncated_inode != ident
        ]
        movable.sort(key=lambda f: (f.status != ORPHAN, -f.head_len))
        for f in movable:
            if st.st_size < f.offset:  # an older copy: holds nothing unread
                self._note_copy(ident, path, f)
                return False
            log.info(
                "continuing file content at a new path %s",
                kv(source=f.source, path=path, offset=f.offset, was=f.status),
            )
            self._attach(f, fd, st, path, listed=True)
            self.known_paths[path] = time.time()
            return True
        for f in same:
            if f.status in (OPEN, CLOSED) and self._is_copy(fd, st.st_size, f):
                self._note_copy(ident, path, f)
                return False
        return None

    def _end_offset(self, fd: int, size: int) -> int:
        """Where `start_at: end` starts: after the last complete line (a partial last line
        is read once it completes)."""
        window = min(size, self.opts.max_line_bytes)
        tail = os.pread(fd, window, size - window)
        i = tail.rfind(b"\n")
        if i >= 0:
            return size - window + i + 1
        return 0 if window == size else size

    def _is_copy(self, fd: int, size: int, f: _File) -> bool:
        """Whether the file at `fd` (same first bytes as `f`) has `f`'s content at its end."""
        other = f.fd
        opened = False
        if other < 0:
            fd_other = self._open(f.path)
            if fd_other is None:
                return False
            other, opened = fd_other, True
        try:
            ost = os.fstat(other)
            if (ost.st_dev, ost.st_ino) != (f.dev, f.ino) or ost.st_size < size:
                return False
            n = min(self.n, size)
            return os.pread(fd, n, size - n) == os.pread(other, n, size - n)
        finally:
            if opened:
                os.close(other)
                OPEN_FILES.dec()

    def _note_copy(self, ident: tuple[int, int], path: str, f: _File) -> None:
        if ident not in self.copies_noted:
            self.copies_noted.add(ident)
            log.info(
                "not reading a copy of a tracked file %s",
                kv(path=path, copy_of=f.source, key=f.key),
            )

    def _follow_renamed(self, f: _File) -> bool:
        """A closed file that no glob matches any more: if it was renamed within its
        directory (while closed, or while socmon was stopped) and holds unread data, read it
        to the end."""
        try:
            entries = list(os.scandir(os.path.dirname(f.path)))
        except OSError:
            return False
        for entry in entries:
            try:
                if entry.inode() != f.ino or entry.path == f.path:
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_dev != f.dev or not stat.S_ISREG(st.st_mode) or st.st_size <= f.offset:
                return False
            fd = self._open(entry.path)
            if fd is None:
                return False
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != (f.dev, f.ino):
                os.close(fd)
                OPEN_FILES.dec()
                return False
            self._attach(f, fd, fst, entry.path, listed=False)
            if not self._head_ok(f):
                self._truncated(f, "changed while closed")
                return True
            log.info("following renamed file %s", kv(source=f.source, path=entry.path))
            return True
        return False

    # ------------------------------------------------------------------ reading

    def _head_ok(self, f: _File) -> bool:
        """Whether the file still begins as it did; extends a short file's head hash."""
        head = os.pread(f.fd, self.n, 0)
        if len(head) < f.head_len or head_hash(head[: f.head_len]) != f.head_hash:
            return False
        if len(head) > f.head_len:
            f.head_len, f.head_hash = len(head), head_hash(head)
            self.dirty = True
        return True

    def _check_intact(self, f: _File) -> None:
        """Notice now (not at the next read) that an open file was truncated."""
        try:
            if os.fstat(f.fd).st_size < f.read_pos or not self._head_ok(f):
                self._truncated(f, "truncated (noticed at a scan)")
        except OSError as e:
            self._read_failed(f, e)

    def _read(self, f: _File) -> bool:
        """Read and spool what `f` has after `read_pos` (one chunk). True if anything changed."""
        try:
            st = os.fstat(f.fd)
            if st.st_nlink == 0:
                f.listed = False
            if st.st_size < f.read_pos:
                self._truncated(f, "shorter than the read offset")
                return True
            if st.st_size == f.read_pos:
                f.at_eof = True
                return False
            chunk = os.pread(f.fd, min(READ_CHUNK, st.st_size - f.read_pos), f.read_pos)
            if not self._head_ok(f):  # checked after the read: the chunk is old content
                self._truncated(f, "beginning changed")
                return True
        except OSError as e:
            self._read_failed(f, e)
            return True
        if not chunk:
            return False
        f.at_eof = False
        f.read_pos += len(chunk)
        f.size, f.mtime_ns = st.st_size, st.st_mtime_ns
        f.idle_since = time.monotonic()
        self._deliver(f, f.partial + chunk if f.partial else chunk, final=False)
        return True

    def _read_failed(self, f: _File, e: OSError) -> None:
        ERRORS.labels("receiving", _error_code(e)).inc()
        log.warning("file read failed, reopening %s", kv(path=f.path, error=e))
        self._close_fd(f)
        f.status = CLOSED
        f.mtime_ns = -1  # reopen at the next scan
        self.rescan = True

    def _deliver(self, f: _File, data: bytes, *, final: bool) -> None:
        """Spool the complete lines of `data` (which starts at `f.offset`); advance offsets."""
        base = f.offset
        cut = split_lines(data, base, self.opts.max_line_bytes, final=final, after_cut=f.after_cut)
        if cut.blank:
            DISCARDED.labels("file", "true", "empty_line").inc(cut.blank)
        if cut.nul_bytes:
            NUL_BYTES.inc(cut.nul_bytes)
            if not f.nul_warned:
                f.nul_warned = True
                log.warning(
                    "skipped NUL bytes (a hole: writer without O_APPEND after copytruncate?) %s",
                    kv(path=f.path, count=cut.nul_bytes),
                )
        lines = cut.lines
        now = time.time()
        step = self.opts.batch
        for i in range(0, len(lines), step):
            part = lines[i : i + step]
            messages = [
                RawMessage(
                    source=f.source,
                    data=line,
                    received_at=now,
                    position=f"{f.key}:{offset}",
                    parser=self.opts.parser,
                    context=self.context,
                    collector=FileCollector.type_name,
                    notes=notes,
                )
                for offset, line, _end, notes in part
            ]
            if not self.spool(messages):  # stopping while the spool refuses: re-read later
                f.partial = b""
                f.read_pos = f.offset
                return
            f.offset = part[-1][2]
            self.dirty = True
            if self.stop.is_set() and i + step < len(lines):  # the rest is read next time
                f.partial = b""
                f.read_pos = f.offset
                f.after_cut = False  # notes only; the re-read starts a new piece
                return
        if base + cut.consumed != f.offset:
            f.offset = base + cut.consumed
            self.dirty = True
        f.partial = data[cut.consumed :]
        f.after_cut = cut.after_cut
        if final:
            f.read_pos = f.offset + len(f.partial)

    # ------------------------------------------------------------------ rotation

    def _truncated(self, f: _File, why: str) -> None:
        """`f`'s inode no longer holds the content we were reading: copytruncate or rewrite.

        The content becomes an ORPHAN: a copy of it (same fingerprint) found by the next
        scans is read from the saved offset. The inode itself is picked up by the next scan
        as a new file and read from 0.
        """
        TRUNCATIONS.inc()
        log.info(
            "file truncated or rewritten, reading it again from the start %s",
            kv(path=f.path, why=why, offset=f.offset, key=f.key),
        )
        self._close_fd(f)
        f.truncated_inode = (f.dev, f.ino)
        f.status = ORPHAN
        f.since = time.time()
        f.deadline = time.monotonic() + self.orphan_wait
        f.listed = False
        f.read_pos = f.offset + len(f.partial)
        self.rescan = True
        self.dirty = True

    def _finish(self, f: _File, now: float, *, reason: str) -> None:
        """The content is gone for good: deliver a pending partial line, keep the entry DONE."""
        if f.partial:
            self._deliver(f, f.partial, final=True)
        if f.fd >= 0:
            self._close_fd(f)
        if f.status == CLOSED and f.offset < f.size:
            log.warning(
                "file gone before it was read to the end %s",
                kv(source=f.source, path=f.path, offset=f.offset, size=f.size),
            )
        else:
            log.info("file closed %s", kv(source=f.source, path=f.path, reason=reason))
        f.status = DONE
        f.since = now
        f.partial = b""
        self.dirty = True

    def _housekeeping(self, mono: float, now: float) -> None:
        opts = self.opts
        for f in list(self.files):
            if f.status == OPEN and f.at_eof:
                idle = mono - f.idle_since
                if not f.listed and idle >= opts.close_removed_after:
                    self._finish(f, now, reason="removed or renamed away, read to the end")
                elif f.listed and not f.partial and idle >= opts.close_inactive:
                    self._close_fd(f)
                    f.status = CLOSED
                    self.dirty = True
            elif f.status == ORPHAN and mono >= f.deadline:
                self._finish(f, now, reason="truncated, no copy found")
            elif f.status == DONE and now - f.since >= opts.forget_after:
                self.files.remove(f)
                self.dirty = True
