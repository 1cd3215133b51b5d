"""Reading Windows event exports into the pipeline: `.evtx` files and JSON-lines exports.

`import_evtx` is what `socmon import evtx` runs; the watched folder (`folder.py`) reuses the
per-file readers.

Delivery: at-least-once into the spool, exactly-once in the store. Every record carries a
deterministic position - `<file fingerprint>:<record number>` for EVTX (the number in the
record's header, unique in a file; exported files renumber from 1 while `winlog.record_id`
keeps the EventRecordID Windows gave), `<file fingerprint>:<byte offset>` for JSON - so
importing the same file again (or resuming after a crash) produces the same event ids and
the store keeps one copy. The fingerprint is the SHA-256 of the first 64 KiB and the size of
the file. A record the `evtx` reader cannot decode is counted and reported with its file and
record number, and the rest of the file is read; a file that cannot be opened as EVTX is
reported and the other files are imported. Nothing the reader decoded is dropped: an event
the parser does not understand is stored with `_parse_failure` (pipeline guarantee).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import evtx
import orjson

from collectors.parsing import SourceContext
from socmon.errors import SocmonError, SpoolFull
from socmon.logging import kv

if TYPE_CHECKING:  # loaded when spooling: `socmon match` reads files without the store client
    from collectors.pipeline import Pipeline, RawMessage

__all__ = [
    "EVTX_SUFFIXES",
    "JSON_SUFFIXES",
    "EvtxUnreadable",
    "FileResult",
    "ImportProgress",
    "ImportReport",
    "Interrupted",
    "JsonRecord",
    "evtx_records",
    "file_fingerprint",
    "find_files",
    "import_evtx",
    "iter_json_records",
    "spool_evtx_file",
    "spool_json_file",
]

log = logging.getLogger("socmon.collectors.windows")

EVTX_SUFFIXES = frozenset({".evtx"})
JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson"})
COLLECTOR = "evtx_import"
PARSER = "windows"
FINGERPRINT_BYTES = 64 << 10
MAX_RECORD = 8 << 20  # a JSON record larger than this is cut (and stored as a parse failure)
_MAX_REPORTED = 20  # bad records reported by position per file; all are counted
_MAX_CONSECUTIVE_ERRORS = 10_000  # the evtx reader keeps failing without progress: give up
_RECORD_NUMBER = re.compile(r"record (?:number |IDs? )?(\d+(?:\.\.\d+)?)", re.IGNORECASE)
_BOM = b"\xef\xbb\xbf"


class EvtxUnreadable(SocmonError):
    """A file that cannot be opened or read as EVTX at all."""


class Interrupted(SocmonError):
    """Reading stopped because the caller asked to stop (shutdown)."""


@dataclass(frozen=True)
class ImportProgress:
    """Where an import is: handed to the `progress` callback after every batch and file."""

    files_done: int
    files_total: int
    records: int
    bad_records: int
    elapsed: float
    current: Path | None


@dataclass
class ImportReport:
    """What an import did.

    files: files read (wholly or partly); records: events handed to the pipeline;
    bad_records: records the reader could not decode (lost; each file's first ones are in
    `failures` with their position); failures: (path, reason) for unreadable files and bad
    records; seconds: wall-clock time.
    """

    files: int = 0
    records: int = 0
    bad_records: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.bad_records


@dataclass
class FileResult:
    """One file's outcome: records spooled, bad records, and (reason) lines to report."""

    records: int = 0
    bad_records: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JsonRecord:
    """One JSON record of a file: its byte range [start, end) and its bytes (no newline)."""

    start: int
    end: int
    data: bytes


def file_fingerprint(path: Path) -> str:
    """SHA-256 of the first 64 KiB and the size of the file (40 hex digits)."""
    with open(path, "rb") as f:
        head = f.read(FINGERPRINT_BYTES)
        size = f.seek(0, 2)
    digest = hashlib.sha256(head)
    digest.update(b"\x00size=%d" % size)
    return digest.hexdigest()[:40]


def find_files(
    paths: Iterable[Path | str], *, json_lines: bool = False
) -> tuple[list[Path], list[tuple[str, str]]]:
    """The files to import, and (path, reason) for paths that do not exist.

    A folder is searched recursively for `*.evtx` (and, with `json_lines`, `*.json`,
    `*.jsonl`, `*.ndjson`); a file named explicitly is always taken. Duplicates are removed.
    """
    suffixes = EVTX_SUFFIXES | (JSON_SUFFIXES if json_lines else frozenset())
    found: list[Path] = []
    missing: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        if path.is_dir():
            candidates = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file()
            )
        elif path.is_file():
            candidates = [path]
        else:
            missing.append((str(path), "no such file or directory"))
            continue
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found, missing


def _is_json_file(path: Path, json_lines: bool) -> bool:
    return json_lines and path.suffix.lower() in JSON_SUFFIXES


def _record_position(message: str, last_id: int | None) -> str:
    m = _RECORD_NUMBER.search(message)
    if m:
        return f"record {m.group(1)}"
    return f"after record {last_id}" if last_id is not None else "before the first record"


def evtx_records(path: Path, *, threads: int = 0) -> Iterator[tuple[int, str] | str]:
    """(record number, JSON) per record of an EVTX file, or the reader's message for a bad one.

    Raises EvtxUnreadable when the file cannot be read as EVTX at all. `threads` limits the
    reader's worker threads (0: as many as there are cores).
    """
    return _evtx_records(path, threads=threads)


def _evtx_records(path: Path, *, threads: int = 0) -> Iterator[tuple[int, str] | str]:
    """(record number, JSON) per record, or the reader's error message for a bad record."""
    try:
        parser = evtx.PyEvtxParser(str(path), number_of_threads=threads, indent=False)
        records = parser.records_json()
    except (OSError, RuntimeError, ValueError) as e:
        raise EvtxUnreadable(f"not a readable EVTX file: {e}") from e
    failures = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except (RuntimeError, OSError, ValueError) as e:
            failures += 1
            if failures > _MAX_CONSECUTIVE_ERRORS:
                raise EvtxUnreadable(
                    f"gave up after {failures} consecutive unreadable records: {e}"
                ) from e
            yield str(e)
            continue
        failures = 0
        if record is None:  # the stub types records as Optional; the reader never yields None
            continue
        yield int(record["event_record_id"]), str(record["data"])


def _append(
    pipeline: Pipeline, batch: Sequence[RawMessage], should_stop: Callable[[], bool] | None
) -> int:
    """Hand a batch to the pipeline, waiting while the spool is full; returns records dropped."""
    if should_stop is None:
        seqs = pipeline.process(batch, timeout=None)
    else:
        while True:
            if should_stop():
                raise Interrupted("stopped while the spool was full")
            try:
                seqs = pipeline.process(batch, timeout=1.0)
                break
            except SpoolFull:
                continue
    return 0 if seqs else len(batch)


def spool_evtx_file(
    path: Path,
    pipeline: Pipeline,
    *,
    source: str,
    fingerprint: str,
    collector: str = COLLECTOR,
    context: SourceContext | None = None,
    batch: int = 1000,
    on_batch: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FileResult:
    """Read every record of one EVTX file into the pipeline, in batches.

    Raises EvtxUnreadable when the file cannot be read as EVTX at all, Interrupted when
    `should_stop` returns true (between batches). `on_batch(n)` is called after each batch.
    """
    from collectors.pipeline import RawMessage

    result = FileResult()
    context = context or SourceContext(extra={"log.file.path": str(path)})
    pending: list[RawMessage] = []
    last_id: int | None = None

    def flush() -> None:
        if not pending:
            return
        dropped = _append(pipeline, pending, should_stop)
        if dropped:
            result.failures.append(f"{dropped} records dropped: the spool is full")
        result.records += len(pending) - dropped
        if on_batch is not None:
            on_batch(len(pending) - dropped)
        pending.clear()

    for item in _evtx_records(path):
        if isinstance(item, str):
            result.bad_records += 1
            if result.bad_records <= _MAX_REPORTED:
                result.failures.append(f"{_record_position(item, last_id)}: {item}")
            continue
        record_id, data = item
        last_id = record_id
        pending.append(
            RawMessage(
                source=source,
                data=data.encode("utf-8", "surrogateescape"),
                received_at=time.time(),
                position=f"{fingerprint}:{record_id}",
                parser=PARSER,
                context=context,
                collector=collector,
            )
        )
        if len(pending) >= batch:
            flush()
            if should_stop is not None and should_stop():
                raise Interrupted(f"stopped while reading {path}")
    flush()
    if result.bad_records > _MAX_REPORTED:
        result.failures.append(
            f"... and {result.bad_records - _MAX_REPORTED} more unreadable records"
        )
    return result


def iter_json_records(
    f: BinaryIO, start: int = 0, *, final: bool = True, max_record: int = MAX_RECORD
) -> Iterator[JsonRecord]:
    """The JSON records of a file from byte `start`: JSON lines or concatenated JSON objects.

    A line holding a whole JSON value is one record (NXLog, Winlogbeat and `evtx --format
    jsonl` exports). A line that opens an object without closing it starts a multi-line
    record (pretty-printed exports such as the SigmaHQ regression samples); it ends at the
    first line beginning with `}` at which the text parses, and a line beginning with `{`
    before that closes it as a broken record. Blank lines are skipped; any other line is a
    record of its own (the parser stores it as a failure: nothing is dropped).

    The last line without a newline is yielded only when it parses or when `final` (the
    writer is done); an unfinished multi-line record only when `final`. Offsets of records
    not yet yielded are never passed, so a later call with `start` = the last `end`
    resumes exactly.
    """
    f.seek(start)
    pos = start
    pending: list[bytes] = []
    pending_start = 0
    pending_size = 0

    def record(begin: int, end: int, parts: list[bytes]) -> JsonRecord:
        data = b"".join(parts).rstrip(b"\r\n")
        if begin == 0 and data.startswith(_BOM):
            data = data[len(_BOM) :]
        return JsonRecord(begin, end, data)

    while True:
        line = f.readline(max_record + 1)
        if not line:
            break
        line_start, pos = pos, pos + len(line)
        terminated = line.endswith(b"\n") or len(line) > max_record
        body = line.strip()
        if line_start == 0 and body.startswith(_BOM):
            body = body[len(_BOM) :].strip()
        if pending:
            if line.startswith(b"{"):  # a new top-level object: the pending one is broken
                yield record(pending_start, line_start, pending)
                pending, pending_size = [], 0
            else:
                pending.append(line)
                pending_size += len(line)
                closed = line.startswith(b"}") and _parses(b"".join(pending))
                if closed or pending_size > max_record:
                    yield record(pending_start, pos, pending)
                    pending, pending_size = [], 0
                continue
        if not body:
            continue
        if not terminated:
            if final or _parses(body):
                yield record(line_start, pos, [line])
            return  # an unfinished last line: wait for the writer
        if body.startswith(b"{") and not body.endswith(b"}"):
            pending, pending_start, pending_size = [line], line_start, len(line)
            continue
        yield record(line_start, pos, [line])
    if pending and final:
        yield record(pending_start, pos, pending)


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


def spool_json_file(
    path: Path,
    pipeline: Pipeline,
    *,
    source: str,
    fingerprint: str,
    start: int = 0,
    final: bool = True,
    collector: str = COLLECTOR,
    context: SourceContext | None = None,
    batch: int = 1000,
    on_batch: Callable[[int, JsonRecord], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[FileResult, int]:
    """Read the JSON records of one file from `start` into the pipeline, in batches.

    Returns the result and the offset after the last record spooled (where a later call
    resumes). `on_batch(n, last_record)` is called after each batch is in the spool.
    """
    from collectors.pipeline import RawMessage

    result = FileResult()
    context = context or SourceContext(extra={"log.file.path": str(path)})
    pending: list[RawMessage] = []
    offset = start
    last: JsonRecord | None = None

    def flush() -> None:
        nonlocal offset
        if not pending or last is None:
            return
        dropped = _append(pipeline, pending, should_stop)
        if dropped:
            result.failures.append(f"{dropped} records dropped: the spool is full")
        result.records += len(pending) - dropped
        offset = last.end
        if on_batch is not None:
            on_batch(len(pending) - dropped, last)
        pending.clear()

    with open(path, "rb") as f:
        for rec in iter_json_records(f, start, final=final):
            last = rec
            pending.append(
                RawMessage(
                    source=source,
                    data=rec.data,
                    received_at=time.time(),
                    position=f"{fingerprint}:{rec.start}",
                    parser=PARSER,
                    context=context,
                    collector=collector,
                )
            )
            if len(pending) >= batch:
                flush()
                if should_stop is not None and should_stop():
                    raise Interrupted(f"stopped while reading {path}")
        flush()
    return result, offset


def import_evtx(
    paths: Iterable[Path | str],
    pipeline: Pipeline,
    *,
    progress: Callable[[ImportProgress], None] | None = None,
    json_lines: bool = False,
    batch: int = 1000,
    should_stop: Callable[[], bool] | None = None,
) -> ImportReport:
    """Import EVTX files (and folders of them, recursively) into the pipeline.

    One message per record: source `evtx://<absolute path>`, position
    `<fingerprint>:<record number>`, parser `windows`, collector `evtx_import`, in batches of
    `batch` to `pipeline.process(batch, timeout=None)` (waits while the spool is full).
    With `json_lines`, `*.json`/`*.jsonl`/`*.ndjson` files are read as JSON-lines exports
    (source `file://<absolute path>`, position `<fingerprint>:<byte offset>`).
    A bad record or an unreadable file is reported in the result; the import goes on.
    With `should_stop`, waiting for spool space is done in 1 s steps and Interrupted is
    raised (between batches) once it returns true - e.g. when nothing drains the spool.
    """
    started = time.monotonic()
    files, missing = find_files(paths, json_lines=json_lines)
    report = ImportReport(failures=list(missing))
    done = 0
    current: Path | None = None

    def tell() -> None:
        if progress is not None:
            progress(
                ImportProgress(
                    files_done=done,
                    files_total=len(files),
                    records=report.records,
                    bad_records=report.bad_records,
                    elapsed=time.monotonic() - started,
                    current=current,
                )
            )

    def counted(n: int, *_: object) -> None:
        report.records += n
        tell()

    for path in files:
        current = path
        tell()
        try:
            fingerprint = file_fingerprint(path)
            if _is_json_file(path, json_lines):
                result, _ = spool_json_file(
                    path,
                    pipeline,
                    source=f"file://{path}",
                    fingerprint=fingerprint,
                    batch=batch,
                    on_batch=counted,
                    should_stop=should_stop,
                )
            else:
                result = spool_evtx_file(
                    path,
                    pipeline,
                    source=f"evtx://{path}",
                    fingerprint=fingerprint,
                    batch=batch,
                    on_batch=counted,
                    should_stop=should_stop,
                )
        except (EvtxUnreadable, OSError) as e:
            reason = e.msg if isinstance(e, EvtxUnreadable) else f"cannot read: {e}"
            report.failures.append((str(path), reason))
            log.warning("import skipped file %s", kv(path=path, error=reason))
            done += 1
            continue
        report.files += 1
        report.bad_records += result.bad_records
        report.failures.extend((str(path), reason) for reason in result.failures)
        if result.bad_records:
            log.warning(
                "import found unreadable records %s", kv(path=path, count=result.bad_records)
            )
        done += 1
    current = None
    report.seconds = time.monotonic() - started
    tell()
    return report
