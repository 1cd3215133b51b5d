"""The inventory service: validate and write units, sites, links, zones, assets, systems and
public ranges in the SQL tables of `inventory.tables`, and build the frozen `Inventory`
enrichment reads (`load_from_db`).

Every write takes a plain mapping (what a file row or an API body carries), checks every
field against the vocabularies, the references and the network rules, and raises
`ValidationFailed` with *all* the field errors of that object before anything changes.
Rules beyond types:

- a unit's parent exists and re-parenting never makes a cycle;
- zone CIDRs of one site do not overlap each other (a zone without a site is not checked);
- a public range does not overlap another range (of its own or of another system);
- an asset address belongs to one asset only; addresses are stored in canonical text form;
- a link's edge router and sensor, when given, are assets.

Every change is audited through `soc_api.audit.record` (the hash chain), imported when it
is used so that `inventory` never imports the API package at import time (no cycle with
`soc_api.routes.inventory`). Bulk import passes `audit=False` and writes one summary record.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import netaddr
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from inventory import vocab
from inventory.load import InventoryError
from inventory.model import Asset, InfoSystem, Inventory, Link, Site, Unit, Zone
from inventory.tables import (
    AssetRow,
    AttestationRow,
    LinkRow,
    PublicRangeRow,
    RecordRow,
    SiteRow,
    SystemAssetRow,
    SystemRow,
    UnitRow,
    ZoneRow,
)
from socmon.db import Database

ENTITIES = ("units", "sites", "zones", "systems", "public_ranges", "assets", "links")
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
DATASET = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_TEXT = 300


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    index: int | None = None  # the item of a list input (ranges, members) it is about


class ValidationFailed(InventoryError):
    """An object is invalid: every field error, not only the first."""

    def __init__(self, entity: str, key: str, errors: list[FieldError]) -> None:
        self.entity, self.key, self.errors = entity, key, errors
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        super().__init__(f"{entity} {key!r}: {detail}")


class NotFound(InventoryError):
    def __init__(self, entity: str, key: str) -> None:
        self.entity, self.key = entity, key
        super().__init__(f"{entity} {key!r} not found")


class InUse(InventoryError):
    """A delete refused because other objects still point at the object."""


AuditFn = Callable[..., Any]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def audit(
    session: Session, actor: str, action: str, object_type: str, key: str, **detail: Any
) -> None:
    """Append an audit record (imported here: `soc_api` imports this package's routes)."""
    from soc_api.audit import record

    record(session, actor, action, object_type, key, **detail)


# --- field readers: each appends its errors and returns a clean value ----------------------


class _Reader:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors: list[FieldError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def text(
        self,
        field: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        max_len: int = MAX_TEXT,
        default: str | None = None,
    ) -> str | None:
        value = self.data.get(field)
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if required and default is None:
                self.fail(field, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(field, f"expected text, got {type(value).__name__}")
            return None
        out = str(value).strip()
        if "\x00" in out:
            self.fail(field, "contains a NUL character")
            return None
        if len(out) > max_len:
            self.fail(field, f"longer than {max_len} characters")
            return None
        if pattern is not None and not pattern.match(out):
            self.fail(field, f"{out!r} is not a valid identifier (letters, digits, . _ - :)")
            return None
        return out

    def choice(self, field: str, table: vocab.Labels, default: str | None = None) -> str | None:
        value = self.text(field, required=default is None, default=default)
        if value is not None and value not in table:
            self.fail(field, f"{value!r} is not one of {', '.join(table)}")
            return None
        return value

    def boolean(self, field: str, default: bool = False) -> bool:
        value = self.data.get(field)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("false", "no", "0"):
            return False
        self.fail(field, f"expected true or false, got {value!r}")
        return default

    def integer(self, field: str, lo: int, hi: int) -> int | None:
        value = self.data.get(field)
        if value is None or value == "":
            self.fail(field, "is required")
            return None
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out = int(value)
        except (TypeError, ValueError):
            self.fail(field, f"expected an integer, got {value!r}")
            return None
        if not lo <= out <= hi:
            self.fail(field, f"{out} is not between {lo} and {hi}")
            return None
        return out

    def number(self, field: str) -> float | None:
        value = self.data.get(field)
        if value is None or value == "":
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
        except (TypeError, ValueError):
            self.fail(field, f"expected a number, got {value!r}")
            return None
        if not 0 <= out < 10**9:
            self.fail(field, f"{out} is out of range")
            return None
        return out

    def day(self, field: str) -> date | None:
        value = self.data.get(field)
        if value is None or value == "":
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(field, f"expected a date YYYY-MM-DD, got {value!r}")
            return None

    def items(self, field: str) -> list[Any]:
        value = self.data.get(field)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [v.strip() for v in value.split(";") if v.strip()]
        if isinstance(value, list | tuple):
            return list(value)
        self.fail(field, f"expected a list, got {type(value).__name__}")
        return []

    def texts(
        self, field: str, pattern: re.Pattern[str] | None = None, lower: bool = False
    ) -> list[str]:
        out: list[str] = []
        for v in self.items(field):
            if not isinstance(v, str | int | float) or isinstance(v, bool) or str(v).strip() == "":
                self.fail(field, f"invalid entry {v!r}")
                continue
            s = str(v).strip()
            s = s.lower() if lower else s
            if "\x00" in s or len(s) > MAX_TEXT:
                self.fail(field, "entry with a NUL character or longer than 300 characters")
                continue
            if pattern is not None and not pattern.match(s):
                self.fail(field, f"invalid entry {s!r}")
                continue
            if s in out:
                self.fail(field, f"{s!r} listed twice")
                continue
            out.append(s)
        return out

    def done(self, entity: str, key: str | None) -> None:
        if self.errors:
            raise ValidationFailed(entity, key or "?", self.errors)


def canonical_ip(value: str) -> str:
    return str(ipaddress.ip_address(value.strip()))


def canonical_cidr(value: str) -> str:
    """`10.0.0.1/24` -> `10.0.0.0/24`; a prefix length is required."""
    text = value.strip()
    if "/" not in text:
        raise ValueError("no prefix length")
    return str(ipaddress.ip_network(text, strict=False))


def _cidrs(r: _Reader, field: str) -> list[str]:
    out: list[str] = []
    for v in r.items(field):
        try:
            c = canonical_cidr(str(v))
        except ValueError as e:
            r.fail(field, f"invalid CIDR {v!r}: {e}")
            continue
        if c in out:
            r.fail(field, f"{c} listed twice")
            continue
        out.append(c)
    return out


def _overlaps(a: str, b: str) -> bool:
    na, nb = netaddr.IPNetwork(a), netaddr.IPNetwork(b)
    return bool(na.version == nb.version and na.first <= nb.last and nb.first <= na.last)


# --- units ---------------------------------------------------------------------------------


def descendants(session: Session, codes: Iterable[str]) -> set[str]:
    """The given units and every unit below them (walking `parent` at query time)."""
    return _below(_children(session), codes)


def _children(session: Session) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for code, parent in session.execute(select(UnitRow.code, UnitRow.parent)):
        if parent is not None:
            children.setdefault(parent, []).append(code)
    return children


def _below(children: dict[str, list[str]], codes: Iterable[str]) -> set[str]:
    out = set(codes)
    todo = list(out)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


class UnitTree:
    """The unit tree for access scopes, re-read from the database at most every `ttl`
    seconds: a user of a district sees its communes' objects, a user of the province every
    unit's. A re-parented unit moves with its objects within `ttl` seconds."""

    def __init__(self, db: Database, ttl: float = 30.0) -> None:
        self.db = db
        self.ttl = ttl
        self._children: dict[str, list[str]] = {}
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def expand(self, codes: Iterable[str]) -> frozenset[str]:
        now = time.monotonic()
        if now - self._read_at > self.ttl:
            with self._lock:
                if now - self._read_at > self.ttl:
                    with self.db.session() as session:
                        self._children = _children(session)
                    self._read_at = now
        return frozenset(_below(self._children, codes))


def _unit_exists(session: Session, code: str) -> bool:
    return session.get(UnitRow, code) is not None


def upsert_unit(
    session: Session, data: Mapping[str, Any], *, actor: str = "system", audit_it: bool = True
) -> tuple[str, UnitRow]:
    """Create or update a unit. Returns ("created" | "updated" | "unchanged", row)."""
    r = _Reader(data)
    code = r.text("code", required=True, pattern=CODE, max_len=64)
    name = r.text("name", default=code)
    kind = r.choice("kind", vocab.UNIT_KINDS, default="department")
    parent = r.text("parent", max_len=64)
    if parent is not None and code is not None:
        if parent == code:
            r.fail("parent", "a unit cannot be its own parent")
        elif not _unit_exists(session, parent):
            r.fail("parent", f"unknown unit {parent!r}")
        else:  # the new parent must not be below this unit
            seen: set[str] = set()
            p: str | None = parent
            while p is not None and p not in seen:
                if p == code:
                    r.fail("parent", f"{parent!r} is below {code!r}: that would make a cycle")
                    break
                seen.add(p)
                row = session.get(UnitRow, p)
                p = row.parent if row else None
    r.done("unit", code)
    assert code is not None and name is not None and kind is not None
    values = {"name": name, "kind": kind, "parent": parent}
    return _write(session, UnitRow, "unit", code, values, actor=actor, audit_it=audit_it)


def reparent_unit(session: Session, code: str, parent: str | None, *, actor: str) -> UnitRow:
    row = session.get(UnitRow, code)
    if row is None:
        raise NotFound("unit", code)
    _, out = upsert_unit(
        session,
        {"code": code, "name": row.name, "kind": row.kind, "parent": parent},
        actor=actor,
    )
    return out


# --- generic write --------------------------------------------------------------------------


def _write(
    session: Session,
    model: Any,
    entity: str,
    key: str,
    values: dict[str, Any],
    *,
    actor: str,
    audit_it: bool,
) -> tuple[str, Any]:
    row = session.get(model, key)
    if row is None:
        row = model(**{_key_column(model): key}, **values, updated_at=_now())
        session.add(row)
        session.flush()
        if audit_it:
            audit(session, actor, f"inventory.{entity}.create", entity, key)
        return "created", row
    changed = {k: v for k, v in values.items() if getattr(row, k) != v}
    if not changed:
        return "unchanged", row
    for k, v in changed.items():
        setattr(row, k, v)
    row.updated_at = _now()
    session.flush()
    if audit_it:
        audit(session, actor, f"inventory.{entity}.update", entity, key, fields=sorted(changed))
    return "updated", row


def _key_column(model: Any) -> str:
    return "name" if model in (ZoneRow, AssetRow) else "code"


# --- sites and links ------------------------------------------------------------------------


def upsert_site(
    session: Session, data: Mapping[str, Any], *, actor: str = "system", audit_it: bool = True
) -> tuple[str, SiteRow]:
    r = _Reader(data)
    code = r.text("code", required=True, pattern=CODE, max_len=64)
    name = r.text("name", default=code)
    kind = r.choice("kind", vocab.SITE_KINDS)
    unit = r.text("unit", required=True, max_len=64)
    if unit is not None and not _unit_exists(session, unit):
        r.fail("unit", f"unknown unit {unit!r}")
    r.done("site", code)
    assert code is not None
    values = {"name": name, "kind": kind, "unit": unit}
    return _write(session, SiteRow, "site", code, values, actor=actor, audit_it=audit_it)


def upsert_link(
    session: Session, data: Mapping[str, Any], *, actor: str = "system", audit_it: bool = True
) -> tuple[str, LinkRow]:
    r = _Reader(data)
    code = r.text("code", required=True, pattern=CODE, max_len=64)
    kind = r.choice("kind", vocab.LINK_KINDS)
    site = r.text("site", required=True, max_len=64)
    if site is not None and session.get(SiteRow, site) is None:
        r.fail("site", f"unknown site {site!r}")
    refs = {}
    for field in ("edge_router", "sensor"):
        name = r.text(field, max_len=120)
        if name is not None and session.get(AssetRow, name) is None:
            r.fail(field, f"unknown asset {name!r}")
        refs[field] = name
    bandwidth = r.number("bandwidth_mbps")
    provider = r.text("provider", max_len=120)
    r.done("link", code)
    assert code is not None
    values = {"kind": kind, "site": site, **refs, "bandwidth_mbps": bandwidth, "provider": provider}
    return _write(session, LinkRow, "link", code, values, actor=actor, audit_it=audit_it)


# --- zones ----------------------------------------------------------------------------------


def _default_zone_kind(name: str, internal: bool) -> str:
    """Files in the older format have no zone kind: guess it from the name."""
    n = name.lower()
    for kind, words in (
        ("dmz", ("dmz",)),
        ("database", ("db", "database", "csdl")),
        ("management", ("mgmt", "management", "quantri")),
        ("storage", ("storage", "san", "nas")),
        ("soc", ("soc",)),
        ("core", ("core",)),
        ("agency_lan", ("lan",)),
        ("outside_edge", ("edge", "outside")),
    ):
        if any(w in re.split(r"[^a-z0-9]+", n) for w in words):
            return kind
    return "internal_servers" if internal else "external"


def upsert_zone(
    session: Session, data: Mapping[str, Any], *, actor: str = "system", audit_it: bool = True
) -> tuple[str, ZoneRow]:
    r = _Reader(data)
    name = r.text("name", required=True, pattern=NAME, max_len=64)
    internal = r.boolean("internal", default=True)
    kind = r.choice("kind", vocab.ZONE_KINDS, default=_default_zone_kind(name or "", internal))
    cidrs = _cidrs(r, "cidrs")
    for i, a in enumerate(cidrs):
        for b in cidrs[i + 1 :]:
            if _overlaps(a, b):
                r.fail("cidrs", f"{a} overlaps {b}")
    site = r.text("site", max_len=64)
    if site is not None:
        if session.get(SiteRow, site) is None:
            r.fail("site", f"unknown site {site!r}")
        else:
            others = session.scalars(
                select(ZoneRow).where(ZoneRow.site == site, ZoneRow.name != (name or ""))
            )
            for other in others:
                for a in cidrs:
                    for b in other.cidrs:
                        if _overlaps(a, b):
                            r.fail(
                                "cidrs",
                                f"{a} overlaps {b} of zone {other.name!r} at site {site!r}",
                            )
    r.done("zone", name)
    assert name is not None
    values = {"kind": kind, "cidrs": cidrs, "internal": internal, "site": site}
    return _write(session, ZoneRow, "zone", name, values, actor=actor, audit_it=audit_it)


# --- assets ---------------------------------------------------------------------------------


def upsert_asset(
    session: Session,
    data: Mapping[str, Any],
    *,
    actor: str = "system",
    audit_it: bool = True,
    ip_owners: dict[str, str] | None = None,
) -> tuple[str, AssetRow]:
    """Create or update an asset. `ip_owners` (address -> asset), when the caller keeps one
    over many writes (import), saves reading every asset for the duplicate check."""
    r = _Reader(data)
    name = r.text("name", required=True, pattern=NAME, max_len=120)
    kind = r.choice("kind", vocab.ASSET_KINDS, default="server")
    role = r.text("role", default="server", max_len=64)
    unit = r.text("unit", required=True, max_len=64)
    if unit is not None and not _unit_exists(session, unit):
        r.fail("unit", f"unknown unit {unit!r}")
    site = r.text("site", max_len=64)
    if site is not None and session.get(SiteRow, site) is None:
        r.fail("site", f"unknown site {site!r}")
    zone = r.text("zone", max_len=64)
    if zone is not None and session.get(ZoneRow, zone) is None:
        r.fail("zone", f"unknown zone {zone!r}")
    ips: list[str] = []
    for v in r.items("ips"):
        try:
            ip = canonical_ip(str(v))
        except ValueError:
            r.fail("ips", f"invalid IP address {v!r}")
            continue
        if ip in ips:
            r.fail("ips", f"{ip} listed twice")
            continue
        ips.append(ip)
    if ip_owners is None:
        ip_owners = {
            ip: a_name
            for a_name, a_ips in session.execute(select(AssetRow.name, AssetRow.ips))
            for ip in a_ips
        }
    for ip in ips:
        owner = ip_owners.get(ip)
        if owner is not None and owner != name:
            r.fail("ips", f"{ip} already belongs to asset {owner!r}")
    hostnames = r.texts("hostnames", lower=True)
    log_sources = r.texts("log_sources", pattern=DATASET)
    values = {
        "kind": kind,
        "role": role,
        "unit": unit,
        "site": site,
        "zone": zone,
        "ips": ips,
        "hostnames": hostnames,
        "os": r.text("os", max_len=120),
        "vendor": r.text("vendor", max_len=120),
        "product": r.text("product", max_len=120),
        "virtual": r.boolean("virtual"),
        "log_sources": log_sources,
    }
    r.done("asset", name)
    assert name is not None
    old = session.get(AssetRow, name)
    if old is not None:
        for ip in old.ips:
            if ip_owners.get(ip) == name:
                del ip_owners[ip]
    for ip in ips:
        ip_owners[ip] = name
    return _write(session, AssetRow, "asset", name, values, actor=actor, audit_it=audit_it)


# --- systems, members, public ranges --------------------------------------------------------


def upsert_system(
    session: Session, data: Mapping[str, Any], *, actor: str = "system", audit_it: bool = True
) -> tuple[str, SystemRow]:
    """Create or update a system's own fields (members: `set_members`; ranges: `set_ranges`)."""
    r = _Reader(data)
    code = r.text("code", required=True, pattern=CODE, max_len=64)
    name = r.text("name", default=code)
    unit = r.text("unit", required=True, max_len=64)
    if unit is not None and not _unit_exists(session, unit):
        r.fail("unit", f"unknown unit {unit!r}")
    level = r.integer("level", 1, 5)
    status = r.choice("dossier_status", vocab.DOSSIER_STATUSES, default="draft")
    number = r.text("decision_number", max_len=120)
    decided = r.day("decision_date")
    if status == "approved" and (number is None or decided is None):
        r.fail("decision_number", "an approved dossier needs its decision number and date")
    regime = r.choice("regime", vocab.REGIMES, default="nd85")
    secret = r.boolean("state_secret")
    r.done("system", code)
    assert code is not None
    values = {
        "name": name,
        "unit": unit,
        "level": level,
        "dossier_status": status,
        "decision_number": number,
        "decision_date": decided,
        "regime": regime,
        "state_secret": secret,
    }
    return _write(session, SystemRow, "system", code, values, actor=actor, audit_it=audit_it)


def set_members(
    session: Session,
    system: str,
    assets: Iterable[str],
    *,
    actor: str = "system",
    audit_it: bool = True,
    field: str = "assets",
) -> dict[str, list[str]]:
    """Make `assets` exactly the member assets of `system`: {"added": [...], "removed": [...],
    "unchanged": [...]}."""
    if session.get(SystemRow, system) is None:
        raise NotFound("system", system)
    given = list(assets)
    unknown = [
        FieldError(field, f"unknown asset {a!r}", i)
        for i, a in enumerate(given)
        if session.get(AssetRow, a) is None
    ]
    if unknown:
        raise ValidationFailed("system", system, unknown)
    wanted = list(dict.fromkeys(given))
    current = set(
        session.scalars(select(SystemAssetRow.asset).where(SystemAssetRow.system == system))
    )
    add, drop = set(wanted) - current, current - set(wanted)
    if drop:
        session.execute(
            delete(SystemAssetRow).where(
                SystemAssetRow.system == system, SystemAssetRow.asset.in_(sorted(drop))
            )
        )
    for a in sorted(add):
        session.add(SystemAssetRow(system=system, asset=a))
    if add or drop:
        session.flush()
        if audit_it:
            audit(
                session,
                actor,
                "inventory.system.members",
                "system",
                system,
                added=sorted(add),
                removed=sorted(drop),
            )
    return {
        "added": sorted(add),
        "removed": sorted(drop),
        "unchanged": sorted(current & set(wanted)),
    }


def parse_range(
    data: Mapping[str, Any] | str, field: str = "public_ranges"
) -> tuple[dict[str, Any], list[FieldError]]:
    """One public range as a string (`203.0.113.0/28`, not registered) or a mapping."""
    if isinstance(data, str):
        data = {"cidr": data}
    r = _Reader(data)
    cidr = None
    raw = r.text("cidr", required=True, max_len=64)
    if raw is not None:
        try:
            cidr = canonical_cidr(raw)
        except ValueError as e:
            r.fail("cidr", f"invalid CIDR {raw!r}: {e}")
    status = r.choice("ncsc_status", vocab.NCSC_STATUSES, default="unregistered")
    registered_on = r.day("registered_on")
    if status == "registered" and registered_on is None:
        r.fail("registered_on", "a registered range needs its registration date")
    return (
        {"cidr": cidr, "ncsc_status": status, "registered_on": registered_on},
        r.errors,
    )


def set_ranges(
    session: Session,
    system: str,
    ranges: Iterable[Mapping[str, Any] | str],
    *,
    actor: str = "system",
    audit_it: bool = True,
    field: str = "public_ranges",
) -> dict[str, list[str]]:
    """Make `ranges` exactly the public ranges of `system`: the CIDRs "added", "removed",
    "updated" (status or date) and "unchanged". A range overlapping another one is an error."""
    if session.get(SystemRow, system) is None:
        raise NotFound("system", system)
    errors: list[FieldError] = []
    wanted: dict[str, dict[str, Any]] = {}
    index: dict[str, int] = {}
    for i, item in enumerate(ranges):
        if not isinstance(item, str | Mapping):
            errors.append(FieldError(field, f"expected a CIDR or a mapping, got {item!r}", i))
            continue
        value, errs = parse_range(item, field)
        errors.extend(
            FieldError(f"{field}.{e.field}" if isinstance(item, Mapping) else field, e.message, i)
            for e in errs
        )
        cidr = value["cidr"]
        if cidr is None:
            continue
        for other in wanted:
            if _overlaps(cidr, other):
                errors.append(FieldError(field, f"{cidr} overlaps {other}", i))
        wanted[cidr], index[cidr] = value, i
    others = session.scalars(select(PublicRangeRow).where(PublicRangeRow.system != system))
    for taken in others:
        for cidr in wanted:
            if _overlaps(cidr, taken.cidr):
                errors.append(
                    FieldError(
                        field,
                        f"{cidr} overlaps {taken.cidr} of system {taken.system!r}",
                        index[cidr],
                    )
                )
    if errors:
        raise ValidationFailed("system", system, errors)
    current = {
        row.cidr: row
        for row in session.scalars(select(PublicRangeRow).where(PublicRangeRow.system == system))
    }
    changes: dict[str, list[str]] = {"added": [], "removed": [], "updated": [], "unchanged": []}
    for cidr, row in current.items():
        if cidr not in wanted:
            session.delete(row)
            changes["removed"].append(cidr)
    for cidr, value in wanted.items():
        have = current.get(cidr)
        if have is None:
            session.add(PublicRangeRow(system=system, updated_at=_now(), **value))
            changes["added"].append(cidr)
        elif (have.ncsc_status, have.registered_on) != (
            value["ncsc_status"],
            value["registered_on"],
        ):
            have.ncsc_status, have.registered_on = value["ncsc_status"], value["registered_on"]
            have.updated_at = _now()
            changes["updated"].append(cidr)
        else:
            changes["unchanged"].append(cidr)
    if changes["added"] or changes["removed"] or changes["updated"]:
        session.flush()
        if audit_it:
            audit(
                session,
                actor,
                "inventory.system.ranges",
                "system",
                system,
                **{k: v for k, v in changes.items() if k != "unchanged"},
            )
    return changes


# --- deletes --------------------------------------------------------------------------------

_MODELS: dict[str, Any] = {
    "unit": UnitRow,
    "site": SiteRow,
    "link": LinkRow,
    "zone": ZoneRow,
    "asset": AssetRow,
    "system": SystemRow,
}


def _users_of(session: Session, entity: str, key: str) -> list[str]:
    """What still refers to the object (a delete is refused, never cascaded silently)."""
    out: list[str] = []

    def some(label: str, query: Any) -> None:
        found = list(session.scalars(query.limit(5)))
        if found:
            out.append(f"{label} {', '.join(map(str, found))}")

    if entity in ("unit", "system"):  # compliance evidence is never deleted in passing
        column = AttestationRow.unit if entity == "unit" else AttestationRow.system
        some("attestations", select(AttestationRow.id).where(column == key))
        record_col = RecordRow.unit if entity == "unit" else RecordRow.system
        some("compliance records", select(RecordRow.id).where(record_col == key))
    if entity == "unit":
        some("units", select(UnitRow.code).where(UnitRow.parent == key))
        some("sites", select(SiteRow.code).where(SiteRow.unit == key))
        some("assets", select(AssetRow.name).where(AssetRow.unit == key))
        some("systems", select(SystemRow.code).where(SystemRow.unit == key))
    elif entity == "site":
        some("links", select(LinkRow.code).where(LinkRow.site == key))
        some("zones", select(ZoneRow.name).where(ZoneRow.site == key))
        some("assets", select(AssetRow.name).where(AssetRow.site == key))
    elif entity == "zone":
        some("assets", select(AssetRow.name).where(AssetRow.zone == key))
    elif entity == "asset":
        some(
            "links",
            select(LinkRow.code).where((LinkRow.edge_router == key) | (LinkRow.sensor == key)),
        )
    return out


def delete_object(session: Session, entity: str, key: str, *, actor: str) -> None:
    """Delete one object; refused (`InUse`) while others refer to it. A system's members
    and ranges go with it, and so do an asset's memberships."""
    model = _MODELS[entity]
    row = session.get(model, key)
    if row is None:
        raise NotFound(entity, key)
    users = _users_of(session, entity, key)
    if users:
        raise InUse(f"{entity} {key!r} is still used by {'; '.join(users)}")
    if entity == "system":
        session.execute(delete(SystemAssetRow).where(SystemAssetRow.system == key))
        session.execute(delete(PublicRangeRow).where(PublicRangeRow.system == key))
    elif entity == "asset":
        session.execute(delete(SystemAssetRow).where(SystemAssetRow.asset == key))
    session.delete(row)
    session.flush()
    audit(session, actor, f"inventory.{entity}.delete", entity, key)


# --- reading --------------------------------------------------------------------------------


def members(session: Session) -> dict[str, list[str]]:
    """system code -> its member asset names (sorted)."""
    out: dict[str, list[str]] = {}
    for system, asset in session.execute(
        select(SystemAssetRow.system, SystemAssetRow.asset).order_by(
            SystemAssetRow.system, SystemAssetRow.asset
        )
    ):
        out.setdefault(system, []).append(asset)
    return out


def load_from_db(session: Session) -> Inventory:
    """The frozen inventory (`inventory.model`) of the database, for `IpLookup`."""
    by_system = members(session)
    systems_of: dict[str, list[str]] = {}
    for system, names in by_system.items():
        for a in names:
            systems_of.setdefault(a, []).append(system)
    ranges: dict[str, list[str]] = {}
    for pr in session.scalars(
        select(PublicRangeRow).order_by(PublicRangeRow.system, PublicRangeRow.cidr)
    ):
        ranges.setdefault(pr.system, []).append(pr.cidr)
    units = tuple(
        Unit(code=u.code, name=u.name, parent=u.parent, kind=u.kind)
        for u in session.scalars(select(UnitRow).order_by(UnitRow.code))
    )
    sites = tuple(
        Site(code=s.code, name=s.name, kind=s.kind, unit=s.unit)
        for s in session.scalars(select(SiteRow).order_by(SiteRow.code))
    )
    links = tuple(
        Link(
            code=k.code,
            kind=k.kind,
            site=k.site,
            edge_router=k.edge_router,
            sensor=k.sensor,
            bandwidth_mbps=k.bandwidth_mbps,
            provider=k.provider,
        )
        for k in session.scalars(select(LinkRow).order_by(LinkRow.code))
    )
    zones = tuple(
        Zone(name=z.name, cidrs=tuple(z.cidrs), internal=z.internal, site=z.site, kind=z.kind)
        for z in session.scalars(select(ZoneRow).order_by(ZoneRow.name))
    )
    systems = tuple(
        InfoSystem(
            code=s.code,
            name=s.name,
            level=s.level,
            unit=s.unit,
            state_secret=s.state_secret,
            public_ranges=tuple(ranges.get(s.code, ())),
            dossier_status=s.dossier_status,
            regime=s.regime,
            decision_number=s.decision_number,
            decision_date=s.decision_date,
        )
        for s in session.scalars(select(SystemRow).order_by(SystemRow.code))
    )
    assets = tuple(
        Asset(
            name=a.name,
            ips=tuple(a.ips),
            unit=a.unit,
            role=a.role,
            zone=a.zone,
            systems=tuple(systems_of.get(a.name, ())),
            kind=a.kind,
            vendor=a.vendor,
            product=a.product,
            hostnames=tuple(a.hostnames),
            site=a.site,
            os=a.os,
            virtual=a.virtual,
            log_sources=tuple(a.log_sources),
        )
        for a in session.scalars(select(AssetRow).order_by(AssetRow.name))
    )
    return Inventory(
        units=units, zones=zones, systems=systems, assets=assets, sites=sites, links=links
    )


def fingerprint(session: Session) -> str:
    """A short text that changes when the inventory changes (rows added, changed, removed):
    what enrichment polls to know when to re-read it."""
    parts: list[str] = []
    for model in (UnitRow, SiteRow, LinkRow, ZoneRow, AssetRow, SystemRow, PublicRangeRow):
        n, latest = session.execute(select(func.count(), func.max(model.updated_at))).one()
        parts.append(f"{n}:{latest}")
    members_n = session.scalar(select(func.count()).select_from(SystemAssetRow))
    parts.append(str(members_n))
    return hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()
