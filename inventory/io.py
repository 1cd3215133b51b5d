"""Inventory import and export: one YAML document, or a directory / .zip of CSV files.

YAML: a mapping with the lists `units, sites, links, zones, assets, systems` and optionally
`public_ranges`. It is a superset of the file `inventory.load` reads: everything that file
may hold keeps its meaning (`assets[].systems` names the systems an asset belongs to,
`systems[].public_ranges` may be plain CIDRs). Additions:

- `units[].kind`, `zones[].kind` (missing: guessed from the name), `sites`, `links`;
- `assets[]`: `kind site os virtual log_sources` (log sources: dataset names);
- `systems[]`: `dossier_status decision_number decision_date regime` and `assets` (member
  asset names); `public_ranges` entries may be mappings `{cidr, ncsc_status, registered_on}`.
  Public ranges live inside their system (the export writes them there); a top-level
  `public_ranges` list of `{system, cidr, ncsc_status, registered_on}` is read too.

CSV: `units.csv sites.csv links.csv zones.csv assets.csv systems.csv public_ranges.csv
system_assets.csv` (any may be missing), a header row naming the columns of `COLUMNS`,
list-valued cells separated by `;`, booleans `true`/`false`, dates `YYYY-MM-DD`.

Import never deletes an object; it creates or updates those named. The member assets and the
public ranges of every system the import names (in `systems` or by a range or membership)
become exactly those the import lists. All or nothing: every row is validated (in file
order, parents before children) inside one transaction, every error is collected as
(file, row, field, message) — YAML rows are line numbers, CSV rows count the header as 1 —
and nothing is kept if there is any error; a dry run reports what would change and keeps
nothing either. Export writes what import reads, sorted, so that export → import into an
empty database → export gives the same bytes.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory import store
from inventory.load import InventoryError
from inventory.tables import (
    AssetRow,
    LinkRow,
    PublicRangeRow,
    SiteRow,
    SystemRow,
    UnitRow,
    ZoneRow,
)

#: Columns of each CSV file (and keys of each YAML entry), in export order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "units": ("code", "name", "kind", "parent"),
    "sites": ("code", "name", "kind", "unit"),
    "links": ("code", "kind", "site", "edge_router", "sensor", "bandwidth_mbps", "provider"),
    "zones": ("name", "kind", "cidrs", "internal", "site"),
    "assets": (
        "name",
        "kind",
        "role",
        "unit",
        "site",
        "zone",
        "ips",
        "hostnames",
        "os",
        "vendor",
        "product",
        "virtual",
        "log_sources",
    ),
    "systems": (
        "code",
        "name",
        "unit",
        "level",
        "dossier_status",
        "decision_number",
        "decision_date",
        "regime",
        "state_secret",
    ),
    "public_ranges": ("system", "cidr", "ncsc_status", "registered_on"),
    "system_assets": ("system", "asset"),
}
LIST_COLUMNS = frozenset({"cidrs", "ips", "hostnames", "log_sources", "systems", "assets"})
# Keys a YAML entry (or CSV column) may carry beyond COLUMNS.
EXTRA_KEYS: dict[str, frozenset[str]] = {
    "assets": frozenset({"systems"}),
    "systems": frozenset({"assets", "public_ranges"}),
}
SECTIONS = ("units", "sites", "links", "zones", "assets", "systems", "public_ranges")
ENTITY_ORDER = ("units", "sites", "zones", "systems", "assets", "links")
MAX_IMPORT_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class ImportProblem:
    file: str
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.field}: {self.message}"


@dataclass(frozen=True)
class Row:
    file: str
    line: int
    data: dict[str, Any]


@dataclass
class Document:
    """Rows of every entity read from one or more files, with where each came from."""

    rows: dict[str, list[Row]] = field(default_factory=lambda: {k: [] for k in COLUMNS})
    errors: list[ImportProblem] = field(default_factory=list)

    def extend(self, other: Document) -> None:
        for k, v in other.rows.items():
            self.rows[k].extend(v)
        self.errors.extend(other.errors)


@dataclass
class ImportResult:
    errors: list[ImportProblem]
    counts: dict[str, dict[str, int]]
    dry_run: bool

    @property
    def ok(self) -> bool:
        return not self.errors


# --- reading ---------------------------------------------------------------------------------


_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present


def _load(text: str) -> tuple[Any, dict[str, list[int]]]:
    """The YAML data and the line (1-based) of each entry of each top-level list: one
    parse into nodes (which keep their lines), then the safe constructor."""
    root = yaml.compose(text, Loader=_YamlLoader)
    lines: dict[str, list[int]] = {}
    if root is None:
        return {}, lines
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if isinstance(value, yaml.SequenceNode):
                lines[str(key.value)] = [item.start_mark.line + 1 for item in value.value]
    data = yaml.constructor.SafeConstructor().construct_document(root)
    return data, lines


def read_yaml(text: str, name: str) -> Document:
    doc = Document()
    try:
        data, lines = _load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as e:  # ValueError: 2024-02-30
        mark = getattr(e, "problem_mark", None)
        doc.errors.append(ImportProblem(name, mark.line + 1 if mark else 0, "-", f"not YAML: {e}"))
        return doc
    if not isinstance(data, dict):
        doc.errors.append(ImportProblem(name, 1, "-", "the inventory must be a mapping"))
        return doc
    for key in data:
        if key not in SECTIONS:
            doc.errors.append(
                ImportProblem(name, 1, str(key), f"unknown section (known: {', '.join(SECTIONS)})")
            )
    for section in SECTIONS:
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            doc.errors.append(ImportProblem(name, 1, section, "expected a list"))
            continue
        where = lines.get(section, [])
        for i, item in enumerate(items):
            line = where[i] if i < len(where) else 0
            if not isinstance(item, dict):
                doc.errors.append(ImportProblem(name, line, section, "expected a mapping"))
                continue
            allowed = set(COLUMNS[section]) | EXTRA_KEYS.get(section, frozenset())
            bad = sorted(str(k) for k in item if k not in allowed)
            for k in bad:
                doc.errors.append(ImportProblem(name, line, f"{section}.{k}", "unknown field"))
            if not bad:
                doc.rows[section].append(Row(name, line, dict(item)))
    return doc


def read_csv(text: str, name: str, entity: str) -> Document:
    try:
        return _read_csv(text, name, entity)
    except csv.Error as e:
        doc = Document()
        doc.errors.append(ImportProblem(name, 0, "-", f"not CSV: {e}"))
        return doc


def _read_csv(text: str, name: str, entity: str) -> Document:
    doc = Document()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = reader.fieldnames or []
    allowed = set(COLUMNS[entity]) | EXTRA_KEYS.get(entity, frozenset()) - {"public_ranges"}
    bad = [h for h in header if h not in allowed]
    for h in bad:
        doc.errors.append(ImportProblem(name, 1, h, "unknown column"))
    if bad:
        return doc
    for row in reader:
        line = reader.line_num
        if None in row:
            doc.errors.append(ImportProblem(name, line, "-", "more cells than columns"))
            continue
        data = {k: (v if v is None or v.strip() else None) for k, v in row.items()}
        for k in LIST_COLUMNS & set(data):
            cell = data[k]
            data[k] = [v.strip() for v in cell.split(";") if v.strip()] if cell else []
        doc.rows[entity].append(Row(name, line, data))
    return doc


def _csv_entity(filename: str) -> str | None:
    stem = Path(filename).name
    return stem[:-4] if stem.endswith(".csv") and stem[:-4] in COLUMNS else None


def read_zip(content: bytes, name: str) -> Document:
    doc = Document()
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        doc.errors.append(ImportProblem(name, 0, "-", f"not a zip archive: {e}"))
        return doc
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            entity = _csv_entity(info.filename)
            if entity is None:
                doc.errors.append(ImportProblem(name, 0, info.filename, "unexpected file"))
                continue
            if info.file_size > MAX_IMPORT_BYTES:
                doc.errors.append(ImportProblem(name, 0, info.filename, "file too large"))
                continue
            try:
                with archive.open(info) as f:
                    raw = f.read(MAX_IMPORT_BYTES + 1)
                if len(raw) > MAX_IMPORT_BYTES:
                    raise ValueError("file too large")
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                doc.errors.append(ImportProblem(info.filename, 0, "-", "not UTF-8 text"))
                continue
            except Exception as e:  # a damaged archive: BadZipFile, zlib.error, EOFError...
                doc.errors.append(ImportProblem(info.filename, 0, "-", f"cannot read: {e}"))
                continue
            doc.extend(read_csv(text, info.filename, entity))
    return doc


def read_bytes(content: bytes, name: str, fmt: str) -> Document:
    """A YAML document or a zip of CSV files received as bytes (the API's import)."""
    if fmt == "csv":
        return read_zip(content, name)
    try:
        return read_yaml(content.decode("utf-8"), name)
    except UnicodeDecodeError:
        doc = Document()
        doc.errors.append(ImportProblem(name, 0, "-", "not UTF-8 text"))
        return doc


def read_path(path: Path) -> Document:
    """A YAML file, a .zip of CSV files, a directory of CSV files or one CSV file."""
    name = str(path)
    try:
        if path.is_dir():
            doc = Document()
            for entity in COLUMNS:
                f = path / f"{entity}.csv"
                if f.exists():
                    doc.extend(read_csv(f.read_text(encoding="utf-8"), str(f), entity))
            return doc
        if path.suffix.lower() == ".zip":
            return read_zip(path.read_bytes(), name)
        if path.suffix.lower() == ".csv":
            one = _csv_entity(path.name)
            if one is None:
                doc = Document()
                doc.errors.append(ImportProblem(name, 0, "-", "unknown CSV file name"))
                return doc
            return read_csv(path.read_text(encoding="utf-8"), name, one)
        return read_yaml(path.read_text(encoding="utf-8"), name)
    except (OSError, UnicodeDecodeError) as e:
        doc = Document()
        doc.errors.append(ImportProblem(name, 0, "-", f"cannot read: {e}"))
        return doc


# --- importing -------------------------------------------------------------------------------


def _unit_order(rows: list[Row]) -> list[Row]:
    """Parents named in the same import first."""
    by_code = {str(r.data.get("code")): r for r in rows}
    out: list[Row] = []
    seen: set[int] = set()

    def visit(r: Row, depth: int) -> None:
        if id(r) in seen or depth > len(rows):
            return
        parent = by_code.get(str(r.data.get("parent")))
        if parent is not None and parent is not r:
            visit(parent, depth + 1)
        if id(r) not in seen:
            seen.add(id(r))
            out.append(r)

    for r in rows:
        visit(r, 0)
    return out


def import_document(
    session: Session, doc: Document, *, dry_run: bool = False, actor: str = "system"
) -> ImportResult:
    """Validate and apply `doc` in the session's transaction. On any error, and on a dry
    run, the transaction is rolled back; otherwise it is flushed (the caller commits) and
    one audit record sums the import up."""
    errors = list(doc.errors)
    counts: dict[str, dict[str, int]] = {}

    def count(entity: str, outcome: str, n: int = 1) -> None:
        c = counts.setdefault(entity, {"created": 0, "updated": 0, "unchanged": 0})
        c[outcome] = c.get(outcome, 0) + n

    def failed(row: Row, section: str, e: store.ValidationFailed) -> None:
        prefix = f"{section}." if not row.file.endswith(".csv") else ""
        for fe in e.errors:
            errors.append(ImportProblem(row.file, row.line, prefix + fe.field, fe.message))

    upserts: dict[str, Callable[..., tuple[str, Any]]] = {
        "units": store.upsert_unit,
        "sites": store.upsert_site,
        "zones": store.upsert_zone,
        "systems": store.upsert_system,
        "links": store.upsert_link,
    }
    ip_owners = {
        ip: name for name, ips in session.execute(select(AssetRow.name, AssetRow.ips)) for ip in ips
    }
    ok_systems: set[str] = set()
    ok_assets: set[str] = set()
    for entity in ENTITY_ORDER:
        rows = doc.rows[entity]
        if entity == "units":
            rows = _unit_order(rows)
        seen: dict[str, Row] = {}
        for row in rows:
            key_field = "name" if entity in ("zones", "assets") else "code"
            key = str(row.data.get(key_field))
            if key in seen:
                first = seen[key]
                errors.append(
                    ImportProblem(
                        row.file,
                        row.line,
                        key_field,
                        f"{key!r} is also at {first.file}:{first.line}",
                    )
                )
                continue
            seen[key] = row
            values = {
                k: v for k, v in row.data.items() if k not in ("assets", "systems", "public_ranges")
            }
            if entity == "systems":
                values = {k: v for k, v in row.data.items() if k not in ("assets", "public_ranges")}
            try:
                if entity == "assets":
                    outcome, _ = store.upsert_asset(
                        session, values, actor=actor, audit_it=False, ip_owners=ip_owners
                    )
                else:
                    outcome, _ = upserts[entity](session, values, actor=actor, audit_it=False)
            except store.ValidationFailed as e:
                failed(row, entity, e)
                continue
            count(entity, outcome)
            (ok_systems if entity == "systems" else ok_assets).add(key)

    # Public ranges and members: grouped per system, each item keeping its row.
    ranges: dict[str, list[tuple[Row, Any, str]]] = {}
    pairs: dict[str, list[tuple[Row, str, str]]] = {}
    for row in doc.rows["systems"]:
        code = str(row.data.get("code"))
        ranges.setdefault(code, [])
        pairs.setdefault(code, [])
        for item in _as_list(row.data.get("public_ranges")):
            ranges[code].append((row, item, "systems.public_ranges"))
        for a in _as_list(row.data.get("assets")):
            pairs[code].append((row, str(a), "systems.assets"))
    for section in ("public_ranges",):
        for row in doc.rows[section]:
            code = str(row.data.get("system") or "")
            item = {k: v for k, v in row.data.items() if k != "system"}
            ranges.setdefault(code, []).append((row, item, _field(row, section, "cidr")))
    for row in doc.rows["system_assets"]:
        code = str(row.data.get("system") or "")
        pairs.setdefault(code, []).append(
            (row, str(row.data.get("asset") or ""), _field(row, "system_assets", "asset"))
        )
    for row in doc.rows["assets"]:
        for code in _as_list(row.data.get("systems")):
            pairs.setdefault(str(code), []).append(
                (row, str(row.data.get("name")), _field(row, "assets", "systems"))
            )

    def known_system(code: str, items: Iterable[tuple[Row, Any, str]]) -> bool:
        if code in ok_systems or session.get(SystemRow, code) is not None:
            return True
        if code in {str(r.data.get("code")) for r in doc.rows["systems"]}:
            return False  # its own row failed: already reported
        for row, _, fld in items:
            errors.append(ImportProblem(row.file, row.line, fld, f"unknown system {code!r}"))
        return False

    for code, items in sorted(ranges.items()):
        if not known_system(code, items):
            continue
        try:
            changes = store.set_ranges(
                session, code, [item for _, item, _ in items], actor=actor, audit_it=False
            )
        except store.ValidationFailed as e:
            for fe in e.errors:
                row, _, fld = items[fe.index or 0]
                errors.append(ImportProblem(row.file, row.line, fld, fe.message))
            continue
        count("public_ranges", "created", len(changes["added"]))
        count("public_ranges", "updated", len(changes["updated"]) + len(changes["removed"]))
        count("public_ranges", "unchanged", len(changes["unchanged"]))
    for code, members in sorted(pairs.items()):
        if not known_system(code, members):
            continue
        names = [a for _, a, _ in members]
        try:
            m = store.set_members(session, code, names, actor=actor, audit_it=False)
        except store.ValidationFailed as e:
            for fe in e.errors:
                row, _, fld = members[fe.index or 0]
                if row.data.get("name") in ok_assets or fld != "assets.systems":
                    errors.append(ImportProblem(row.file, row.line, fld, fe.message))
            continue
        count("system_assets", "created", len(m["added"]))
        count("system_assets", "updated", len(m["removed"]))
        count("system_assets", "unchanged", len(m["unchanged"]))

    errors.sort(key=lambda e: (e.file, e.row, e.field))
    result = ImportResult(errors=errors, counts=counts, dry_run=dry_run)
    if errors or dry_run:
        session.rollback()
        return result
    changed = {k: v for k, v in counts.items() if v["created"] or v["updated"]}
    if changed:
        store.audit(session, actor, "inventory.import", "inventory", "import", counts=changed)
    session.flush()
    return result


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    return list(value) if isinstance(value, list | tuple) else [value]


def _field(row: Row, section: str, name: str) -> str:
    return name if row.file.endswith(".csv") else f"{section}.{name}"


def import_paths(
    session: Session, paths: Iterable[Path], *, dry_run: bool = False, actor: str = "system"
) -> ImportResult:
    doc = Document()
    for p in paths:
        doc.extend(read_path(p))
    return import_document(session, doc, dry_run=dry_run, actor=actor)


# --- exporting -------------------------------------------------------------------------------


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def snapshot(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every object as export rows (COLUMNS order, sorted by key); systems carry `assets` and
    `public_ranges`. Filter this for a scoped export."""
    members = store.members(session)
    ranges: dict[str, list[dict[str, Any]]] = {}
    for pr in session.scalars(
        select(PublicRangeRow).order_by(PublicRangeRow.system, PublicRangeRow.cidr)
    ):
        ranges.setdefault(pr.system, []).append(
            {
                "cidr": pr.cidr,
                "ncsc_status": pr.ncsc_status,
                "registered_on": _day(pr.registered_on),
            }
        )

    def rows(model: Any, key: Any, entity: str) -> list[dict[str, Any]]:
        out = []
        for obj in session.scalars(select(model).order_by(key)):
            row = {c: getattr(obj, c) for c in COLUMNS[entity]}
            for k, v in row.items():
                if isinstance(v, date):
                    row[k] = v.isoformat()
                elif isinstance(v, list):
                    row[k] = list(v)
            out.append(row)
        return out

    systems = rows(SystemRow, SystemRow.code, "systems")
    for s in systems:
        s["assets"] = members.get(s["code"], [])
        s["public_ranges"] = ranges.get(s["code"], [])
    return {
        "units": rows(UnitRow, UnitRow.code, "units"),
        "sites": rows(SiteRow, SiteRow.code, "sites"),
        "links": rows(LinkRow, LinkRow.code, "links"),
        "zones": rows(ZoneRow, ZoneRow.name, "zones"),
        "assets": rows(AssetRow, AssetRow.name, "assets"),
        "systems": systems,
    }


def to_yaml(snap: Mapping[str, list[dict[str, Any]]]) -> str:
    """The YAML document (None values and empty lists left out)."""
    doc: dict[str, list[dict[str, Any]]] = {}
    for section in ("units", "sites", "links", "zones", "assets", "systems"):
        doc[section] = [
            {k: v for k, v in row.items() if v is not None and v != []}
            for row in snap.get(section, [])
        ]
    header = "# socmon inventory (socmon inventory export --format yaml); format: inventory/io.py\n"
    return header + yaml.dump(
        doc,
        Dumper=yaml.SafeDumper,
        allow_unicode=True,
        sort_keys=False,
        width=100,
        default_flow_style=None,
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def to_csv(snap: Mapping[str, list[dict[str, Any]]]) -> dict[str, str]:
    """File name -> CSV text, one file per entity."""
    tables: dict[str, list[dict[str, Any]]] = {k: list(snap.get(k, [])) for k in COLUMNS}
    tables["systems"] = [
        {k: v for k, v in s.items() if k in COLUMNS["systems"]} for s in snap.get("systems", [])
    ]
    tables["public_ranges"] = [
        {"system": s["code"], **r} for s in snap.get("systems", []) for r in s["public_ranges"]
    ]
    tables["system_assets"] = [
        {"system": s["code"], "asset": a} for s in snap.get("systems", []) for a in s["assets"]
    ]
    out = {}
    for entity, columns in COLUMNS.items():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in tables[entity]:
            writer.writerow([_cell(row.get(c)) for c in columns])
        out[f"{entity}.csv"] = buf.getvalue()
    return out


def to_zip(files: Mapping[str, str]) -> bytes:
    """The CSV files in a zip with fixed dates (the same inventory gives the same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name].encode("utf-8"))
    return buf.getvalue()


def export(session: Session, fmt: str, out: Path) -> list[Path]:
    """Write the inventory to `out`: a YAML file, or (csv) a directory of CSV files or a .zip."""
    snap = snapshot(session)
    if fmt == "yaml":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(to_yaml(snap), encoding="utf-8")
        return [out]
    if fmt != "csv":
        raise InventoryError(f"unknown export format {fmt!r} (yaml or csv)")
    files = to_csv(snap)
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(to_zip(files))
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


__all__ = [
    "COLUMNS",
    "Document",
    "ImportProblem",
    "ImportResult",
    "export",
    "import_document",
    "import_paths",
    "read_bytes",
    "read_path",
    "snapshot",
    "to_csv",
    "to_yaml",
    "to_zip",
]
