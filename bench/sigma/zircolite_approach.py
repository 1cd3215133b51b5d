"""The peer for `bench/sigma`: Sigma rules run the way Zircolite runs them.

    .venv/bin/python bench/sigma/zircolite_approach.py [--rules DIR] [--evtx DIR] [--replay N]
        [--quick] [--json-out FILE] [--save-ruleset FILE | --ruleset FILE]

What Zircolite does, step by step, and what this module does for each:

1. Rules. Zircolite runs SigmaHQ rules converted to SQL by pySigma's SQLite backend
   (`pysigma-backend-sqlite`, "zircolite" output format). Its default ruleset
   (`rules_windows_merged.json`, built by Zircolite-Rules-v2) is every Windows rule converted
   twice - with `sysmon_pipeline() + windows_logsource_pipeline()` (the "sysmon" profile) and
   with `windows_audit_pipeline() + windows_logsource_pipeline()` (the "generic" profile), each
   plus a three-name field mapping (`EventXML.Address` -> `Address`, `EventXML.Param3` ->
   `Param3`, `New Value` -> `NewValue`) - keeping a rule only for a profile whose logsource
   mapping applies to it (or when it names `Channel` itself, or has no category/service), and
   merging both profiles, deduplicated on (rule id, SQL). The same is done here, from the
   YAML, and timed: that conversion is this approach's start-up. (Zircolite itself ships the
   converted JSON; `--ruleset FILE` runs from such a file and the figure without conversion is
   reported too.)
2. Events. Zircolite reads each EVTX record as JSON (`evtx_dump`: the same Rust `evtx` library
   as the `evtx` Python package used here) and flattens it (`zircolite/flattener.py`): every
   leaf becomes one column named by its `fieldMappings` entry, else by the last path component
   with everything but letters and digits removed (`Event.EventData.CommandLine` ->
   `CommandLine`, `Event.System.Provider.#attributes.Name` -> `Provider_Name`,
   `Event.System.EventID.#text` -> `EventID`, `Event.EventData.Data.#text` -> `Message`);
   paths containing `xmlns` are dropped, as are null and empty values; lists become their
   Python text; booleans become `'true'`/`'false'`; `Hashes`, `Hash` and
   `ConfigurationFileHash` are also split into one column per algorithm (`SHA256`, `IMPHASH`,
   …); `OriginalLogfile` holds the file name. (Its Windows transforms are disabled by default
   and are not run.)
3. Database. One in-memory SQLite table `logs` (`row_id INTEGER PRIMARY KEY AUTOINCREMENT`,
   one column per field, `TEXT COLLATE NOCASE`, or `INTEGER`/`NUMERIC COLLATE NOCASE` by the
   first value seen), the PRAGMAs Zircolite sets for memory databases, rows inserted with
   `executemany` in batches of 5,000 in one transaction, an index on `eventid`, and a Python
   `regexp(pattern, value)` function (`re.search`) for the backend's `REGEXP`.
4. Queries. Columns a rule needs but no event has are added as NULL (the backend's
   `required_fields`, as its `runtime.ensure_fields` does), then every query of every rule is
   run with `SELECT *` and its rows fetched as dicts without NULLs, as Zircolite's
   `execute_rule` does. Zircolite's Channel/EventID pre-filter is applied when it would be
   enabled: only when every rule names both channels and event ids (with all SigmaHQ rules
   some name neither, and Zircolite then disables it).

A match is (rule id, EVTX file, record number): the record number is the one in the EVTX
record header (unique in a file), kept per row outside the table.

pySigma 1.x: `pysigma-backend-sqlite` 2.1 needs pySigma 2; 2.0.0 is the newest release that
works with socmon's pySigma 1.5 (same "zircolite" format, schema version 2).
"""

from __future__ import annotations

import argparse
import re
import resource
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import evtx
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sigma.backends.sqlite import sqliteBackend  # noqa: E402
from sigma.collection import SigmaCollection  # noqa: E402
from sigma.pipelines.sysmon import sysmon_pipeline  # noqa: E402
from sigma.pipelines.windows import (  # noqa: E402
    windows_audit_pipeline,
    windows_logsource_pipeline,
)
from sigma.processing.conditions import LogsourceCondition  # noqa: E402
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline  # noqa: E402
from sigma.processing.transformations import FieldMappingTransformation  # noqa: E402
from sigma.rule import SigmaRule  # noqa: E402

from socmon.corpus import corpus_dir  # noqa: E402

PROFILES = ("sysmon", "generic")

# fieldMappings entries whose column name is not the last path component stripped to
# letters and digits (the others need no entry: the default gives the same name).
FIELD_MAPPINGS: dict[str, str] = {
    "Event.System.Provider.#attributes.Name": "Provider_Name",
    "Event.System.EventID.#text": "EventID",
    "Event.EventData.Data.#text": "Message",
    "Event.EventData.TargetFilename": "TargetFileName",
    "Event.EventData.SamAccountName": "SAMAccountName",
}
FIELD_EXCLUSIONS = ("xmlns",)
SPLIT_FIELDS: dict[str, tuple[str, str]] = {
    "Hash": (",", "="),
    "Hashes": (",", "="),
    "ConfigurationFileHash": (",", "="),
}
INSERT_BATCH = 5000
_SQLITE_INT = 1 << 63


# ---------------------------------------------------------------------------------------------
# Corpus


def default_rules() -> Path:
    base = corpus_dir()
    if base is None:
        raise SystemExit("corpus not found: set SOCMON_CORPUS")
    return base / "sigma" / "rules" / "windows"


def default_evtx() -> Path:
    base = corpus_dir()
    if base is None:
        raise SystemExit("corpus not found: set SOCMON_CORPUS")
    return base / "evtx"


def evtx_files(paths: Sequence[Path]) -> list[Path]:
    """`*.evtx` files under the paths (recursively), sorted; files named directly are taken."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() == ".evtx"))
        else:
            found.append(path)
    return found


def rule_files(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml")))
        else:
            found.append(path)
    return found


def quick_subset(files: list[Path], n: int) -> list[Path]:
    """Every k-th file, `n` in all: a spread over the folders for --quick runs."""
    if len(files) <= n:
        return files
    step = len(files) / n
    return [files[int(i * step)] for i in range(n)]


def read_records(files: Iterable[Path]) -> Iterator[tuple[Path, int, str]]:
    """(file, record number, JSON text) for every record the `evtx` reader decodes."""
    for path in files:
        try:
            records = evtx.PyEvtxParser(str(path), indent=False).records_json()
        except (OSError, RuntimeError, ValueError):
            continue
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except (OSError, RuntimeError, ValueError):
                continue
            if record is not None:
                yield path, int(record["event_record_id"]), str(record["data"])


# ---------------------------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class PeerRule:
    """One converted rule of one profile: its SQL and what Zircolite reads from the entry."""

    id: str
    title: str
    path: str
    profile: str
    sql: tuple[str, ...]
    channels: tuple[str, ...]
    eventids: tuple[int, ...]
    required_fields: tuple[str, ...]


@dataclass
class Conversion:
    rules: list[PeerRule] = field(default_factory=list)
    files: int = 0
    sigma_rules: int = 0
    """detection rules read (correlations and rules that failed to load are not counted)"""
    not_applicable: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    """(path, profile, error) for rules that did not load or convert"""
    seconds: float = 0.0

    @property
    def rule_ids(self) -> set[str]:
        return {r.id for r in self.rules}


def pipeline_for(profile: str) -> ProcessingPipeline:
    fields = ProcessingPipeline(
        items=[
            ProcessingItem(
                FieldMappingTransformation(
                    {
                        "EventXML.Address": "Address",
                        "EventXML.Param3": "Param3",
                        "New Value": "NewValue",
                    }
                ),
                identifier="zircolite_windows_fields",
            )
        ]
    )
    if profile == "sysmon":
        return sysmon_pipeline() + windows_logsource_pipeline() + fields
    if profile == "generic":
        return windows_audit_pipeline() + windows_logsource_pipeline() + fields
    raise ValueError(f"unknown profile {profile}")


def _detection_fields(item: Any) -> Iterator[str]:
    if getattr(item, "field", None):
        yield item.field
    for child in getattr(item, "detection_items", []):
        yield from _detection_fields(child)


def _applicable(rule: SigmaRule, conditions: Sequence[LogsourceCondition]) -> bool:
    """Zircolite-Rules-v2's profile selection for Windows rules."""
    if rule.logsource.product != "windows":
        return False
    if any("Channel" in set(_detection_fields(d)) for d in rule.detection.detections.values()):
        return True
    if rule.logsource.category is None and rule.logsource.service is None:
        return True
    return any(c.match(rule) for c in conditions)


def _load_documents(paths: Sequence[Path]) -> list[tuple[Path, list[dict[str, Any]]]]:
    out = []
    for path in paths:
        try:
            docs = [
                d
                for d in yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
                if isinstance(d, dict)
            ]
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if docs:
            out.append((path, docs))
    return out


def convert_rules(paths: Sequence[Path]) -> Conversion:
    """Every Windows rule under `paths` converted with both profiles, merged as Zircolite does."""
    started = time.perf_counter()
    report = Conversion()
    files = rule_files(paths)
    report.files = len(files)
    documents = _load_documents(files)
    found: dict[tuple[str, tuple[str, ...]], PeerRule] = {}
    for profile in PROFILES:
        backend = sqliteBackend(pipeline_for(profile))
        backend.init_processing_pipeline("zircolite")
        conditions = [
            c
            for item in pipeline_for(profile).items
            for c in item.rule_conditions
            if isinstance(c, LogsourceCondition)
        ]
        skipped = 0
        for path, docs in documents:
            # pySigma's pipelines change the rule they convert: each profile parses its own.
            try:
                collection = SigmaCollection.from_dicts(
                    docs, collect_errors=True, resolve_references=False
                )
            except Exception as e:  # pySigma raises plain errors on malformed rules too
                report.failures.append((str(path), profile, f"load: {e}"))
                continue
            for rule in collection.rules:
                if not isinstance(rule, SigmaRule):
                    continue  # correlation rules: not single-event detections
                if profile == PROFILES[0]:
                    report.sigma_rules += 1
                if rule.errors:
                    report.failures.append((str(path), profile, f"load: {rule.errors[0]}"))
                    continue
                if rule.status is not None and rule.status.name.lower() in {
                    "deprecated",
                    "unsupported",
                }:
                    continue
                if not _applicable(rule, conditions):
                    skipped += 1
                    continue
                try:
                    entries = backend.convert_rule(rule, "zircolite")
                except Exception as e:  # the backend raises many error types
                    report.failures.append((str(path), profile, str(e)[:200]))
                    continue
                for entry in entries:
                    sql = tuple(entry["rule"])
                    key = (str(entry["id"]) or str(path), sql)
                    found.setdefault(
                        key,
                        PeerRule(
                            id=key[0],
                            title=entry["title"],
                            path=str(path),
                            profile=profile,
                            sql=sql,
                            channels=tuple(str(c) for c in entry.get("channel", [])),
                            eventids=tuple(
                                int(e) for e in entry.get("eventid", []) if str(e).isdigit()
                            ),
                            required_fields=tuple(entry.get("required_fields", [])),
                        ),
                    )
        report.not_applicable[profile] = skipped
    report.rules = list(found.values())
    report.seconds = time.perf_counter() - started
    return report


def save_ruleset(rules: Sequence[PeerRule], path: Path) -> None:
    path.write_bytes(orjson.dumps([r.__dict__ for r in rules]))


def load_ruleset(path: Path) -> list[PeerRule]:
    return [
        PeerRule(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
        for d in orjson.loads(path.read_bytes())
    ]


# ---------------------------------------------------------------------------------------------
# Flattening


class Flattener:
    """Zircolite's JSON flattening: one flat dict per event, and the column types seen."""

    def __init__(self) -> None:
        self.columns: dict[str, str] = {}
        """lower-case name -> the spelling first seen (SQLite names are case-insensitive)"""
        self.types: dict[str, str] = {}
        self._names: dict[tuple[str, str], str | None] = {}

    def _name(self, path: str, last: str) -> str | None:
        key = (path, last)
        name = self._names.get(key, "")
        if name == "":
            if any(x in path for x in FIELD_EXCLUSIONS):
                name = None
            else:
                name = FIELD_MAPPINGS.get(path) or "".join(c for c in last if c.isalnum())
            self._names[key] = name
        return name

    def _set(self, row: dict[str, Any], name: str, value: Any) -> None:
        lower = name.lower()
        canonical = self.columns.get(lower)
        if canonical is None:
            canonical = self.columns[lower] = name
            self.types[name] = (
                "INTEGER COLLATE NOCASE"
                if isinstance(value, int)
                else "NUMERIC COLLATE NOCASE"
                if isinstance(value, float)
                else "TEXT COLLATE NOCASE"
            )
        row[canonical] = value

    def flatten(self, event: dict[str, Any], filename: str) -> dict[str, Any]:
        event["OriginalLogfile"] = filename
        row: dict[str, Any] = {}
        stack: list[tuple[dict[str, Any], str]] = [(event, "")]
        while stack:
            obj, prefix = stack.pop()
            for k, v in obj.items():
                path = f"{prefix}.{k}" if prefix else k
                if isinstance(v, dict):
                    stack.append((v, path))
                    continue
                name = self._name(path, k)
                if name is None:
                    continue
                if isinstance(v, list):
                    v = str(v)
                elif v is True or v is False:
                    v = "true" if v else "false"
                elif isinstance(v, int) and not -_SQLITE_INT <= v < _SQLITE_INT:
                    v = float(v)
                if v is None or v == "":
                    continue
                split = SPLIT_FIELDS.get(name)
                if split is not None and isinstance(v, str):
                    sep, eq = split
                    for pair in v.split(sep):
                        hk, found, hv = pair.partition(eq)
                        if found:
                            self._set(row, hk, hv)
                self._set(row, name, v)
        return row


# ---------------------------------------------------------------------------------------------
# Database and queries


def _regexp(pattern: str, value: Any) -> int:
    if value is None:
        return 0
    return 1 if re.search(pattern, value if isinstance(value, str) else str(value)) else 0


def connect() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    for pragma, value in (
        ("journal_mode", "OFF"),
        ("synchronous", "OFF"),
        ("cache_size", "-128000"),
        ("locking_mode", "EXCLUSIVE"),
        ("temp_store", "MEMORY"),
        ("mmap_size", "268435456"),
        ("page_size", "4096"),
        ("threads", "4"),
    ):
        conn.execute(f"PRAGMA {pragma} = {value};")
    conn.row_factory = sqlite3.Row
    conn.create_function("regexp", 2, _regexp)
    return conn


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def load_table(
    conn: sqlite3.Connection, rows: Sequence[dict[str, Any]], types: dict[str, str]
) -> None:
    """Create `logs` with every column seen and insert the rows (row_id = position + 1)."""
    columns = sorted(types)
    defs = ", ".join(f"{_quote(c)} {types[c]}" for c in columns)
    conn.execute(
        "CREATE TABLE logs ( row_id INTEGER PRIMARY KEY AUTOINCREMENT"
        + (f", {defs}" if defs else "")
        + " );"
    )
    insert = (
        f"INSERT INTO logs ({', '.join(map(_quote, columns))}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    conn.execute("BEGIN TRANSACTION")
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        get = row.get
        batch.append(tuple(get(c) for c in columns))
        if len(batch) >= INSERT_BATCH:
            conn.executemany(insert, batch)
            batch.clear()
    if batch:
        conn.executemany(insert, batch)
    conn.execute("COMMIT")
    if "eventid" in {c.lower() for c in columns}:
        conn.execute('CREATE INDEX "idx_eventid" ON "logs" ("eventid");')


def ensure_fields(conn: sqlite3.Connection, rules: Sequence[PeerRule]) -> int:
    """Add the columns rules need but no event has, as NULL; returns how many."""
    existing = {d[0].lower() for d in conn.execute("SELECT * FROM logs LIMIT 0").description}
    added = 0
    for rule in rules:
        for name in rule.required_fields:
            if name.lower() not in existing and name.lower() != "rowid":
                conn.execute(f"ALTER TABLE logs ADD COLUMN {_quote(name)} TEXT COLLATE NOCASE")
                existing.add(name.lower())
                added += 1
    return added


def event_filter(rules: Sequence[PeerRule]) -> tuple[frozenset[str], frozenset[int]] | None:
    """Zircolite's Channel/EventID pre-filter, or None when it would be disabled."""
    if not rules or any(not r.channels or not r.eventids for r in rules):
        return None
    return (
        frozenset(c.lower() for r in rules for c in r.channels),
        frozenset(e for r in rules for e in r.eventids),
    )


def _keep(event: dict[str, Any], allowed: tuple[frozenset[str], frozenset[int]]) -> bool:
    system = event.get("Event", {}).get("System", {})
    channel = system.get("Channel")
    eid = system.get("EventID")
    if isinstance(eid, dict):
        eid = eid.get("#text")
    try:
        eid = int(eid) if eid is not None else None
    except (TypeError, ValueError):
        eid = None
    if channel is None or eid is None:
        return True
    return str(channel).lower() in allowed[0] and eid in allowed[1]


def run_queries(
    conn: sqlite3.Connection, rules: Sequence[PeerRule]
) -> tuple[dict[str, set[int]], list[tuple[str, str]]]:
    """rule id -> row ids it matched, and (rule id, error) for queries SQLite rejected."""
    matched: dict[str, set[int]] = {}
    errors: list[tuple[str, str]] = []
    cursor = conn.cursor()
    for rule in rules:
        for sql in rule.sql:
            try:
                cursor.execute(sql)
                rows = cursor.fetchall()
            except sqlite3.Error as e:
                errors.append((rule.id, str(e)))
                continue
            if not rows:
                continue
            keys = rows[0].keys()
            # As Zircolite's execute_rule: each row becomes a dict without its NULL columns.
            found = [
                {k: v for k, v in zip(keys, row, strict=True) if v is not None} for row in rows
            ]
            matched.setdefault(rule.id, set()).update(r["row_id"] for r in found)
    return matched, errors


# ---------------------------------------------------------------------------------------------
# One run


@dataclass
class PeerResult:
    events: int = 0
    events_loaded: int = 0
    rules_converted: int = 0
    rule_ids: int = 0
    columns: int = 0
    convert_s: float = 0.0
    convert_cpu_s: float = 0.0
    read_flatten_s: float = 0.0
    load_s: float = 0.0
    query_s: float = 0.0
    total_s: float = 0.0
    peak_rss_mb: float = 0.0
    prefilter: bool = False
    query_errors: int = 0
    conversion_failures: int = 0
    matches: list[tuple[str, str, int]] = field(default_factory=list)
    """(rule id, EVTX file, record number), one per distinct match"""
    matched_events: list[list[Any]] = field(default_factory=list)
    """[EVTX file, record number, "Channel EventID"] of each matched event"""
    match_rows: int = 0
    """matched rows counted with replay copies"""


def run(
    rule_paths: Sequence[Path],
    files: Sequence[Path],
    *,
    replay: int = 1,
    ruleset: Path | None = None,
    save: Path | None = None,
) -> PeerResult:
    """Convert (or read) the rules, flatten and load the events (`replay` times), query."""
    started = time.perf_counter()
    started_cpu = time.process_time()
    result = PeerResult()
    if ruleset is not None:
        rules = load_ruleset(ruleset)
    else:
        conversion = convert_rules(rule_paths)
        rules = conversion.rules
        result.conversion_failures = len(conversion.failures)
        if save is not None:
            save_ruleset(rules, save)
    result.convert_s = time.perf_counter() - started
    result.convert_cpu_s = time.process_time() - started_cpu
    result.rules_converted = len(rules)
    result.rule_ids = len({r.id for r in rules})

    t = time.perf_counter()
    allowed = event_filter(rules)
    result.prefilter = allowed is not None
    flattener = Flattener()
    rows: list[dict[str, Any]] = []
    origin: list[tuple[str, int, Any, Any]] = []
    for _ in range(replay):
        for path, number, data in read_records(files):
            result.events += 1
            event = orjson.loads(data)
            if allowed is not None and not _keep(event, allowed):
                continue
            row = flattener.flatten(event, path.name)
            rows.append(row)
            origin.append((str(path), number, row.get("Channel"), row.get("EventID")))
    result.events_loaded = len(rows)
    result.read_flatten_s = time.perf_counter() - t

    t = time.perf_counter()
    conn = connect()
    load_table(conn, rows, flattener.types)
    del rows
    ensure_fields(conn, rules)
    result.columns = len(conn.execute("SELECT * FROM logs LIMIT 0").description)
    result.load_s = time.perf_counter() - t

    t = time.perf_counter()
    matched, errors = run_queries(conn, rules)
    result.query_s = time.perf_counter() - t
    result.query_errors = len(errors)
    conn.close()

    keys: set[tuple[str, str, int]] = set()
    described: dict[tuple[str, int], str] = {}
    for rule_id, row_ids in matched.items():
        result.match_rows += len(row_ids)
        for row_id in row_ids:
            file, number, channel, eid = origin[row_id - 1]
            keys.add((rule_id, file, number))
            described[file, number] = f"{channel} {eid}"
    result.matches = sorted(keys)
    result.matched_events = [[f, n, d] for (f, n), d in sorted(described.items())]
    result.total_s = time.perf_counter() - started
    result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rules", type=Path, action="append", help="rule folder or file")
    parser.add_argument("--evtx", type=Path, action="append", help="EVTX folder or file")
    parser.add_argument("--replay", type=int, default=1, help="load the events N times")
    parser.add_argument("--quick", action="store_true", help="a subset of rules and files")
    parser.add_argument("--ruleset", type=Path, help="run a ruleset saved by --save-ruleset")
    parser.add_argument("--save-ruleset", type=Path, help="save the converted rules (JSON)")
    parser.add_argument("--json-out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)

    rule_paths = args.rules or [default_rules()]
    files = evtx_files(args.evtx or [default_evtx()])
    if args.quick:
        rule_paths = quick_subset(rule_files(rule_paths), 150)
        files = quick_subset(files, 40)
    result = run(
        rule_paths, files, replay=args.replay, ruleset=args.ruleset, save=args.save_ruleset
    )
    summary = {k: v for k, v in result.__dict__.items() if k not in ("matches", "matched_events")}
    if args.json_out is not None:
        args.json_out.write_bytes(orjson.dumps(result.__dict__))
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
