"""`socmon match`: offline triage of log files with Sigma rules, without a running stack.

``socmon match --rules DIR --input PATH... [--json]`` reads EVTX files, JSON / JSON-lines
exports and plain log files (folders searched recursively), turns every record into the ECS
document socmon's own parsers produce, evaluates the given Sigma rules (only those: socmon's
built-in rules are not loaded) and prints the matches - the forensic use Chainsaw, Hayabusa
and Zircolite serve.

Reading: ``.evtx`` (or any file starting with the EVTX magic) through the `evtx` reader and
the Windows parser; ``.json``/``.jsonl``/``.ndjson`` (or a file whose first byte is ``{``) as
JSON records: Windows events (evtx JSON, NXLog, Winlogbeat) through the Windows parser, other
JSON lines (Suricata EVE, ...) through the parser `collectors.registry.detect` picks, and an
ECS document the parsers do not claim is taken as it is; anything else line by line with
`collectors.registry.detect`, as ``socmon parse --vendor auto`` does, except that syslog lines
of the Linux authentication programs (sshd, sudo, su, ...) go to the `linux_auth` parser. A
record no parser understands is still matched, tagged ``_parse_failure`` (as in the pipeline).
Every event gets ``log.file.path``. Gzip-compressed files are read transparently.

Parallelism (``--workers``, default: every core) - two ways to share the work, chosen from the
sizes (``--split auto``) or by the user:

- ``rules``: each worker loads and compiles a share of the rule files and reads every input.
  Loading a large rule set (YAML, pySigma, compilation: about 3 ms a rule) usually costs more
  than reading a triage-sized input, so this is what makes start-up parallel;
- ``events``: the rules are compiled once in the parent, the workers are forked from it (they
  inherit the matcher), and the inputs are shared out - files, and blocks of records of large
  files, so one big file still keeps every core busy.

The output is the same whichever way and however many workers: matches are sorted by input
file (in the order given, folders sorted), then record order, then rule order.

Exit status: 0; 1 when an input could not be read (wholly or partly: missing path, not a
readable EVTX file, unreadable records) - every match found is still printed; 2 on usage
errors (no rule file found).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import multiprocessing
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

import orjson

from collectors.parsing import EcsDoc, ParseError, Parser, SourceContext

# The engine (pySigma, the evtx reader, the parsers) is imported when the command runs, not
# when the CLI registers it; `run_match` imports it before forking so workers inherit it.
if TYPE_CHECKING:
    from detections.sigma.loader import RuleError
    from detections.sigma.matcher import CompiledRule, Matcher

__all__ = [
    "LEVELS",
    "Hit",
    "InputFile",
    "MatchOptions",
    "MatchReport",
    "RulesSummary",
    "add_match_parser",
    "cmd_match",
    "find_inputs",
    "format_table",
    "main",
    "run_match",
    "write_hits",
]

LEVELS = ("informational", "low", "medium", "high", "critical")
EVTX_MAGIC = b"ElfFile\x00"
JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson"})
SPLIT_BYTES = 2 << 20  # in `events` mode a file larger than this is shared among the workers
BLOCK = 256  # records per block when a file is shared among workers
# Rough costs for choosing how to share the work (seconds): per rule file loaded and compiled,
# per byte of EVTX and of text read and parsed.
_RULE_COST = 5e-3
_EVTX_BYTE_COST = 2.5e-8
_TEXT_BYTE_COST = 1e-7
# Syslog programs whose lines the linux_auth parser understands (auth.log / secure).
_AUTH_PROGRAMS = frozenset(
    {
        "sshd",
        "sudo",
        "su",
        "unix_chkpwd",
        "useradd",
        "groupadd",
        "userdel",
        "groupdel",
        "usermod",
        "login",
        "passwd",
        "systemd-logind",
    }
)
# Fields shown with a match: (label in the table, ECS field, fields to try when it is absent).
KEY_FIELDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("id", "event.code", ()),
    ("action", "event.action", ()),
    ("user", "user.name", ("winlog.event_data.TargetUserName", "winlog.event_data.User")),
    ("subject", "winlog.event_data.SubjectUserName", ()),
    ("src", "source.ip", ("winlog.event_data.IpAddress", "winlog.event_data.SourceIp")),
    ("dst", "destination.ip", ("winlog.event_data.DestinationIp",)),
    (
        "image",
        "process.executable",
        ("winlog.event_data.Image", "winlog.event_data.NewProcessName"),
    ),
    ("cmd", "process.command_line", ("winlog.event_data.CommandLine",)),
    ("parent", "process.parent.executable", ("winlog.event_data.ParentImage",)),
    ("file", "file.path", ("winlog.event_data.TargetFilename",)),
    ("registry", "registry.path", ("winlog.event_data.TargetObject",)),
    ("query", "dns.question.name", ("winlog.event_data.QueryName",)),
    ("service", "service.name", ("winlog.event_data.ServiceName",)),
)
_MESSAGE_CHARS = 300


# --------------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class InputFile:
    """One file to read: its place in the output order, its path, its kind and size."""

    index: int
    path: Path
    kind: str
    """``evtx``, ``json`` or ``lines``"""
    size: int
    compressed: bool = False


@dataclass(frozen=True)
class MatchOptions:
    """Which rules to evaluate: the rule paths and the filters on them."""

    rule_paths: tuple[Path, ...]
    min_level: str | None = None
    rule_ids: frozenset[str] = frozenset()

    def keeps(self, rule: CompiledRule) -> bool:
        if self.rule_ids and rule.id not in self.rule_ids:
            return False
        if self.min_level is not None:
            level = rule.level.lower()
            if level not in LEVELS or LEVELS.index(level) < LEVELS.index(self.min_level):
                return False
        return True


@dataclass(frozen=True)
class Hit:
    """One rule matching one event: its sort key and the output object."""

    key: tuple[int, int, int, int]
    """(input file, record, rule file, rule in file)"""
    doc: dict[str, Any]


@dataclass
class ScanResult:
    """What reading one input file (or one share of its records) gave."""

    file: int
    events: int = 0
    parse_failures: int = 0
    bad_records: int = 0
    failure: str | None = None
    """why the file could not be read (at all, or after some records)"""
    bad_examples: list[str] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)


@dataclass
class RulesSummary:
    """What happened to the rule files: loaded, selected, left out and why."""

    files: int = 0
    loaded: int = 0
    selected: int = 0
    errors: list[RuleError] = field(default_factory=list)
    unsupported: list[tuple[str, Path | None, str]] = field(default_factory=list)
    partial: list[tuple[str, Path | None, str]] = field(default_factory=list)
    """(rule id, path, reason): routes left out of a rule that was compiled for other routes"""
    correlations: list[Path] = field(default_factory=list)

    def merge(self, other: RulesSummary) -> None:
        self.loaded += other.loaded
        self.selected += other.selected
        for error in other.errors:
            if error not in self.errors:  # global filters are loaded by every share
                self.errors.append(error)
        self.unsupported.extend(other.unsupported)
        self.partial.extend(other.partial)
        self.correlations.extend(p for p in other.correlations if p not in self.correlations)


@dataclass
class MatchReport:
    """Everything a run found: matches in output order, counts, and every problem."""

    rules: RulesSummary
    files: int = 0
    events: int = 0
    parse_failures: int = 0
    bad_records: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason): inputs that could not be read, wholly or partly"""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason): files found in folders that are not logs (binary)"""
    hits: list[Hit] = field(default_factory=list)
    mode: str = "single"
    workers: int = 1
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


# ------------------------------------------------------------------------------------- inputs


def _sniff(path: Path) -> tuple[str | None, bool]:
    """(kind, gzip-compressed) of a file from its name and first bytes; kind None: not a log."""
    with open(path, "rb") as f:
        head = f.read(4096)
    compressed = head[:2] == b"\x1f\x8b"
    if compressed:
        with gzip.open(path, "rb") as g:
            head = g.read(4096)
    name = path.name.lower().removesuffix(".gz") if compressed else path.name.lower()
    suffix = Path(name).suffix
    if head.startswith(EVTX_MAGIC) or suffix == ".evtx":
        return "evtx", compressed
    if suffix in JSON_SUFFIXES or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "json", compressed
    if b"\x00" in head:
        return None, compressed
    return "lines", compressed


def find_inputs(
    paths: Sequence[Path | str],
) -> tuple[list[InputFile], list[tuple[str, str]], list[tuple[str, str]]]:
    """The files to read, (path, reason) for inputs that cannot be read, and skipped files.

    Folders are searched recursively (sorted, hidden files included); a file named explicitly
    is always read (a binary one as lines, so that nothing is silently left out); a file found
    in a folder that holds binary data other than EVTX is skipped and listed. Duplicates are
    read once.
    """
    found: list[InputFile] = []
    failures: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if not p.is_dir())
            explicit = False
        elif path.is_file():
            candidates, explicit = [path], True
        elif path.exists():
            failures.append((str(path), "not a regular file or folder"))
            continue
        else:
            failures.append((str(path), "no such file or directory"))
            continue
        for candidate in candidates:
            if not candidate.is_file():
                what = "broken symbolic link" if candidate.is_symlink() else "not a regular file"
                skipped.append((str(candidate), what))
                continue
            key = candidate.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                kind, compressed = _sniff(candidate)
                size = candidate.stat().st_size
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                failures.append((str(candidate), f"cannot read: {_reason(e)}"))
                continue
            if kind is None:
                if not explicit:
                    skipped.append((str(candidate), "binary file, not a log"))
                    continue
                kind = "lines"
            found.append(InputFile(len(found), candidate, kind, size, compressed))
    return found, failures, skipped


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


# ------------------------------------------------------------------------------------ parsing


def _failure_doc(text: str, reason: str, dataset: str) -> EcsDoc:
    """The document the pipeline stores for a message no parser understands."""
    return {
        "message": text,
        "event": {"original": text, "kind": "event", "dataset": dataset},
        "tags": ["_parse_failure"],
        "error": {"message": reason, "type": "parse_failure"},
    }


def _registry() -> ModuleType:
    """`collectors.registry`, imported when first needed: EVTX files never need it (start-up)."""
    from collectors import registry

    return registry


def _parse_with(name: str, text: str, ctx: SourceContext) -> EcsDoc:
    registry = _registry()
    datasets: dict[str, str] = registry.DATASETS
    parser: Parser = registry.PARSERS[name]
    try:
        doc = parser(text, ctx)
    except ParseError as e:
        return _failure_doc(text, e.msg, datasets.get(name, "syslog"))
    except Exception as e:  # a parser bug must not stop the run nor lose the event
        reason = f"parser {name} failed: {type(e).__name__}: {e}"
        return _failure_doc(text, reason, datasets.get(name, "syslog"))
    doc.setdefault("event", {}).setdefault("dataset", datasets.get(name, "syslog"))
    return doc


def parse_line(text: str, ctx: SourceContext) -> EcsDoc:
    """One line of a plain log file: the parser `registry.detect` picks (auth programs refined)."""
    name: str = _registry().detect(text)
    doc = _parse_with(name, text, ctx)
    if name == "syslog" and "_parse_failure" not in doc.get("tags", ()):
        program = doc.get("process", {}).get("name")
        if program in _AUTH_PROGRAMS:
            from collectors.linux_auth import parse as linux_auth_parse

            with contextlib.suppress(ParseError):
                doc = linux_auth_parse(text, ctx)
    return doc


def parse_json_record(text: str, ctx: SourceContext) -> EcsDoc:
    """One JSON record: a Windows event, another vendor's JSON line, or an ECS document."""
    try:
        from collectors.windows.parse import parse as windows_parse

        return windows_parse(text, ctx)
    except ParseError as e:
        windows_reason = e.msg
    except Exception as e:  # a parser bug must not stop the run nor lose the event
        windows_reason = f"parser windows failed: {type(e).__name__}: {e}"
    name: str = _registry().detect(text)
    if name != "syslog":
        return _parse_with(name, text, ctx)
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and isinstance(obj.get("_source"), dict):
        obj = obj["_source"]  # an Elasticsearch hit exported as is
    if isinstance(obj, dict) and "@timestamp" in obj:
        return obj  # already an ECS document
    return _failure_doc(text, windows_reason, "windows.other")


# ------------------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class _Record:
    """One record read from a file: its ordinal, its position label and its text."""

    seq: int
    number: int
    """EVTX record number, line number, or JSON record ordinal (1-based)"""
    offset: int | None
    text: str


def _open(inp: InputFile) -> BinaryIO:
    if inp.compressed:
        return cast(BinaryIO, gzip.open(inp.path, "rb"))
    return open(inp.path, "rb")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="backslashreplace")


def _records(inp: InputFile, want: Callable[[int], bool], result: ScanResult) -> Iterator[_Record]:
    """The records of one file that `want(seq)` selects; bad EVTX records go to `result`."""
    from collectors.windows.importer import EvtxUnreadable, evtx_records, iter_json_records

    seq = -1
    if inp.kind == "evtx":
        if inp.compressed:
            raise EvtxUnreadable("compressed EVTX files are not supported: decompress it first")
        last: int | None = None
        for item in evtx_records(inp.path, threads=1):
            seq += 1
            if not want(seq):
                continue
            if isinstance(item, str):
                result.bad_records += 1
                if len(result.bad_examples) < 5:
                    where = f"after record {last}" if last is not None else "record"
                    result.bad_examples.append(f"{where}: {item}")
                continue
            last = item[0]
            yield _Record(seq, item[0], None, item[1])
    elif inp.kind == "json":
        with _open(inp) as f:
            for rec in iter_json_records(f):
                seq += 1
                if want(seq):
                    yield _Record(seq, seq + 1, rec.start, _decode(rec.data))
    else:
        with _open(inp) as f:
            offset = 0
            for number, line in enumerate(f, 1):
                start, offset = offset, offset + len(line)
                body = line.rstrip(b"\r\n")
                if not body.strip():
                    continue
                seq += 1
                if want(seq):
                    yield _Record(seq, number, start, _decode(body))


def _parse(inp: InputFile, rec: _Record, ctx: SourceContext) -> EcsDoc:
    parse = parse_line if inp.kind == "lines" else parse_json_record
    doc = parse(rec.text, ctx)
    log = doc.get("log")
    if not isinstance(log, dict):
        log = doc["log"] = {}
    log["file"] = {"path": str(inp.path)}
    if rec.offset is not None:
        log["offset"] = rec.offset
    return doc


RuleKeys = dict[int, tuple[int, int]]
"""id(compiled rule) -> (rule file index, rule index in its file): the rule's output order."""


def iter_docs(
    inp: InputFile, result: ScanResult, *, part: int = 0, parts: int = 1
) -> Iterator[tuple[_Record, EcsDoc]]:
    """Read and parse one file (or, with `parts` > 1, its blocks number `part`), counting into
    `result`; a file that cannot be read (any more) sets `result.failure` and ends."""
    from collectors.windows.importer import EvtxUnreadable

    ctx = SourceContext(extra={"log.file.path": str(inp.path)})

    def want(seq: int) -> bool:
        return parts == 1 or (seq // BLOCK) % parts == part

    try:
        for rec in _records(inp, want, result):
            doc = _parse(inp, rec, ctx)
            result.events += 1
            if "_parse_failure" in doc.get("tags", ()):
                result.parse_failures += 1
            yield rec, doc
    except EvtxUnreadable as e:
        result.failure = e.msg
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        result.failure = f"cannot read: {_reason(e)}"
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # a reader or parser bug (or a Rust panic): lose this file only
        result.failure = f"reading stopped: {type(e).__name__}: {e}"


def _match_doc(
    matcher: Matcher, keys: RuleKeys, inp: InputFile, rec: _Record, doc: EcsDoc, out: list[Hit]
) -> None:
    rules = matcher.match(doc)
    if not rules:
        return
    seen: set[tuple[int, int]] = set()
    for rule in rules:
        key = keys[id(rule)]
        if key not in seen:  # two routes of one rule
            seen.add(key)
            out.append(Hit((inp.index, rec.seq, *key), _hit_doc(rule, doc, inp, rec)))


def scan_file(
    inp: InputFile,
    matcher: Matcher,
    keys: RuleKeys,
    *,
    part: int = 0,
    parts: int = 1,
) -> ScanResult:
    """Read, parse and match one file (or, with `parts` > 1, its blocks number `part`)."""
    result = ScanResult(inp.index)
    for rec, doc in iter_docs(inp, result, part=part, parts=parts):
        _match_doc(matcher, keys, inp, rec, doc, result.hits)
    return result


def parse_to(inputs: Sequence[InputFile], out: BinaryIO) -> list[ScanResult]:
    """`rules` mode: read and parse every input once, writing the documents to `out` (one
    JSON line per file: index and [seq, number, offset, document] per record) for the workers
    that match them; the counts and failures are returned."""
    results: list[ScanResult] = []
    for inp in inputs:
        result = ScanResult(inp.index)
        records = [(rec.seq, rec.number, rec.offset, doc) for rec, doc in iter_docs(inp, result)]
        out.write(orjson.dumps([inp.index, records]) + b"\n")
        results.append(result)
    return results


def match_parsed(
    cache: Path, inputs: Sequence[InputFile], matcher: Matcher, keys: RuleKeys
) -> list[ScanResult]:
    """`rules` mode, in a worker: match the documents `parse_to` wrote (hits only)."""
    by_index = {inp.index: inp for inp in inputs}
    results: list[ScanResult] = []
    with cache.open("rb") as f:
        for line in f:
            index, records = orjson.loads(line)
            inp = by_index[index]
            result = ScanResult(index)
            for seq, number, offset, doc in records:
                _match_doc(matcher, keys, inp, _Record(seq, number, offset, ""), doc, result.hits)
            results.append(result)
    return results


# ------------------------------------------------------------------------------------- output


def _get(doc: Any, name: str) -> Any:
    """A field by its dotted name, in nested objects or as a flat dotted key (or a mix)."""
    if not isinstance(doc, dict):
        return None
    if name in doc:
        return doc[name]
    head, dot, rest = name.partition(".")
    while dot:
        if head in doc:
            return _get(doc[head], rest)
        more, dot, rest = rest.partition(".")
        head = f"{head}.{more}"
    return None


def _hit_doc(rule: CompiledRule, doc: EcsDoc, inp: InputFile, rec: _Record) -> dict[str, Any]:
    """The output object of one match."""
    out: dict[str, Any] = {
        "rule": {"id": rule.id, "title": rule.title, "level": rule.level, "tags": list(rule.tags)},
        "@timestamp": _get(doc, "@timestamp"),
        "host.name": _get(doc, "host.name") or _get(doc, "host.hostname"),
        "log.file.path": str(inp.path),
        "record": rec.number,
    }
    if rec.offset is not None:
        out["log.offset"] = rec.offset
    for name in ("winlog.record_id", "winlog.channel"):
        value = _get(doc, name)
        if value is not None:
            out[name] = value
    for _label, name, fallbacks in KEY_FIELDS:
        for candidate in (name, *fallbacks):
            value = _get(doc, candidate)
            if value not in (None, "", "-"):
                out[candidate] = value
                break
    if "winlog.channel" not in out:
        message = _get(doc, "message")
        if isinstance(message, str) and message:
            out["message"] = message[:_MESSAGE_CHARS]
    return out


def _details(doc: dict[str, Any]) -> str:
    parts: list[str] = []
    for label, name, fallbacks in KEY_FIELDS:
        for candidate in (name, *fallbacks):
            if candidate in doc:
                value = doc[candidate]
                text = value if isinstance(value, str) else orjson.dumps(value).decode()
                parts.append(f"{label}={' '.join(text.split())}")
                break
    if "message" in doc:
        parts.append(f"message={' '.join(str(doc['message']).split())}")
    return "  ".join(parts)


def format_table(hits: Sequence[Hit], *, details_width: int = 160) -> list[str]:
    """The human table: time, level, rule, host, file:record and the key fields."""
    header = ("TIME", "LEVEL", "RULE", "HOST", "FILE:RECORD", "DETAILS")
    rows = []
    for hit in hits:
        d = hit.doc
        details = _details(d)
        if len(details) > details_width:
            details = details[: details_width - 1] + "…"
        rows.append(
            (
                str(d.get("@timestamp") or "-"),
                d["rule"]["level"] or "-",
                _clip(d["rule"]["title"], 60),
                _clip(str(d.get("host.name") or "-"), 30),
                f"{d['log.file.path']}:{d['record']}",
                details,
            )
        )
    widths = [max([len(header[i]), *(len(r[i]) for r in rows)]) for i in range(len(header) - 1)]
    lines = []
    for row in (header, *rows):
        cells = [row[i].ljust(widths[i]) for i in range(len(widths))]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# ------------------------------------------------------------------------------------- rules


_FILTER_RE = re.compile(rb"^filter\s*:", re.MULTILINE)


def _is_filter_file(path: Path) -> bool:
    """A Sigma global filter file (it must be loaded with every share of the rules)."""
    try:
        return _FILTER_RE.search(path.read_bytes()) is not None
    except OSError:
        return False


def compile_rules(
    files: Sequence[Path], all_files: Sequence[Path], options: MatchOptions
) -> tuple[Matcher, RuleKeys, RulesSummary]:
    """Load and compile `files` (positions taken from `all_files`), keeping the selected rules.

    A rule compiled to several routes (one copy per kind of event) has one key for all its
    copies, so an event two routes match is one match.
    """
    from detections.sigma.loader import load_rules
    from detections.sigma.matcher import Matcher

    ruleset = load_rules(list(files))
    matcher, report = Matcher.from_ruleset(ruleset)
    index = {path: i for i, path in enumerate(all_files)}
    keys: RuleKeys = {}
    positions: dict[tuple[Path | None, str], tuple[int, int]] = {}
    per_file: dict[Path | None, int] = {}
    for rule in report.compiled:
        key = positions.get((rule.path, rule.id))
        if key is None:
            n = per_file[rule.path] = per_file.get(rule.path, -1) + 1
            file_index = index.get(rule.path, len(index)) if rule.path else len(index)
            key = positions[rule.path, rule.id] = (file_index, n)
        keys[id(rule)] = key
    selected = [rule for rule in report.compiled if options.keeps(rule)]
    if len(selected) != len(report.compiled):
        matcher = Matcher(selected)
    summary = RulesSummary(
        files=len(files),
        loaded=len(ruleset.rules),
        selected=len({keys[id(rule)] for rule in selected}),
        errors=list(ruleset.errors),
        unsupported=list(report.unsupported),
        partial=list(getattr(report, "partial", ())),
        correlations=[c.path for c in ruleset.correlations],
    )
    return matcher, keys, summary


# ----------------------------------------------------------------------------------- workers

# Set in the parent before the workers are forked (`events` mode): they inherit it.
_STATE: tuple[Matcher, RuleKeys] | None = None


def _init_worker(files: Sequence[Path], options: MatchOptions) -> None:
    """Pool initializer: compile the rules unless they were inherited from the parent (fork)."""
    global _STATE
    if _STATE is None:
        matcher, keys, _ = compile_rules(files, files, options)
        _STATE = (matcher, keys)


def _scan_task(inp: InputFile, part: int, parts: int) -> ScanResult:
    assert _STATE is not None, "worker started without rules"
    matcher, keys = _STATE
    return scan_file(inp, matcher, keys, part=part, parts=parts)


def _rule_share_task(
    files: Sequence[Path],
    all_files: Sequence[Path],
    options: MatchOptions,
    inputs: Sequence[InputFile],
    cache: str,
    ready: str,
) -> tuple[RulesSummary, list[ScanResult]]:
    """`rules` mode: compile one share of the rule files while the parent parses the inputs,
    then match the parsed documents it wrote to `cache` (once `ready` exists)."""
    matcher, keys, summary = compile_rules(files, all_files, options)
    flag = Path(ready)
    while not flag.exists():
        time.sleep(0.02)
    if flag.read_text() != "ok":
        raise RuntimeError(f"the parent could not parse the inputs: {flag.read_text()}")
    return summary, match_parsed(Path(cache), inputs, matcher, keys)


def _pool(
    workers: int, initializer: Any = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=initializer, initargs=initargs
    )


def choose_split(rule_count: int, inputs: Sequence[InputFile]) -> str:
    """`rules` when loading the rules costs more than reading the inputs, else `events`."""
    rule_cost = rule_count * _RULE_COST
    event_cost = sum(
        inp.size * (_EVTX_BYTE_COST if inp.kind == "evtx" else _TEXT_BYTE_COST) for inp in inputs
    )
    return "rules" if rule_cost >= event_cost else "events"


def run_match(
    inputs: Sequence[Path | str],
    options: MatchOptions,
    *,
    workers: int | None = None,
    split: str = "auto",
) -> MatchReport:
    """Evaluate the rules of `options` over `inputs`; see the module docstring."""
    global _STATE
    started = time.monotonic()
    workers = max(1, workers or os.cpu_count() or 1)
    files, failures, skipped = find_inputs(inputs)
    import collectors.windows.importer
    import collectors.windows.parse
    import detections.sigma.matcher  # noqa: F401
    from detections.sigma.loader import rule_files

    all_rules = rule_files(list(options.rule_paths))
    rules = RulesSummary(files=len(all_rules))
    report = MatchReport(rules, failures=list(failures), skipped=skipped, workers=workers)
    results: list[ScanResult] = []
    if split == "auto":
        split = choose_split(len(all_rules), files)
    if any(inp.kind != "evtx" for inp in files):
        _registry()  # imported once here rather than in every worker
        import collectors.linux_auth  # noqa: F401
    if workers > 1 and split == "rules" and len(all_rules) > 1 and files:
        filters = [p for p in all_rules if _is_filter_file(p)]
        plain = [p for p in all_rules if p not in filters]
        n = min(workers, len(plain)) or 1
        shares = [[*filters, *plain[i::n]] for i in range(n)]
        report.mode, report.workers = "rules", n
        shared: list[list[ScanResult]] = []
        with tempfile.TemporaryDirectory(prefix="socmon-match-") as tmp, _pool(n) as pool:
            cache, ready = Path(tmp) / "events.jsonl", Path(tmp) / "ready"
            futures = [
                pool.submit(
                    _rule_share_task, share, all_rules, options, files, str(cache), str(ready)
                )
                for share in shares
            ]
            # The inputs are read and parsed once, here, while the workers compile.
            status = "ok"
            try:
                with cache.open("wb") as out:
                    results.extend(parse_to(files, out))
            except BaseException as e:
                status = f"{type(e).__name__}: {e}"
                raise
            finally:  # renamed into place: a worker never reads a half-written flag
                (Path(tmp) / "ready.tmp").write_text(status)
                (Path(tmp) / "ready.tmp").replace(ready)
            for i, future in enumerate(futures):
                try:
                    summary, scans = future.result()
                except Exception as e:  # a worker died: its rules were not evaluated
                    what = f"rules share {i + 1} of {n} ({len(shares[i])} rule files)"
                    report.failures.append((what, f"worker failed: {type(e).__name__}: {e}"))
                    continue
                rules.merge(summary)
                shared.append(scans)
        for scans in shared:
            for own, scan in zip(results, scans, strict=True):
                own.hits.extend(scan.hits)
    else:
        matcher, keys, summary = compile_rules(all_rules, all_rules, options)
        rules.merge(summary)
        if workers > 1 and (len(files) > 1 or any(inp.size > SPLIT_BYTES for inp in files)):
            tasks = [
                (inp, part, parts)
                for inp in files
                for parts in [workers if inp.size > SPLIT_BYTES else 1]
                for part in range(parts)
            ]
            report.mode = "events"
            _STATE = (matcher, keys)
            try:
                with _pool(workers, _init_worker, (all_rules, options)) as pool:
                    scan_futures = [pool.submit(_scan_task, *task) for task in tasks]
                    for (inp, part, parts), scan_future in zip(tasks, scan_futures, strict=True):
                        try:
                            results.append(scan_future.result())
                        except Exception as e:  # a worker died: this share was not read
                            reason = f"worker failed: {type(e).__name__}: {e}"
                            if parts > 1:
                                reason = f"record blocks {part + 1} of {parts}: {reason}"
                            results.append(ScanResult(inp.index, failure=reason))
            finally:
                _STATE = None
        else:
            report.mode, report.workers = "single", 1
            results.extend(scan_file(inp, matcher, keys) for inp in files)
    _collect(report, files, results)
    report.seconds = time.monotonic() - started
    return report


def _collect(report: MatchReport, files: Sequence[InputFile], results: list[ScanResult]) -> None:
    """Add up the results of every file (or share of a file) into the report."""
    events: dict[int, int] = {}
    bad: dict[int, int] = {}
    reasons: dict[int, list[str]] = {}
    examples: dict[int, list[str]] = {}
    for res in results:
        events[res.file] = events.get(res.file, 0) + res.events
        bad[res.file] = bad.get(res.file, 0) + res.bad_records
        report.parse_failures += res.parse_failures
        report.hits.extend(res.hits)
        if res.failure is not None and res.failure not in reasons.setdefault(res.file, []):
            reasons[res.file].append(res.failure)
        examples.setdefault(res.file, []).extend(res.bad_examples)
    for inp in files:
        path = str(inp.path)
        report.failures.extend((path, reason) for reason in reasons.get(inp.index, []))
        if bad.get(inp.index):
            shown = examples[inp.index][:5]
            report.failures.append((path, f"{bad[inp.index]} unreadable records"))
            report.failures.extend((path, example) for example in shown)
        if events.get(inp.index) or (inp.index in events and not reasons.get(inp.index)):
            report.files += 1
    report.events = sum(events.values())
    report.bad_records = sum(bad.values())
    report.hits.sort(key=lambda h: h.key)


# ---------------------------------------------------------------------------------------- CLI


def add_match_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `match --rules DIR --input PATH... [--json]`."""
    p = subparsers.add_parser(
        "match",
        help="evaluate Sigma rules over log files (EVTX, JSON lines, text) without a running stack",
        description=(
            "Read EVTX files, JSON/JSON-lines exports and plain log files (folders searched "
            "recursively), parse them as socmon does, evaluate the given Sigma rules and print "
            "the matches. A summary goes to stderr. Exit status 1 when an input could not be "
            "read (every match found is still printed)."
        ),
    )
    add_match_arguments(p)
    p.set_defaults(func=cmd_match)


def add_match_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules",
        action="append",
        type=Path,
        required=True,
        metavar="PATH",
        help="Sigma rule file or folder (searched recursively); repeatable",
    )
    p.add_argument(
        "--input",
        action="extend",
        nargs="+",
        type=Path,
        required=True,
        metavar="PATH",
        help="log file or folder (searched recursively); repeatable",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per match and line")
    p.add_argument("--level", choices=LEVELS, help="only rules of this level or higher")
    p.add_argument(
        "--rule-id", action="append", default=[], metavar="ID", help="only this rule; repeatable"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: one per core)",
    )
    p.add_argument(
        "--split",
        choices=("auto", "rules", "events"),
        default="auto",
        help="share the rules or the events among the workers (default: from the sizes)",
    )


def cmd_match(args: argparse.Namespace) -> int:
    from detections.sigma.loader import rule_files

    rule_paths = tuple(args.rules)
    if not rule_files(list(rule_paths)) or all(not p.exists() for p in rule_paths):
        print("socmon match: error: no Sigma rule file found in --rules", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1:
        print("socmon match: error: --workers must be at least 1", file=sys.stderr)
        return 2
    options = MatchOptions(rule_paths, args.level, frozenset(args.rule_id))
    report = run_match(args.input, options, workers=args.workers, split=args.split)
    try:
        write_hits(report.hits, sys.stdout, as_json=args.json)
    except BrokenPipeError:  # `socmon match ... | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print_summary(report, sys.stderr)
        return 1
    print_summary(report, sys.stderr)
    return 0 if report.ok else 1


def write_hits(hits: Sequence[Hit], out: IO[str], *, as_json: bool) -> None:
    """The matches: one JSON object per line, or the human table."""
    if as_json:
        buffer = getattr(out, "buffer", None)
        for hit in hits:
            line = orjson.dumps(hit.doc, default=str) + b"\n"
            if buffer is not None:
                buffer.write(line)
            else:
                out.write(line.decode())
        if buffer is not None:
            buffer.flush()
    elif hits:
        out.write("\n".join(format_table(hits)) + "\n")
    out.flush()


def print_summary(report: MatchReport, stream: IO[str]) -> None:
    """Every problem (one line each), then the counts."""
    p = "socmon match:"
    rules = report.rules
    for error in rules.errors:
        line = f" line {error.line}" if error.line else ""
        print(f"{p} rule not loaded {error.path}{line}: {error.reason}", file=stream)
    for rule_id, path, reason in rules.unsupported:
        print(f"{p} rule unsupported {rule_id} ({path}): {reason}", file=stream)
    for rule_id, path, reason in rules.partial:
        print(f"{p} rule partly supported {rule_id} ({path}): {reason}", file=stream)
    for corr_path in rules.correlations:
        print(f"{p} correlation rule not evaluated (single events only): {corr_path}", file=stream)
    for name, reason in report.skipped:
        print(f"{p} skipped {name}: {reason}", file=stream)
    for name, reason in report.failures:
        print(f"{p} cannot read {name}: {reason}", file=stream)
    filtered = rules.loaded - len(rules.unsupported) - rules.selected
    print(
        f"{p} rules: {rules.files} files, {rules.loaded} loaded, {rules.selected} evaluated"
        + (f" ({filtered} left out by --level/--rule-id)" if filtered else "")
        + f", {len(rules.unsupported)} unsupported"
        + (f", {len(rules.partial)} routes left out" if rules.partial else "")
        + f", {len(rules.errors)} errors"
        + (f", {len(rules.correlations)} correlations not evaluated" if rules.correlations else ""),
        file=stream,
    )
    failed = len({path for path, _ in report.failures})
    print(
        f"{p} inputs: {report.files} files read, {failed} failed, {len(report.skipped)} skipped; "
        f"{report.events} events, {report.parse_failures} parse failures, "
        f"{report.bad_records} unreadable records; {len(report.hits)} matches "
        f"({report.workers} worker{'s' if report.workers > 1 else ''}, split by {report.mode}, "
        f"{report.seconds:.1f} s)",
        file=stream,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m detections.match ...`: the same command without the rest of the CLI."""
    parser = argparse.ArgumentParser(
        prog="socmon match", description="Offline triage of log files with Sigma rules."
    )
    add_match_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_match(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
