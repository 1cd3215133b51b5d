"""A watched folder of Windows event exports (WEF/NXLog/Winlogbeat drops): `windows_folder`.

The folder (not its sub-folders) is polled every `scan_interval` seconds for `*.evtx` files
and `*.json`/`*.jsonl`/`*.ndjson` files (JSON lines or concatenated JSON objects, in the
shapes `collectors.windows.parse` reads). A file is read once it has been stable - size and
modification time unchanged - for `settle_seconds`; then, per `after`: `keep` it (default),
`delete` it, or `move` it into `done/`. A file that cannot be read as EVTX at all is never
deleted: with `delete` or `move` it goes to `failed/`. Empty files are left alone.

Delivery: at-least-once into the spool; exactly-once in the store. Every event has a
deterministic id: source `windows-folder://<folder>` (one source per folder, so source
health and the silent-source watch see the folder, not each file), position
`<fingerprint>:<record number>` for EVTX and `<fingerprint>:<byte offset>` for JSON. Progress
is kept in the collector's state directory per file fingerprint: EVTX files are marked done
once wholly spooled; JSON files record the byte offset after the last spooled record, so a
file that keeps growing is read on from there. The spool is fsynced before progress is
saved, so a crash (kill -9 or power loss) at any instant can only make a restart read some
records again - with the same ids, which the store recognises. A JSON file's fingerprint is
the SHA-256 of its first record, which does not change while the file grows; an EVTX file's
is the SHA-256 of its first 64 KiB and its size (as for `socmon import evtx`). Records the
EVTX reader cannot decode are counted as drops (`corrupt_record`) in source health and
logged with their position.

With `after: keep`, an unfinished last line is left until it is completed; with `delete`
or `move` the file is treated as complete once stable and such a line is stored (as a parse
failure, with its text). Use `delete`/`move` only where exports are dropped whole. An EVTX
file must be complete when it appears (write it elsewhere, then rename it into the folder):
an EVTX file that changes is a new file to the watcher, and its events get new ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, ClassVar, Literal

from prometheus_client import Counter
from pydantic import Field

from collectors.base import CollectorContext, CollectorOptions, Resource
from collectors.health import SourceHealth
from collectors.parsing import SourceContext
from collectors.pipeline import Pipeline
from collectors.windows.importer import (
    EVTX_SUFFIXES,
    JSON_SUFFIXES,
    EvtxUnreadable,
    Interrupted,
    JsonRecord,
    file_fingerprint,
    iter_json_records,
    spool_evtx_file,
    spool_json_file,
)
from socmon.logging import kv

__all__ = ["FolderState", "FolderWatcher", "WindowsFolderCollector", "WindowsFolderOptions"]

log = logging.getLogger("socmon.collectors.windows.folder")

TYPE_NAME = "windows_folder"
STATE_FILE = "files.json"
FORGET_AFTER = 30 * 86400.0  # progress of files not seen for this long is forgotten at start
_CHECK_BYTES = 4096  # bytes before a saved offset that must still match to resume there

FILES = Counter(
    "socmon_windows_folder_files_total", "Files handled by the watched folder", ["outcome"]
)


class WindowsFolderOptions(CollectorOptions):
    parser: str = "windows"
    path: Path
    scan_interval: float = Field(default=2.0, gt=0)
    settle_seconds: float = Field(default=2.0, ge=0)
    after: Literal["keep", "delete", "move"] = "keep"
    batch: int = Field(default=1000, ge=1, le=100_000)


class FolderState:
    """Progress per file fingerprint, saved atomically (tmp, fsync, rename, fsync dir).

    Entry: `kind` (evtx|json), `done`, `offset` and `check` (JSON: SHA-256 of the bytes
    before the offset), `failed` (the reason a file could not be read), `name`, `seen`.
    """

    def __init__(self, path: Path, *, now: float | None = None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = {}
        self.dirty = False
        try:
            data = json.loads(path.read_bytes())
            entries = data.get("files", {}) if isinstance(data, dict) else {}
        except FileNotFoundError:
            entries = {}
        except (OSError, ValueError) as e:
            # Never skip data: unreadable progress means reading the files again (same ids).
            log.warning("folder state unreadable, starting over %s", kv(path=path, error=e))
            entries = {}
        cutoff = (time.time() if now is None else now) - FORGET_AFTER
        for key, entry in entries.items():
            if isinstance(entry, dict) and float(entry.get("seen", 0)) >= cutoff:
                self.entries[str(key)] = entry
        self.dirty = len(self.entries) != len(entries)

    def get(self, fingerprint: str) -> dict[str, Any] | None:
        return self.entries.get(fingerprint)

    def put(self, fingerprint: str, **values: Any) -> None:
        entry = self.entries.setdefault(fingerprint, {})
        entry.update(values, seen=time.time())
        self.dirty = True

    def touch(self, fingerprint: str) -> None:
        """Note that the file is still around (at most once a day, to keep saves rare)."""
        entry = self.entries.get(fingerprint)
        if entry is not None and float(entry.get("seen", 0)) < time.time() - 86400:
            entry["seen"] = time.time()
            self.dirty = True

    def remove(self, fingerprint: str) -> None:
        if self.entries.pop(fingerprint, None) is not None:
            self.dirty = True

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        payload = json.dumps({"version": 1, "files": self.entries}, indent=1, sort_keys=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.dirty = False


@dataclass
class _Seen:
    signature: tuple[int, int]  # (size, mtime_ns)
    since: float  # clock() when this signature was first observed
    handled: tuple[int, int] | None = None  # the signature last processed


def _tail_check(path: Path, offset: int) -> str:
    """SHA-256 of the (up to 4 KiB of) bytes just before `offset`."""
    begin = max(0, offset - _CHECK_BYTES)
    with open(path, "rb") as f:
        f.seek(begin)
        data = f.read(offset - begin)
    return hashlib.sha256(data).hexdigest() if len(data) == offset - begin else ""


def _json_fingerprint(path: Path, final: bool) -> str | None:
    """SHA-256 of the file's first JSON record (stable while the file grows); None if none yet."""
    with open(path, "rb") as f:
        for rec in iter_json_records(f, 0, final=final):
            return hashlib.sha256(b"json\x00" + rec.data).hexdigest()[:40]
    return None


class FolderWatcher:
    """The synchronous core of `windows_folder`: `scan()` once per interval (in a thread)."""

    def __init__(
        self,
        options: WindowsFolderOptions,
        pipeline: Pipeline,
        state_dir: Path,
        health: SourceHealth,
        *,
        clock: Callable[[], float] = time.monotonic,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.options = options
        self.folder = options.path.expanduser().absolute()
        self.pipeline = pipeline
        self.health = health
        self.clock = clock
        self.should_stop = should_stop
        self.source = f"windows-folder://{self.folder}"
        self.state = FolderState(state_dir / STATE_FILE)
        self._seen: dict[Path, _Seen] = {}
        self._missing = False
        self._tz: tzinfo | None = None
        if options.timezone and options.timezone.upper() != "UTC":
            from zoneinfo import ZoneInfo

            self._tz = ZoneInfo(options.timezone)

    # ---------------------------------------------------------------- scanning

    def scan(self) -> int:
        """Look at the folder once; read the files that are stable. Returns records spooled."""
        try:
            entries = list(os.scandir(self.folder))
        except OSError as e:
            if not self._missing:
                log.warning("watched folder unavailable %s", kv(path=self.folder, error=e))
                self._missing = True
            return 0
        if self._missing:
            log.info("watched folder available again %s", kv(path=self.folder))
            self._missing = False
        suffixes = EVTX_SUFFIXES | JSON_SUFFIXES
        now = self.clock()
        present: set[Path] = set()
        spooled = 0
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith(".") or Path(entry.name).suffix.lower() not in suffixes:
                continue
            try:
                if not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                continue  # vanished meanwhile
            path = Path(entry.path)
            present.add(path)
            signature = (st.st_size, st.st_mtime_ns)
            seen = self._seen.get(path)
            if seen is None or seen.signature != signature:
                seen = _Seen(signature, now, seen.handled if seen else None)
                self._seen[path] = seen
            if seen.handled == signature or now - seen.since < self.options.settle_seconds:
                continue
            if st.st_size == 0:
                seen.handled = signature
                continue
            if self.should_stop():
                raise Interrupted("stopping")
            spooled += self._process(path)
            seen.handled = signature
        for gone in set(self._seen) - present:
            del self._seen[gone]
        if self.state.dirty:
            self._commit()
        return spooled

    def _context(self, path: Path) -> SourceContext:
        return SourceContext(tz=self._tz, extra={"log.file.path": str(path)})

    def _commit(self) -> None:
        """Make every spooled record durable, then save the progress that points past it."""
        self.pipeline.spool.sync()
        self.state.save()

    def _process(self, path: Path) -> int:
        try:
            if path.suffix.lower() in EVTX_SUFFIXES:
                return self._process_evtx(path)
            return self._process_json(path)
        except Interrupted:
            raise
        except OSError as e:
            FILES.labels("error").inc()
            log.warning("watched file unreadable %s", kv(path=path, error=e))
            return 0

    def _process_evtx(self, path: Path) -> int:
        fingerprint = file_fingerprint(path)
        entry = self.state.get(fingerprint)
        records = 0
        if entry is not None:
            self.state.touch(fingerprint)
        if entry is None or not entry.get("done"):
            try:
                result = spool_evtx_file(
                    path,
                    self.pipeline,
                    source=self.source,
                    fingerprint=fingerprint,
                    collector=TYPE_NAME,
                    context=self._context(path),
                    batch=self.options.batch,
                    should_stop=self.should_stop,
                )
            except EvtxUnreadable as e:
                FILES.labels("unreadable").inc()
                log.warning("watched file is not readable EVTX %s", kv(path=path, error=e.msg))
                self.state.put(fingerprint, kind="evtx", done=True, failed=e.msg, name=path.name)
                self._commit()
                self._finish(path, fingerprint, failed=True)
                return 0
            records = result.records
            if result.bad_records:
                self.health.drop(self.source, TYPE_NAME, result.bad_records, "corrupt_record")
                log.warning(
                    "watched file has unreadable records %s",
                    kv(path=path, count=result.bad_records, first=result.failures[0]),
                )
            self.state.put(fingerprint, kind="evtx", done=True, name=path.name)
            self._commit()
            FILES.labels("done").inc()
            log.info("watched file read %s", kv(path=path, records=records))
        self._finish(path, fingerprint, failed=bool(self.state.entries[fingerprint].get("failed")))
        return records

    def _process_json(self, path: Path) -> int:
        final = self.options.after != "keep"
        fingerprint = _json_fingerprint(path, final)
        if fingerprint is None:
            return 0  # no complete record yet
        entry = self.state.get(fingerprint)
        if entry is not None:
            self.state.touch(fingerprint)
        if entry is not None and entry.get("done"):
            self._finish(path, fingerprint, failed=False)
            return 0
        start = 0
        if entry is not None:
            offset = int(entry.get("offset", 0))
            size = path.stat().st_size
            if offset <= size and _tail_check(path, offset) == entry.get("check"):
                start = offset
            else:
                log.warning(
                    "watched file changed before its saved offset, reading it again %s",
                    kv(path=path, offset=offset, size=size),
                )

        def checkpoint(_n: int, last: JsonRecord) -> None:
            self.state.put(
                fingerprint,
                kind="json",
                done=False,
                offset=last.end,
                check=_tail_check(path, last.end),
                name=path.name,
            )
            self._commit()

        result, offset = spool_json_file(
            path,
            self.pipeline,
            source=self.source,
            fingerprint=fingerprint,
            start=start,
            final=final,
            collector=TYPE_NAME,
            context=self._context(path),
            batch=self.options.batch,
            on_batch=checkpoint,
            should_stop=self.should_stop,
        )
        if final:
            self.state.put(fingerprint, kind="json", done=True, offset=offset, name=path.name)
            self._commit()
            self._finish(path, fingerprint, failed=False)
        if result.records:
            FILES.labels("done").inc()
            log.info("watched file read %s", kv(path=path, records=result.records, offset=offset))
        return result.records

    def _finish(self, path: Path, fingerprint: str, *, failed: bool) -> None:
        """Apply `after` to a wholly spooled file; its progress is then no longer needed."""
        after = self.options.after
        if after == "keep":
            return
        if after == "delete" and not failed:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            target_dir = self.folder / ("failed" if failed else "done")
            target_dir.mkdir(exist_ok=True)
            target = target_dir / path.name
            n = 1
            while target.exists():
                target = target_dir / f"{path.stem}.{n}{path.suffix}"
                n += 1
            os.rename(path, target)
        self._seen.pop(path, None)
        self.state.remove(fingerprint)


class WindowsFolderCollector:
    """Windows event exports dropped into a folder (`type: windows_folder`).

    Delivery: at-least-once (a file is re-read from its last saved position after a crash,
    with the same event ids, so the store keeps one copy). See the module docstring.
    """

    type_name: ClassVar[str] = TYPE_NAME
    can_acknowledge: ClassVar[bool] = True
    Options: ClassVar[type[WindowsFolderOptions]] = WindowsFolderOptions

    def __init__(self, options: WindowsFolderOptions) -> None:
        self.options = options

    def resources(self) -> list[Resource]:
        return [Resource("path", str(self.options.path.expanduser().absolute()))]

    async def run(self, ctx: CollectorContext) -> None:
        watcher = FolderWatcher(
            self.options, ctx.out, ctx.state_dir, ctx.health, should_stop=ctx.shutdown.is_set
        )
        log.info("watching folder %s", kv(path=watcher.folder, after=self.options.after))
        ctx.ready.set()
        while not ctx.shutdown.is_set():
            try:
                await asyncio.to_thread(watcher.scan)
            except Interrupted:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.shutdown.wait(), timeout=self.options.scan_interval)
