"""ECS conformance harness: the method of `ecs-conformance/README.md`, for any vendor directory.

For each input with an `-expected.json`, feed record *i* to the vendor's parser (configured from
`test-common-config.yml` + the test's `-config.yml`) and compare the README's field list with
`expected[i]`: only fields the expected document has, minus `dynamic_fields`; `@timestamp` as an
instant at millisecond precision (month, day and time only for year-less records); IPs
normalised; numbers as numbers; `event.category` / `event.type` as sets. Expected documents that
record a pipeline failure are scored separately (the parser must only not crash), as are inputs
without an expected file (robustness: no exception other than `ParseError`).

The harness is independent of the code under test: it only calls the parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from ipaddress import IPv6Address, ip_address
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
import yaml

from collectors.parsing import ParseError, SourceContext
from socmon.corpus import corpus_dir

Parser = Callable[[str, SourceContext], dict[str, Any]]

CORPUS_SUBDIR = "ecs-conformance"

# README step 4, in its order.
COMPARED_FIELDS: tuple[str, ...] = (
    "@timestamp",
    "event.action",
    "event.category",
    "event.type",
    "event.outcome",
    "event.kind",
    "source.ip",
    "source.port",
    "destination.ip",
    "destination.port",
    "source.nat.ip",
    "source.nat.port",
    "destination.nat.ip",
    "destination.nat.port",
    "network.transport",
    "network.direction",
    "user.name",
    "source.user.name",
    "observer.vendor",
    "observer.product",
    "observer.name",
    "observer.ingress.zone",
    "observer.egress.zone",
    "rule.name",
    "rule.id",
    "rule.category",
    "source.bytes",
    "destination.bytes",
    "network.bytes",
    "source.packets",
    "destination.packets",
    "network.packets",
    "process.name",
    "process.pid",
    "group.name",
    "user.target.name",
)
IP_FIELDS = frozenset({"source.ip", "destination.ip", "source.nat.ip", "destination.nat.ip"})
SET_FIELDS = frozenset({"event.category", "event.type"})
OBSERVER_NAME_FIELDS = frozenset({"observer.vendor", "observer.product"})

_MISSING = object()


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class TestConfig:
    """The settings of a test's config files that change parsing results (README step 2)."""

    __test__ = False  # not a pytest test class

    tz: tzinfo | None = None
    internal_networks: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    dynamic_fields: frozenset[str] = frozenset()
    notes: tuple[str, ...] = ()

    def context(self) -> SourceContext:
        """The `SourceContext` a parser gets for this test."""
        if self.internal_networks is None:
            return SourceContext(tz=self.tz, extra=dict(self.extra))
        return SourceContext(
            tz=self.tz, internal_networks=self.internal_networks, extra=dict(self.extra)
        )


@dataclass(frozen=True)
class Case:
    """One input file: its records, the expected documents (None: robustness input only)."""

    file: str
    records: tuple[str, ...]
    expected: tuple[dict[str, Any], ...] | None
    config: TestConfig


@dataclass(frozen=True)
class Mismatch:
    file: str
    record: int  # 1-based
    field: str
    expected: Any
    actual: Any


@dataclass(frozen=True)
class Failure:
    """A record on which the parser raised: `ParseError` (a refusal) or anything else (a crash)."""

    file: str
    record: int
    error: str


@dataclass
class VendorResult:
    vendor: str
    files: list[str] = field(default_factory=list)
    records: int = 0
    documents_compared: int = 0
    documents_fully_matching: int = 0
    values_compared: int = 0
    values_matched: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    pipeline_failure_records: list[tuple[str, int]] = field(default_factory=list)
    robustness_records: int = 0
    parse_errors: list[Failure] = field(default_factory=list)
    crashes: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def field_agreement(self) -> float:
        """Matching field values / field values compared, in percent (100 when none)."""
        if not self.values_compared:
            return 100.0
        return 100.0 * self.values_matched / self.values_compared

    @property
    def fully_matching_share(self) -> float:
        """Documents whose compared fields all match / documents compared, in percent."""
        if not self.documents_compared:
            return 100.0
        return 100.0 * self.documents_fully_matching / self.documents_compared


# --------------------------------------------------------------------------- locating


def vendor_path(vendor: str) -> Path | None:
    """`<corpus>/ecs-conformance/<vendor>`, or None when the corpus or the directory is absent."""
    base = corpus_dir()
    if base is None:
        return None
    path = base / CORPUS_SUBDIR / vendor
    return path if path.is_dir() else None


def vendor_path_or_skip(vendor: str) -> Path:
    """The vendor directory, or skip the calling test with the reason it is missing."""
    base = corpus_dir()
    if base is None:
        pytest.skip(
            "ECS conformance corpus not found: set SOCMON_CORPUS or place shared/corpus "
            "beside the repository"
        )
    path = base / CORPUS_SUBDIR / vendor
    if not path.is_dir():
        pytest.skip(f"ECS conformance corpus has no directory {CORPUS_SUBDIR}/{vendor} ({path})")
    return path


# --------------------------------------------------------------------------- reading


def read_records(path: Path) -> list[str]:
    """README step 1: `.log` split on "\\n" (final empty string dropped, nothing trimmed);
    `.json` inputs: `events[i].message`."""
    if path.suffix == ".json":
        events = json.loads(path.read_text(encoding="utf-8"))["events"]
        return [event["message"] for event in events]
    records = path.read_bytes().decode("utf-8").split("\n")
    if records and records[-1] == "":
        records.pop()
    return records


_AT_KEY_RE = re.compile(r"^(\s*)(@[^\s:\"']+)\s*:", re.MULTILINE)


def load_yaml_config(path: Path) -> dict[str, Any]:
    """A test config file; keys starting with `@` are quoted first when the file is otherwise
    not valid YAML (`@` is a reserved indicator; upstream's loader is lenient)."""
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = yaml.safe_load(_AT_KEY_RE.sub(r'\1"\2":', text))
    return data if isinstance(data, dict) else {}


def _lookup(node: Any, path: str) -> Any:
    """Value at dotted `path` in `node`, where any prefix of the path may itself be a dotted
    key (`_tmp.tz_offset` as one key or as `_tmp: {tz_offset: ...}`)."""
    if not path:
        return node
    if not isinstance(node, Mapping):
        return _MISSING
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in node:
            found = _lookup(node[key], ".".join(parts[i:]))
            if found is not _MISSING:
                return found
    return _MISSING


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


_OFFSET_RE = re.compile(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?")


def tz_from_config(value: Any) -> tzinfo | None:
    """A config's time zone: "UTC", "+0500", "-05:00", "GMT-0200" (= -02:00, as Java reads it),
    an IANA name, or an int - PyYAML reads an unquoted `-04:00` as the base-60 integer -240,
    i.e. minutes."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return timezone(timedelta(minutes=value))
    text = str(value).strip()
    if text.upper() in {"UTC", "Z", "GMT", "UT"}:
        return UTC
    match = _OFFSET_RE.fullmatch(text)
    if match is not None:
        sign, hours, minutes = match.groups()
        total = int(hours) * 60 + int(minutes or 0)
        return timezone(timedelta(minutes=-total if sign == "-" else total))
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def read_config(*paths: Path) -> TestConfig:
    """Merge the given config files (later ones add to earlier ones) into a `TestConfig`."""
    fields: dict[str, Any] = {}
    dynamic: set[str] = set()
    notes: list[str] = []
    for path in paths:
        if not path.is_file():
            continue
        data = load_yaml_config(path)
        if isinstance(data.get("fields"), Mapping):
            fields = _merge(fields, data["fields"])
        if isinstance(data.get("dynamic_fields"), Mapping):
            dynamic.update(str(key) for key in data["dynamic_fields"])
    tz: tzinfo | None = None
    for key in ("_conf.tz_offset", "_tmp.tz_offset", "event.timezone"):
        value = _lookup(fields, key)
        if value is not _MISSING:
            tz = tz_from_config(value)
            if tz is None:
                notes.append(f"time zone {value!r} ({key}) not understood; parser gets none")
            break
    networks: tuple[str, ...] | None = None
    for key in ("_temp.internal_networks", "_tmp.internal_networks"):
        value = _lookup(fields, key)
        if value is not _MISSING:
            items = value if isinstance(value, list) else [value]
            networks = tuple(str(item) for item in items)
            break
    extra: dict[str, Any] = {}
    mappings = _lookup(fields, "_conf.mappings")
    if mappings is not _MISSING:
        extra["mappings"] = mappings
    default = _lookup(fields, "_conf.default")
    if default is not _MISSING:
        extra["default"] = default
    return TestConfig(
        tz=tz,
        internal_networks=networks,
        extra=extra,
        dynamic_fields=frozenset(dynamic),
        notes=tuple(notes),
    )


def _is_input(path: Path) -> bool:
    name = path.name
    return (
        path.is_file()
        and path.suffix in (".log", ".json")
        and not name.endswith("-expected.json")
        and not name.endswith("-config.yml")
    )


def load_cases(directory: Path) -> list[Case]:
    """Every input file of a vendor directory with its expected documents and config."""
    common = directory / "test-common-config.yml"
    cases = []
    for path in sorted(p for p in directory.iterdir() if _is_input(p)):
        expected_path = directory / f"{path.name}-expected.json"
        expected = None
        if expected_path.is_file():
            data = json.loads(expected_path.read_text(encoding="utf-8"))
            expected = tuple(data["expected"])
        config = read_config(common, directory / f"{path.name}-config.yml")
        cases.append(Case(path.name, tuple(read_records(path)), expected, config))
    return cases


# --------------------------------------------------------------------------- comparing


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects to dotted names; lists and scalars are values."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
    elif isinstance(value, str):
        text = value.strip()
        text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


_LONG_DIGITS_RE = re.compile(r"\d{10,}")


def is_yearless(record: str, expected_timestamp: Any) -> bool:
    """Whether a record carries no year for its timestamp: the expected year does not occur in
    it, and neither does an epoch-like run of 10+ digits."""
    moment = _instant(expected_timestamp)
    if moment is None:
        return False
    years = {str(moment.year)}
    if isinstance(expected_timestamp, str) and expected_timestamp[:4].isdigit():
        years.add(expected_timestamp[:4])
    return not any(year in record for year in years) and not _LONG_DIGITS_RE.search(record)


def _normal_ip(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        address = ip_address(value.strip())
    except ValueError:
        return value
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")


def _number(value: Any) -> float | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMBER_RE.fullmatch(value.strip()):
        text = value.strip()
        return float(text) if "." in text else int(text)
    return None


def _scalar_equal(expected: Any, actual: Any) -> bool:
    expected_number, actual_number = _number(expected), _number(actual)
    if expected_number is not None and actual_number is not None:
        return bool(expected_number == actual_number)
    return bool(expected == actual)


def _as_set(value: Any) -> set[Any]:
    return set(value) if isinstance(value, list) else {value}


def values_equal(field_name: str, expected: Any, actual: Any, *, yearless: bool = False) -> bool:
    """README step 4 equality for one field."""
    if actual is _MISSING or actual is None:
        return False
    if field_name == "@timestamp":
        want, got = _instant(expected), _instant(actual)
        if want is None or got is None:
            return bool(expected == actual)
        if yearless:
            return (want.month, want.day, want.time()) == (got.month, got.day, got.time())
        return want == got
    if field_name in SET_FIELDS:
        return _as_set(expected) == _as_set(actual)
    if field_name in IP_FIELDS:
        expected, actual = _normal_ip(expected), _normal_ip(actual)
    if isinstance(expected, list) or isinstance(actual, list):
        want_list = expected if isinstance(expected, list) else [expected]
        got_list = actual if isinstance(actual, list) else [actual]
        return len(want_list) == len(got_list) and all(
            _scalar_equal(w, g) for w, g in zip(want_list, got_list, strict=True)
        )
    return _scalar_equal(expected, actual)


def compare_document(
    expected: Mapping[str, Any],
    actual: Mapping[str, Any] | None,
    *,
    record: str,
    dynamic_fields: Iterable[str] = (),
    observer_names: Mapping[str, str] | None = None,
) -> list[tuple[str, Any, Any, bool]]:
    """(field, expected, actual, equal) for every compared field the expected document has."""
    dynamic = frozenset(dynamic_fields)
    want = flatten(expected)
    got = flatten(actual) if actual is not None else {}
    rows = []
    for name in COMPARED_FIELDS:
        if name in dynamic or name not in want:
            continue
        value = got.get(name, _MISSING)
        if name in OBSERVER_NAME_FIELDS and observer_names and isinstance(value, str):
            value = observer_names.get(value, value)
        yearless = name == "@timestamp" and is_yearless(record, want[name])
        equal = values_equal(name, want[name], value, yearless=yearless)
        rows.append((name, want[name], None if value is _MISSING else value, equal))
    return rows


def is_pipeline_failure(expected: Mapping[str, Any]) -> bool:
    """An expected document that records an ingest-pipeline failure."""
    flat = flatten(expected)
    return "error.message" in flat or flat.get("event.kind") == "pipeline_error"


# --------------------------------------------------------------------------- running


def _call(parser: Parser, record: str, ctx: SourceContext) -> tuple[Any, str | None, bool]:
    """(document, error text, crashed)."""
    try:
        doc = parser(record, ctx)
    except ParseError as error:
        return None, f"ParseError: {error}", False
    except Exception as error:  # a crash is a finding, reported per record
        return None, f"{type(error).__name__}: {error}", True
    if not isinstance(doc, dict):
        return None, f"parser returned {type(doc).__name__}, not a dict", True
    return doc, None, False


def run_cases(
    vendor: str,
    cases: Iterable[Case],
    parser: Parser,
    *,
    observer_names: Mapping[str, str] | None = None,
) -> VendorResult:
    """Score `parser` on already loaded cases."""
    result = VendorResult(vendor)
    for case in cases:
        result.files.append(case.file)
        result.notes.extend(f"{case.file}: {note}" for note in case.config.notes)
        ctx = case.config.context()
        expected = case.expected or ()
        if case.expected is None:
            result.notes.append(f"{case.file}: no expected file; robustness input only")
        elif len(case.records) != len(expected):
            result.notes.append(
                f"{case.file}: {len(case.records)} records, {len(expected)} expected documents; "
                f"compared the first {min(len(case.records), len(expected))}"
            )
        for index, record in enumerate(case.records):
            number = index + 1
            result.records += 1
            doc, error, crashed = _call(parser, record, ctx)
            if error is not None:
                target = result.crashes if crashed else result.parse_errors
                target.append(Failure(case.file, number, error))
            if index >= len(expected):
                result.robustness_records += 1
                continue
            want = expected[index]
            if is_pipeline_failure(want):
                result.pipeline_failure_records.append((case.file, number))
                continue
            rows = compare_document(
                want,
                doc,
                record=record,
                dynamic_fields=case.config.dynamic_fields,
                observer_names=observer_names,
            )
            result.documents_compared += 1
            matched = sum(1 for row in rows if row[3])
            result.values_compared += len(rows)
            result.values_matched += matched
            if matched == len(rows):
                result.documents_fully_matching += 1
            for name, want_value, got_value, equal in rows:
                if not equal:
                    actual = got_value if error is None else f"<{error}>"
                    result.mismatches.append(Mismatch(case.file, number, name, want_value, actual))
    return result


def run_vendor(
    vendor: str, parser: Parser, *, observer_names: Mapping[str, str] | None = None
) -> VendorResult:
    """Score `parser` on one vendor directory (skips the calling test when it is absent)."""
    return run_cases(
        vendor,
        load_cases(vendor_path_or_skip(vendor)),
        parser,
        observer_names=observer_names,
    )


# --------------------------------------------------------------------------- report

UNEXPLAINED = "unexplained"


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return f"`{text}`" if text else ""


def _reason(
    reasons: Mapping[tuple[str, str, int, str], str], vendor: str, mismatch: Mismatch
) -> str:
    return reasons.get((vendor, mismatch.file, mismatch.record, mismatch.field), UNEXPLAINED)


def render_markdown(
    results: Iterable[VendorResult],
    reasons: Mapping[tuple[str, str, int, str], str] | None = None,
) -> str:
    """`docs/conformance.md`: a per-vendor table, then every mismatch with its reason
    (`reasons[(vendor, file, record, field)]`, else "unexplained"), failures and notes."""
    reasons = reasons or {}
    results = sorted(results, key=lambda r: r.vendor)
    lines = [
        "# ECS conformance of the vendor parsers",
        "",
        "Generated by `tests/collectors/test_conformance.py`; do not edit by hand. Method: the "
        "corpus README (`ecs-conformance/README.md`): each raw record is parsed and the README's "
        "field list is compared with the document Elastic's integration pipeline produces.",
        "",
        "| Vendor directory | Records | Documents compared | Field values compared "
        "| Field agreement | Fully matching documents | Pipeline-failure records "
        "| Robustness-only records | ParseError | Crashes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| `{r.vendor}` | {r.records} | {r.documents_compared} | {r.values_compared} "
            f"| {r.field_agreement:.2f} % ({r.values_matched}/{r.values_compared}) "
            f"| {r.fully_matching_share:.2f} % "
            f"({r.documents_fully_matching}/{r.documents_compared}) "
            f"| {len(r.pipeline_failure_records)} | {r.robustness_records} "
            f"| {len(r.parse_errors)} | {len(r.crashes)} |"
        )
    for r in results:
        lines += ["", f"## `{r.vendor}`", ""]
        if r.mismatches:
            lines += [
                "| File | Record | Field | Expected | Actual | Reason |",
                "|---|---:|---|---|---|---|",
            ]
            for m in r.mismatches:
                lines.append(
                    f"| {m.file} | {m.record} | `{m.field}` | {_cell(m.expected)} "
                    f"| {_cell(m.actual)} | {_reason(reasons, r.vendor, m)} |"
                )
        else:
            lines.append("No mismatches.")
        for title, failures in (("Crashes", r.crashes), ("ParseError", r.parse_errors)):
            if failures:
                lines += ["", f"{title}:", ""]
                lines += [f"- {f.file} record {f.record}: {_cell(f.error)}" for f in failures]
        if r.pipeline_failure_records:
            records = ", ".join(f"{file} #{n}" for file, n in r.pipeline_failure_records)
            lines += ["", f"Pipeline-failure records (not scored): {records}."]
        if r.notes:
            lines += ["", "Notes:", ""]
            lines += [f"- {note}" for note in r.notes]
    return "\n".join(lines) + "\n"
