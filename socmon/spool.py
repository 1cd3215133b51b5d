"""The spool: the durable local log every event passes through (ARCHITECTURE §4).

A collector appends; named consumers (``ship``, ``detect``, ...) each read the same records
independently and persist their own cursor.

Guarantee (at-least-once per consumer):

- An event is *accepted* when ``append`` returns its seq. It is *durable* once it is fsynced:
  before ``append`` returns with ``fsync="always"``, within ``fsync_interval`` seconds with
  ``fsync="interval"`` (group commit by a background thread), at ``sync()``/``close()`` or
  whenever the OS decides with ``fsync="never"``.
- A kill -9 at any instant loses nothing that was acknowledged as fsynced (and, since the
  page cache survives a process crash, nothing ``append`` returned at all). A torn last
  record is truncated at the next open; seqs continue after the last valid record.
- A consumer never skips a record: its cursor only moves on ``commit`` (written atomically:
  tmp file, fsync, rename, fsync of the directory), a restart resumes right after it, and
  a segment is deleted only when every configured consumer has committed all its records.
  Records can be delivered twice (read but not committed before a crash): consumers must be
  idempotent (the shipper writes with deterministic ids and ``op_type=create``).
- Every record carries a CRC32. A damaged region is skipped (resync on the next valid
  record), counted in ``stats()`` and logged once; the records after it are delivered.
- Seqs are 1-based, strictly increasing and never reused; they stay contiguous except where
  records were lost to corruption or to an OS crash before fsync.
- The byte cap is enforced with ``when_full="block"`` (backpressure, ``SpoolFull`` after the
  timeout) or ``when_full="drop_newest"`` (the batch is dropped and counted).
- An I/O error raises ``SpoolError`` and stops the spool: every later ``append`` raises.

The byte layout is documented in ``docs/decisions/0002-spool-format.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import struct
import threading
import time
import uuid
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, NamedTuple, TypeVar

from socmon.errors import Location, SpoolError, SpoolFull

try:  # POSIX only; without it two processes could open the same spool.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "MAX_PAYLOAD",
    "ConsumerStats",
    "Record",
    "Spool",
    "SpoolReader",
    "SpoolStats",
    "encode_record",
]

logger = logging.getLogger("socmon.spool")

T = TypeVar("T")

#: Record marker; 0xFF never occurs in UTF-8, so a JSON payload cannot contain a fake marker.
#: The final byte is the format version.
MAGIC: Final = b"\xffSP1"
# magic | crc32 | payload length | seq | appended_at  (little-endian, 28 bytes)
_HEADER: Final = struct.Struct("<4sIIQd")
_FIELDS: Final = struct.Struct("<IQd")  # the CRC-covered header fields
_PREFIX: Final = struct.Struct("<4sI")
HEADER_SIZE: Final = _HEADER.size
#: Larger lengths are treated as corruption when reading, and refused when appending.
MAX_PAYLOAD: Final = 64 << 20

_SEGMENT_RE: Final = re.compile(r"^(\d{20})\.seg$")
_CONSUMER_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CURSOR_DIR: Final = "cursors"
_INSTANCE_FILE: Final = "instance_id"
_EPOCH_FILE: Final = "epoch"
_LOCK_FILE: Final = "lock"
_READ_CHUNK: Final = 256 << 10
_INDEX_STRIDE: Final = 64 << 10  # one sparse-index entry per this many bytes of segment
_MAX_SEQ: Final = (1 << 64) - 1

_RECORD: Final = 0
_CORRUPT: Final = 1

_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


@dataclass(frozen=True, slots=True)
class Record:
    """One spooled record."""

    seq: int  # 1-based, strictly increasing, never reused, survives restarts
    payload: bytes
    appended_at: float  # unix time the record was appended (stored in the record)


@dataclass(frozen=True)
class ConsumerStats:
    """One consumer's position."""

    committed: int  # last committed seq (0 = nothing yet)
    depth: int  # records retained and not yet committed
    oldest_unconsumed_age: float  # seconds since the oldest uncommitted append; 0.0 if none


@dataclass(frozen=True)
class SpoolStats:
    """A point-in-time view of the spool, for metrics and source health."""

    bytes: int  # bytes in segment files (what max_bytes caps)
    segments: int
    last_seq: int  # last seq appended (0 = none yet)
    synced_seq: int  # every record <= this is known to be fsynced
    dropped: int  # items refused by when_full="drop_newest"
    corrupt_records: int  # records lost to corruption (seq gaps across damaged regions)
    corrupt_bytes: int  # bytes skipped in damaged regions
    torn_tail_bytes: int  # bytes truncated at open after a crash (partial last record)
    consumers: Mapping[str, ConsumerStats] = field(default_factory=dict)


def encode_record(payload: bytes, seq: int, appended_at: float) -> bytes:
    """Frame one record (header + payload), exactly as the spool writes it."""
    fields = _FIELDS.pack(len(payload), seq, appended_at)
    crc = zlib.crc32(payload, zlib.crc32(fields))
    return _PREFIX.pack(MAGIC, crc) + fields + payload


class _Frame(NamedTuple):
    """What the scanner found: a valid record, or a damaged region [start, end)."""

    kind: int  # _RECORD or _CORRUPT
    start: int
    end: int
    seq: int  # record: its seq; corrupt: the last valid seq before the region
    appended_at: float
    payload: bytes | None
    next_seq: int  # corrupt: the first seq after the region (or the upper bound)


def _scan(
    fd: int,
    offset: int,
    limit: int,
    prev_seq: int,
    upper_seq: int,
    *,
    want_payload: bool,
) -> Iterator[_Frame]:
    """Yield the records and damaged regions of one segment between ``offset`` and ``limit``.

    A record is valid when its magic, length (fits before ``limit``), CRC and seq
    (``prev_seq < seq < upper_seq``, strictly increasing) all check out. Anything else starts
    a damaged region, which ends at the next valid record (found by searching for the magic)
    or at ``limit``. Reads with ``os.pread`` in chunks; no shared file position.
    """
    buf = b""
    view = memoryview(buf)
    buf_off = offset
    pos = offset
    bad_start = -1
    while pos < limit:
        rel = pos - buf_off
        if rel < 0 or rel + HEADER_SIZE > len(buf):
            buf = os.pread(fd, min(limit - pos, _READ_CHUNK), pos)
            view = memoryview(buf)
            buf_off, rel = pos, 0
            if len(buf) < HEADER_SIZE:  # trailing bytes too short for a header
                if bad_start < 0:
                    bad_start = pos
                pos = limit
                break
        magic, crc, length, seq, appended_at = _HEADER.unpack_from(buf, rel)
        end = pos + HEADER_SIZE + length
        ok = (
            magic == MAGIC and length <= MAX_PAYLOAD and end <= limit and prev_seq < seq < upper_seq
        )
        if ok and rel + HEADER_SIZE + length > len(buf):
            buf = os.pread(fd, HEADER_SIZE + length, pos)
            view = memoryview(buf)
            buf_off, rel = pos, 0
            ok = len(buf) == HEADER_SIZE + length
        if ok:
            body = view[rel + HEADER_SIZE : rel + HEADER_SIZE + length]
            ok = zlib.crc32(body, zlib.crc32(view[rel + 8 : rel + HEADER_SIZE])) == crc
        if ok:
            if bad_start >= 0:
                yield _Frame(_CORRUPT, bad_start, pos, prev_seq, 0.0, None, seq)
                bad_start = -1
            payload = bytes(body) if want_payload else None
            yield _Frame(_RECORD, pos, end, seq, appended_at, payload, 0)
            prev_seq = seq
            pos = end
            continue
        if bad_start < 0:
            bad_start = pos
        found = buf.find(MAGIC, rel + 1)
        if found >= 0:
            pos = buf_off + found
        else:  # keep the last 3 bytes: a marker may straddle the chunk boundary
            pos = max(pos + 1, buf_off + len(buf) - (len(MAGIC) - 1))
            buf = b""
            view = memoryview(buf)
            buf_off = pos
    if bad_start >= 0:
        yield _Frame(_CORRUPT, bad_start, limit, prev_seq, 0.0, None, upper_seq)


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}.seg"


class _Snapshot(NamedTuple):
    sealed_firsts: tuple[int, ...]
    sealed_sizes: tuple[int, ...]
    active_first: int
    active_size: int
    last_seq: int

    def oldest(self) -> int:
        return self.sealed_firsts[0] if self.sealed_firsts else self.active_first

    def bounds(self, seg: int) -> tuple[int, int, int | None] | None:
        """(byte limit, exclusive seq upper bound, next segment) of a retained segment."""
        if seg == self.active_first:
            return self.active_size, self.last_seq + 1, None
        i = bisect_right(self.sealed_firsts, seg) - 1
        if i < 0 or self.sealed_firsts[i] != seg:
            return None
        nxt = self.sealed_firsts[i + 1] if i + 1 < len(self.sealed_firsts) else self.active_first
        return self.sealed_sizes[i], nxt, nxt


class _Index(NamedTuple):
    """Sparse per-segment index: sorted seqs with their byte offsets and append times."""

    seqs: list[int]
    offsets: list[int]
    times: list[float]


class Spool:
    """A segmented, checksummed, fsync-policed append-only log with named consumer cursors.

    Directory layout: ``<first seq:020d>.seg`` segment files, ``cursors/<consumer>.cursor``,
    ``instance_id`` and ``lock`` (an exclusive ``flock``: one process per spool).
    Thread-safe: one or more appending threads, each reader used from its own thread.
    """

    def __init__(
        self,
        path: Path,
        *,
        consumers: Sequence[str],
        max_bytes: int = 1 << 30,
        segment_bytes: int = 64 << 20,
        fsync: Literal["interval", "always", "never"] = "interval",
        fsync_interval: float = 0.2,
        when_full: Literal["block", "drop_newest"] = "block",
    ) -> None:
        self.path = Path(path)
        self._consumers = tuple(consumers)
        if not self._consumers:
            raise SpoolError("spool needs at least one consumer", Location(self.path))
        for name in self._consumers:
            if not _CONSUMER_RE.match(name):
                raise SpoolError(f"invalid consumer name {name!r}", Location(self.path))
        if len(set(self._consumers)) != len(self._consumers):
            raise SpoolError("duplicate consumer names", Location(self.path))
        if fsync not in ("interval", "always", "never"):
            raise SpoolError(f"invalid fsync policy {fsync!r}", Location(self.path))
        if when_full not in ("block", "drop_newest"):
            raise SpoolError(f"invalid when_full {when_full!r}", Location(self.path))
        if segment_bytes <= HEADER_SIZE or max_bytes <= HEADER_SIZE or fsync_interval <= 0:
            raise SpoolError("segment_bytes, max_bytes and fsync_interval too small")
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._fsync_interval = fsync_interval
        self._when_full = when_full

        # _append_lock serialises appenders (seq assignment, writes, rolls) and may be held
        # while waiting for space; _cond guards the shared state below and is held briefly.
        self._append_lock = threading.Lock()
        self._cond = threading.Condition(threading.Lock())
        self._closed = False
        self._failed: BaseException | None = None
        self._fd = -1
        self._lock_fd = -1
        self._sealed_firsts: tuple[int, ...] = ()
        self._sealed_sizes: tuple[int, ...] = ()
        self._active_first = 1
        self._active_size = 0
        self._bytes = 0
        self._last_seq = 0
        self._next_seq = 1
        self._synced_seq = 0
        self._dir_dirty = False
        self._dropped = 0
        self._corrupt_records = 0
        self._corrupt_bytes = 0
        self._torn_tail_bytes = 0
        self._seen_regions: set[tuple[int, int]] = set()
        self._committed: dict[str, int] = {}
        self._index: dict[int, _Index] = {}
        self._readers: dict[str, SpoolReader] = {}
        self._stop = threading.Event()
        self._sync_thread: threading.Thread | None = None
        try:
            self._open()
        except BaseException:
            self._release_files()
            raise
        self.instance_id: str = self._instance_id
        # Incremented (durably) on every open. Sequence numbers can be reused after a power
        # loss (records readers saw but that never reached the disk); instance_id + epoch +
        # seq never repeats, so ids derived from it cannot collide with an earlier record.
        self.epoch: int = self._epoch
        if fsync == "interval":
            self._sync_thread = threading.Thread(
                target=self._sync_loop, name=f"socmon-spool-fsync:{self.path.name}", daemon=True
            )
            self._sync_thread.start()

    # ------------------------------------------------------------------ opening

    def _open(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / _CURSOR_DIR).mkdir(exist_ok=True)
            self._lock_fd = os.open(self.path / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise SpoolError(f"cannot open spool directory: {e}", Location(self.path)) from e
        if fcntl is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                raise SpoolError("spool is in use by another process", Location(self.path)) from e
        try:
            self._instance_id = self._load_instance_id()
            self._epoch = self._next_epoch()
            segments = sorted(
                int(m.group(1)) for n in os.listdir(self.path) if (m := _SEGMENT_RE.match(n))
            )
            cursors = self._load_cursors()
            self._recover(segments, cursors)
        except OSError as e:
            raise SpoolError(f"cannot open spool: {e}", Location(self.path)) from e

    def _load_instance_id(self) -> str:
        target = self.path / _INSTANCE_FILE
        try:
            value = target.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            value = uuid.uuid4().hex
            self._write_atomic(target, (value + "\n").encode("ascii"))
            return value
        if not re.fullmatch(r"[0-9a-f]{32}", value):
            raise SpoolError("instance_id file is damaged", Location(target))
        return value

    def _next_epoch(self) -> int:
        target = self.path / _EPOCH_FILE
        try:
            text = target.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            text = "0"
        if not text.isdigit():
            raise SpoolError("epoch file is damaged", Location(target))
        epoch = int(text) + 1
        self._write_atomic(target, f"{epoch}\n".encode("ascii"))
        return epoch

    def _load_cursors(self) -> dict[str, int]:
        cursors: dict[str, int] = {}
        cursor_dir = self.path / _CURSOR_DIR
        for name in os.listdir(cursor_dir):
            if name.endswith(".tmp"):  # a commit interrupted before its rename
                os.unlink(cursor_dir / name)
                continue
            if not name.endswith(".cursor"):
                continue
            consumer = name[: -len(".cursor")]
            try:
                data = json.loads((cursor_dir / name).read_bytes())
                seq = int(data["seq"])
                if seq < 0:
                    raise ValueError(seq)
            except (ValueError, KeyError, TypeError) as e:
                # Never skip: an unreadable cursor restarts at the oldest retained record.
                logger.warning(
                    "spool cursor unreadable consumer=%s path=%s error=%r", consumer, name, e
                )
                continue
            cursors[consumer] = seq
        return cursors

    def _recover(self, segments: list[int], cursors: dict[str, int]) -> None:
        """Truncate a torn tail, pick the next seq, create missing cursors, collect garbage."""
        for first in segments[:-1]:
            self._sealed_firsts += (first,)
            self._sealed_sizes += (os.stat(self.path / _segment_name(first)).st_size,)
        last_seq = 0
        if segments:
            last_seq = self._scan_tail(segments[-1])  # sets _active_size and the index
        next_seq = self._fresh_next(last_seq, cursors)
        if segments and self._active_size == 0 and segments[-1] != next_seq:
            # An empty (or wholly invalid) last segment whose name is not the next seq.
            os.unlink(self.path / _segment_name(segments[-1]))
            self._index.pop(segments.pop(), None)
        self._last_seq = self._synced_seq = last_seq
        self._next_seq = next_seq
        if segments:
            self._active_first = segments[-1]
        else:
            self._active_first = next_seq
            self._active_size = 0
            self._index[next_seq] = _Index([], [], [])
        self._fd = os.open(
            self.path / _segment_name(self._active_first),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            0o644,
        )
        self._bytes = sum(self._sealed_sizes) + self._active_size
        self._fsync_dir(self.path)

        oldest = self._sealed_firsts[0] if self._sealed_firsts else self._active_first
        for consumer in self._consumers:
            seq = cursors.get(consumer)
            if seq is None:  # a new consumer starts at the oldest retained record
                seq = oldest - 1
                self._write_cursor(consumer, seq)
            elif seq < oldest - 1:
                logger.warning(
                    "spool consumer cursor behind retained data consumer=%s committed=%d oldest=%d",
                    consumer,
                    seq,
                    oldest,
                )
            self._committed[consumer] = seq
        with self._cond:
            self._collect()

    @staticmethod
    def _fresh_next(last_seq: int, cursors: Mapping[str, int]) -> int:
        # A cursor can be ahead of the data after an OS crash that lost un-fsynced records
        # which a consumer had already read and committed: never hand those seqs out again.
        return max([last_seq, *cursors.values()]) + 1

    def _scan_tail(self, first: int) -> int:
        """Scan the last segment: index it, truncate after its last valid record, fsync it.

        Returns the last valid seq (``first - 1`` when the segment holds no valid record: a
        segment is only started once the previous one ended at ``first - 1``).
        """
        path = self.path / _segment_name(first)
        fd = os.open(path, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            index = _Index([], [], [])
            last_seq, valid_end, last_indexed = first - 1, 0, -_INDEX_STRIDE
            for frame in _scan(fd, 0, size, first - 1, _MAX_SEQ, want_payload=False):
                if frame.kind == _RECORD:
                    if frame.start - last_indexed >= _INDEX_STRIDE:
                        index.seqs.append(frame.seq)
                        index.offsets.append(frame.start)
                        index.times.append(frame.appended_at)
                        last_indexed = frame.start
                    last_seq, valid_end = frame.seq, frame.end
            if valid_end < size:
                logger.warning(
                    "spool torn tail truncated segment=%s offset=%d dropped_bytes=%d",
                    path.name,
                    valid_end,
                    size - valid_end,
                )
                os.ftruncate(fd, valid_end)
                self._torn_tail_bytes += size - valid_end
            _datasync(fd)  # what a crashed process left in the page cache is now durable
        finally:
            os.close(fd)
        self._index[first] = index
        self._active_size = valid_end
        return last_seq

    # ------------------------------------------------------------------ appending

    def append(
        self,
        items: Sequence[T],
        encode: Callable[[T, int], bytes],
        *,
        timeout: float | None = None,
    ) -> list[int]:
        """Append ``items``; ``encode(item, seq)`` gives each record's bytes. Returns the seqs.

        Seqs are assigned consecutively under the spool's lock. When the byte cap would be
        exceeded, ``when_full="block"`` waits for consumers to free space (``SpoolFull`` after
        ``timeout`` seconds, ``None`` = forever) and ``"drop_newest"`` writes nothing, counts
        the items in ``stats().dropped`` and returns ``[]``. A batch larger than the cap can
        never fit: it raises ``SpoolFull`` (block) or is dropped (drop_newest).
        """
        if not items:
            return []
        with self._append_lock:
            self._check_writable()
            first = self._next_seq
            now = time.time()
            frames: list[bytes] = []
            total = 0
            for i, item in enumerate(items):
                payload = encode(item, first + i)
                if not isinstance(payload, bytes | bytearray | memoryview):
                    raise SpoolError(f"encode returned {type(payload).__name__}, not bytes")
                if len(payload) > MAX_PAYLOAD:
                    raise SpoolError(f"record of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
                frame = encode_record(bytes(payload), first + i, now)
                frames.append(frame)
                total += len(frame)
            if not self._wait_for_space(total, len(items), timeout):
                return []
            self._write(frames, first, now)
            last = first + len(items) - 1
            if self._fsync == "always":
                self._datasync_active(last)
            return list(range(first, last + 1))

    def _check_writable(self) -> None:
        if self._closed:
            raise SpoolError("spool is closed", Location(self.path))
        if self._failed is not None:
            raise SpoolError(
                f"spool stopped after an I/O error: {self._failed}", Location(self.path)
            ) from self._failed

    def _wait_for_space(self, total: int, count: int, timeout: float | None) -> bool:
        """Return True when ``total`` more bytes fit under the cap, False when dropped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                self._check_writable()
                if self._bytes + total <= self._max_bytes:
                    return True
                if total > self._max_bytes:  # can never fit
                    if self._when_full == "drop_newest":
                        self._dropped += count
                        return False
                    raise SpoolFull(
                        f"batch of {total} bytes exceeds max_bytes={self._max_bytes}",
                        Location(self.path),
                    )
                # Every record committed but the active segment holds the space: seal it (below)
                # so that it can be deleted.
                seal = self._active_size > 0 and self._min_committed() >= self._last_seq
                if not seal:
                    if self._when_full == "drop_newest":
                        self._dropped += count
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise SpoolFull(
                            f"spool full (max_bytes={self._max_bytes}) for {timeout}s",
                            Location(self.path),
                        )
                    self._cond.wait(remaining)
                    continue
            self._roll(self._next_seq)
            with self._cond:
                self._collect()

    def _write(self, frames: list[bytes], first: int, now: float) -> None:
        """Write frames to the active segment, rolling at segment_bytes. Holds _append_lock."""
        chunk: list[bytes] = []
        chunk_bytes = 0
        chunk_first = first
        for i, frame in enumerate(frames):
            size = self._active_size + chunk_bytes
            if size > 0 and size + len(frame) > self._segment_bytes:
                if chunk:
                    self._write_chunk(chunk, chunk_bytes, chunk_first, first + i - 1, now)
                self._roll(first + i)
                chunk, chunk_bytes, chunk_first = [], 0, first + i
            chunk.append(frame)
            chunk_bytes += len(frame)
        self._write_chunk(chunk, chunk_bytes, chunk_first, first + len(frames) - 1, now)

    def _write_chunk(
        self, chunk: list[bytes], nbytes: int, first: int, last: int, now: float
    ) -> None:
        data = memoryview(b"".join(chunk))
        start = self._active_size
        try:
            written = 0
            while written < nbytes:
                written += os.write(self._fd, data[written:])
        except OSError as e:
            # Leave no partial record behind (the next open would truncate it anyway).
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            self._fail(e, "write")
            raise SpoolError(f"spool write failed: {e}", Location(self._active_path())) from e
        with self._cond:
            index = self._index.get(self._active_first)
            if index is not None and (
                not index.offsets or start - index.offsets[-1] >= _INDEX_STRIDE
            ):
                index.seqs.append(first)
                index.offsets.append(start)
                index.times.append(now)
            self._active_size = start + nbytes
            self._bytes += nbytes
            self._last_seq = last
            self._next_seq = last + 1
            self._cond.notify_all()

    def _roll(self, first_seq: int) -> None:
        """Seal the active segment and start a new one named ``first_seq``. Holds _append_lock."""
        new_path = self.path / _segment_name(first_seq)
        try:
            if self._fsync != "never":
                _datasync(self._fd)
            fd = os.open(new_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except OSError as e:
            self._fail(e, "roll")
            raise SpoolError(f"spool segment roll failed: {e}", Location(new_path)) from e
        with self._cond:
            old_fd = self._fd
            self._sealed_firsts += (self._active_first,)
            self._sealed_sizes += (self._active_size,)
            if self._fsync != "never":
                self._synced_seq = self._last_seq
            self._active_first = first_seq
            self._active_size = 0
            self._index[first_seq] = _Index([], [], [])
            self._fd = fd
        os.close(old_fd)
        if self._fsync == "never":
            with self._cond:
                self._dir_dirty = True
        else:
            try:
                self._fsync_dir(self.path)
            except OSError as e:
                self._fail(e, "roll")
                raise SpoolError(f"spool directory fsync failed: {e}", Location(self.path)) from e

    def _active_path(self) -> Path:
        return self.path / _segment_name(self._active_first)

    # ------------------------------------------------------------------ durability

    def sync(self) -> None:
        """fsync now: every record appended before the call is durable when it returns."""
        with self._cond:
            self._check_writable()
        self._sync_once()

    def _datasync_active(self, target: int) -> None:
        try:
            _datasync(self._fd)
        except OSError as e:
            self._fail(e, "fsync")
            raise SpoolError(f"spool fsync failed: {e}", Location(self._active_path())) from e
        with self._cond:
            self._synced_seq = max(self._synced_seq, target)

    def _sync_once(self) -> None:
        """Group commit: fsync the active segment (and the directory if a segment was added)."""
        with self._cond:
            if self._fd < 0 or self._failed is not None:
                return
            dir_dirty = self._dir_dirty
            if self._synced_seq >= self._last_seq and not dir_dirty:
                return
            target = self._last_seq
            self._dir_dirty = False
            fd = os.dup(self._fd)  # roll/close may close self._fd meanwhile
        try:
            _datasync(fd)
            if dir_dirty:
                self._fsync_dir(self.path)
        except OSError as e:
            self._fail(e, "fsync")
            raise SpoolError(f"spool fsync failed: {e}", Location(self.path)) from e
        finally:
            os.close(fd)
        with self._cond:
            self._synced_seq = max(self._synced_seq, target)

    def _sync_loop(self) -> None:
        while not self._stop.wait(self._fsync_interval):
            try:
                self._sync_once()
            except SpoolError:
                return  # logged and recorded by _fail; appends now raise

    def _fail(self, error: BaseException, stage: str) -> None:
        with self._cond:
            if self._failed is None:
                self._failed = error
                logger.error("spool stopped stage=%s path=%s error=%r", stage, self.path, error)
            self._cond.notify_all()

    @staticmethod
    def _fsync_dir(path: Path) -> None:
        if os.name != "posix":  # pragma: no cover - directories cannot be fsynced on Windows
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_atomic(self, target: Path, data: bytes) -> None:
        """Write tmp, fsync, rename over ``target``, fsync the directory."""
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        self._fsync_dir(target.parent)

    def _write_cursor(self, consumer: str, seq: int) -> None:
        data = json.dumps({"consumer": consumer, "seq": seq}).encode("ascii") + b"\n"
        self._write_atomic(self.path / _CURSOR_DIR / f"{consumer}.cursor", data)

    # ------------------------------------------------------------------ consumers

    def reader(self, consumer: str) -> SpoolReader:
        """The reader of a configured consumer (the same object on every call)."""
        if consumer not in self._committed:
            raise SpoolError(f"unknown spool consumer {consumer!r}", Location(self.path))
        with self._cond:
            if self._closed:
                raise SpoolError("spool is closed", Location(self.path))
            reader = self._readers.get(consumer)
            if reader is None:
                reader = self._readers[consumer] = SpoolReader(self, consumer)
            return reader

    def _snapshot(self) -> _Snapshot:
        with self._cond:
            return _Snapshot(
                self._sealed_firsts,
                self._sealed_sizes,
                self._active_first,
                self._active_size,
                self._last_seq,
            )

    def _min_committed(self) -> int:
        return min(self._committed.values())

    def _collect(self) -> None:
        """Delete sealed segments whose every record all consumers committed. Holds _cond."""
        floor = self._min_committed()
        firsts, sizes = self._sealed_firsts, self._sealed_sizes
        n = 0
        while n < len(firsts):
            nxt = firsts[n + 1] if n + 1 < len(firsts) else self._active_first
            if nxt - 1 > floor:
                break
            try:
                os.unlink(self.path / _segment_name(firsts[n]))
            except FileNotFoundError:
                pass
            except OSError as e:
                logger.warning(
                    "spool segment delete failed segment=%s error=%r", _segment_name(firsts[n]), e
                )
                break
            self._index.pop(firsts[n], None)
            self._bytes -= sizes[n]
            n += 1
        if n:
            self._sealed_firsts, self._sealed_sizes = firsts[n:], sizes[n:]
            self._cond.notify_all()

    def _commit(self, consumer: str, seq: int) -> None:
        try:
            self._write_cursor(consumer, seq)
        except OSError as e:
            self._fail(e, "commit")
            raise SpoolError(f"spool cursor write failed: {e}", Location(self.path)) from e
        with self._cond:
            self._committed[consumer] = seq
            self._collect()

    def _report_corruption(self, seg: int, frame: _Frame) -> None:
        with self._cond:
            key = (seg, frame.start)
            if key in self._seen_regions:
                return
            self._seen_regions.add(key)
            lost = max(0, frame.next_seq - frame.seq - 1)
            self._corrupt_records += lost
            self._corrupt_bytes += frame.end - frame.start
        logger.warning(
            "spool corruption segment=%s offset=%d skipped_bytes=%d lost_records=%d",
            _segment_name(seg),
            frame.start,
            frame.end - frame.start,
            lost,
        )

    def _segment_index(self, seg: int, limit: int, upper: int) -> _Index:
        """The sparse index of a segment, built by one scan for segments of a previous run."""
        with self._cond:
            index = self._index.get(seg)
        if index is not None:
            return index
        index = _Index([], [], [])
        fd = os.open(self.path / _segment_name(seg), os.O_RDONLY)
        try:
            last = -_INDEX_STRIDE
            for frame in _scan(fd, 0, limit, seg - 1, upper, want_payload=False):
                if frame.kind == _RECORD and frame.start - last >= _INDEX_STRIDE:
                    index.seqs.append(frame.seq)
                    index.offsets.append(frame.start)
                    index.times.append(frame.appended_at)
                    last = frame.start
        finally:
            os.close(fd)
        with self._cond:
            return self._index.setdefault(seg, index)

    def _locate(self, target: int, snap: _Snapshot) -> tuple[int, int]:
        """(segment, offset) from which a scan meets ``target`` (or the first seq after it).

        If a damaged region may hide ``target``, the offset is the start of that region so that
        the reader reports it.
        """
        if target > snap.last_seq:
            return snap.active_first, snap.active_size
        firsts = (*snap.sealed_firsts, snap.active_first)
        i = bisect_right(firsts, target) - 1
        if i < 0:
            return firsts[0], 0
        seg = firsts[i]
        bounds = snap.bounds(seg)
        assert bounds is not None
        limit, upper, _ = bounds
        index = self._segment_index(seg, limit, upper)
        with self._cond:
            j = bisect_right(index.seqs, target) - 1
            offset, prev = (index.offsets[j], index.seqs[j] - 1) if j >= 0 else (0, seg - 1)
        fd = os.open(self.path / _segment_name(seg), os.O_RDONLY)
        try:
            region = -1
            for frame in _scan(fd, offset, limit, prev, upper, want_payload=False):
                if frame.kind == _CORRUPT:
                    region = frame.start
                    continue
                if frame.seq >= target:
                    return seg, region if region >= 0 and frame.seq > target else frame.start
                region = -1
        finally:
            os.close(fd)
        return seg, region if region >= 0 else limit

    def _oldest_time(self, committed: int, snap: _Snapshot) -> float | None:
        """appended_at of the first retained record after ``committed``."""
        try:
            seg, offset = self._locate(committed + 1, snap)
            while True:
                bounds = snap.bounds(seg)
                if bounds is None:
                    return None
                limit, upper, nxt = bounds
                fd = os.open(self.path / _segment_name(seg), os.O_RDONLY)
                try:
                    for frame in _scan(fd, offset, limit, committed, upper, want_payload=False):
                        if frame.kind == _RECORD:
                            return frame.appended_at
                finally:
                    os.close(fd)
                if nxt is None:
                    return None
                seg, offset = nxt, 0
        except FileNotFoundError:  # deleted meanwhile: it was committed after all
            return None
        except OSError as e:  # a metric must not fail the caller; reads will report it
            logger.warning("spool stats read failed path=%s error=%r", self.path, e)
            return None

    # ------------------------------------------------------------------ status and closing

    def stats(self) -> SpoolStats:
        """Sizes, counters and every consumer's position."""
        with self._cond:
            snap = _Snapshot(
                self._sealed_firsts,
                self._sealed_sizes,
                self._active_first,
                self._active_size,
                self._last_seq,
            )
            committed = dict(self._committed)
            base = (
                self._bytes,
                len(self._sealed_firsts) + 1,
                self._last_seq,
                self._synced_seq,
                self._dropped,
                self._corrupt_records,
                self._corrupt_bytes,
                self._torn_tail_bytes,
            )
        now = time.time()
        consumers: dict[str, ConsumerStats] = {}
        for name in self._consumers:
            done = max(committed[name], snap.oldest() - 1)
            depth = max(0, snap.last_seq - done)
            age = 0.0
            if depth:
                appended_at = self._oldest_time(done, snap)
                age = max(0.0, now - appended_at) if appended_at is not None else 0.0
            consumers[name] = ConsumerStats(committed[name], depth, age)
        return SpoolStats(*base, consumers=consumers)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Final fsync, stop the fsync thread, release the directory. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._stop.set()
        if self._sync_thread is not None and self._sync_thread is not threading.current_thread():
            self._sync_thread.join()
        error: OSError | None = None
        with self._append_lock:
            with self._cond:
                fd, self._fd = self._fd, -1
                failed = self._failed is not None
            if fd >= 0:
                try:
                    if not failed:
                        _datasync(fd)
                        if self._dir_dirty:
                            self._fsync_dir(self.path)
                        with self._cond:
                            self._synced_seq = self._last_seq
                except OSError as e:
                    error = e
                finally:
                    os.close(fd)
        for reader in list(self._readers.values()):
            reader._close()
        self._release_files()
        if error is not None:
            self._fail(error, "close")
            raise SpoolError(f"spool final fsync failed: {error}", Location(self.path)) from error

    def _release_files(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class SpoolReader:
    """One consumer's view of the spool: read, commit, rewind. Use from one thread at a time."""

    def __init__(self, spool: Spool, consumer: str) -> None:
        self._spool = spool
        self.consumer = consumer
        self._lock = threading.Lock()
        self._committed = spool._committed[consumer]  # the caller holds spool._cond
        self._pos_seq = self._committed  # last seq delivered (or committed)
        self._scanned = self._committed  # everything <= this was delivered or skipped as damaged
        self._max_seen = self._committed
        self._seg = -1  # current segment; -1 = locate from _pos_seq
        self._off = 0
        self._fd = -1
        self._fd_seg = -1

    @property
    def committed(self) -> int:
        """The last committed seq: every record <= it is done for this consumer."""
        return self._committed

    def read(self, max_records: int = 1000, max_bytes: int | None = None) -> list[Record]:
        """Records after the last read position; never blocks. Returns [] when caught up.

        ``max_bytes`` caps the payload bytes returned, but at least one record is returned
        when one is available. Damaged regions are skipped, counted and logged.
        """
        with self._lock:
            if self._spool._closed:
                raise SpoolError("spool is closed", Location(self._spool.path))
            try:
                out = self._read(max_records, max_bytes)
            except OSError as e:  # a read error does not stop appends; the caller may retry
                raise SpoolError(
                    f"spool read failed consumer={self.consumer} error={e!r}",
                    Location(self._spool.path),
                ) from e
            if out:
                self._max_seen = max(self._max_seen, out[-1].seq)
                self._scanned = max(self._scanned, out[-1].seq)
            return out

    def _read(self, max_records: int, max_bytes: int | None) -> list[Record]:
        spool = self._spool
        out: list[Record] = []
        budget = max_bytes
        retries = 0
        while len(out) < max_records:
            snap = spool._snapshot()
            try:
                bounds = snap.bounds(self._seg) if self._seg >= 0 else None
                if bounds is None:  # first read, rewind, or the segment was collected
                    self._seg, self._off = spool._locate(self._pos_seq + 1, snap)
                    bounds = snap.bounds(self._seg)
                    assert bounds is not None
                limit, upper, nxt = bounds
                if self._off >= limit:
                    if nxt is None:
                        self._scanned = max(self._scanned, snap.last_seq)
                        break
                    self._seg, self._off = nxt, 0
                    continue
                fd = self._open(self._seg)
            except FileNotFoundError as e:  # collected between the snapshot and the open
                retries += 1
                if retries > 3:
                    raise SpoolError(
                        f"spool segment vanished while reading: {e}", Location(spool.path)
                    ) from e
                self._seg = -1
                continue
            full = False
            prev = max(self._seg - 1, self._pos_seq)
            for frame in _scan(fd, self._off, limit, prev, upper, want_payload=True):
                if frame.kind == _CORRUPT:
                    spool._report_corruption(self._seg, frame)
                    self._off = frame.end
                    self._scanned = max(self._scanned, frame.next_seq - 1)
                    continue
                payload = frame.payload
                assert payload is not None
                if out and budget is not None and len(payload) > budget:
                    full = True
                    break
                out.append(Record(frame.seq, payload, frame.appended_at))
                if budget is not None:
                    budget -= len(payload)
                self._pos_seq = frame.seq
                self._off = frame.end
                if len(out) >= max_records:
                    break
            if full:
                break
        return out

    def _open(self, seg: int) -> int:
        if self._fd_seg != seg:
            fd = os.open(self._spool.path / _segment_name(seg), os.O_RDONLY)
            if self._fd >= 0:
                os.close(self._fd)
            self._fd, self._fd_seg = fd, seg
        return self._fd

    def commit(self, seq: int) -> None:
        """Mark every record <= ``seq`` done for this consumer (persisted atomically).

        Committing an older seq than the current cursor is a no-op; committing past what
        this reader has read raises ``SpoolError`` (it would skip records).
        """
        with self._lock:
            if self._spool._closed:
                raise SpoolError("spool is closed", Location(self._spool.path))
            if seq <= self._committed:
                return
            if seq > max(self._max_seen, self._scanned):
                raise SpoolError(
                    f"consumer {self.consumer!r} cannot commit seq {seq}: "
                    f"only read up to {max(self._max_seen, self._scanned)}",
                    Location(self._spool.path),
                )
            self._spool._commit(self.consumer, seq)
            self._committed = seq
            if self._pos_seq < seq:  # the reader had been rewound below seq
                self._pos_seq = seq
                self._seg = -1

    def rewind(self) -> None:
        """The next read starts again right after the committed cursor."""
        with self._lock:
            self._pos_seq = self._committed
            self._scanned = self._committed
            self._seg = -1

    def wait(self, timeout: float) -> bool:
        """Block until there is something new to read (True) or ``timeout`` passes (False)."""
        spool = self._spool
        with spool._cond:
            ready = spool._cond.wait_for(
                lambda: spool._closed or spool._last_seq > max(self._pos_seq, self._scanned),
                timeout,
            )
            return bool(ready) and not spool._closed

    def _close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd, self._fd_seg = -1, -1
