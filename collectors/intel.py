"""Threat-intel matching at enrichment time: the `ThreatIntel` hook and a file-backed `IndicatorSet`.

An indicator file is plain CSV (header `type,value[,description,source,confidence,reference]`)
or YAML (a list of such mappings, or `{indicators: [...]}`; a row may also name its value by
type, `{ip: 203.0.113.5}`). Types: `ip`, `cidr`, `domain`, `url`, `md5`, `sha1`, `sha256`, and
`hash` (the length decides); the ECS / STIX / MISP spellings (`ipv4-addr`, `domain-name`,
`ip-dst`, `hostname`...) are accepted too. `confidence` is ECS's `None`/`Low`/`Medium`/`High` or
a number 0-100 (STIX: 0 None, 1-29 Low, 30-69 Medium, 70-100 High).

Matching is a set lookup per event value: addresses in a dict, CIDRs as integer intervals
searched with `bisect` (one sorted list per prefix length, so nested ranges all match), domains
by the name and each parent (`a.evil.example` matches the indicator `evil.example`), URLs
exactly, hashes in lower case. A match becomes one `threat.enrichments` entry the way Elastic
Security's indicator-match rules write them (`matched.type: indicator_match_rule`;
`indicator.name` is the indicator as listed, `indicator.ip` an address - the matched one for a
CIDR, since an Elasticsearch `ip` field holds no range) and the tag `threat-intel`. Pure given
the file; no I/O after loading.
"""

from __future__ import annotations

import bisect
import csv
import io
import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import yaml

from socmon.ecs import get_field
from socmon.errors import Location, SocmonError

TAG = "threat-intel"
MATCH_TYPE = "indicator_match_rule"

# Event fields compared with each kind of indicator.
IP_FIELDS = ("source.ip", "destination.ip")
DOMAIN_FIELDS = ("dns.question.name", "url.domain", "destination.domain")
URL_FIELDS = ("url.original", "url.full")
HASH_FIELDS = tuple(
    f"{obj}.hash.{algo}" for obj in ("file", "process") for algo in ("md5", "sha1", "sha256")
)

_TYPE_ALIASES = {
    "ip": "ip",
    "ipv4": "ip",
    "ipv6": "ip",
    "ipv4-addr": "ip",
    "ipv6-addr": "ip",
    "ip-src": "ip",
    "ip-dst": "ip",
    "cidr": "cidr",
    "network": "cidr",
    "domain": "domain",
    "domain-name": "domain",
    "hostname": "domain",
    "fqdn": "domain",
    "url": "url",
    "uri": "url",
    "md5": "md5",
    "sha1": "sha1",
    "sha256": "sha256",
    "hash": "hash",
    "file": "hash",
}
_HASH_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256"}
_HEX = frozenset("0123456789abcdef")
_CONFIDENCE = {"not specified": "Not Specified", "none": "None", "low": "Low"}
_CONFIDENCE |= {"medium": "Medium", "med": "Medium", "high": "High"}


class IntelError(SocmonError):
    """An indicator file or one of its rows is invalid."""


@dataclass(frozen=True)
class Indicator:
    """One indicator: `kind` is ip, cidr, domain, url, md5, sha1 or sha256; `value` normalised."""

    kind: str
    value: str
    description: str | None = None
    provider: str | None = None
    confidence: str | None = None  # ECS: Not Specified, None, Low, Medium, High
    reference: str | None = None

    @property
    def ecs_type(self) -> str:
        """`threat.indicator.type` (STIX 2.x cyber-observable names, as ECS lists them)."""
        if self.kind in ("ip", "cidr"):
            return "ipv6-addr" if ":" in self.value else "ipv4-addr"
        if self.kind == "domain":
            return "domain-name"
        return "url" if self.kind == "url" else "file"

    def ecs(self, atomic: str | None = None) -> dict[str, Any]:
        """The `threat.enrichments.indicator` object. `name` is the indicator as listed; `ip` is
        an address (an ES `ip` field cannot hold a CIDR): for a CIDR, the matched `atomic`."""
        out: dict[str, Any] = {"type": self.ecs_type, "name": self.value}
        if self.kind == "ip":
            out["ip"] = self.value
        elif self.kind == "cidr":
            if atomic is not None:
                out["ip"] = _normal_ip(atomic) or atomic
        elif self.kind == "domain":
            out["url"] = {"domain": self.value}
        elif self.kind == "url":
            out["url"] = {"original": self.value}
        else:
            out["file"] = {"hash": {self.kind: self.value}}
        for key in ("provider", "confidence", "description", "reference"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class IntelMatch:
    """An indicator that matched `atomic`, the value of event field `field`."""

    indicator: Indicator
    field: str
    atomic: str

    def ecs(self) -> dict[str, Any]:
        """One `threat.enrichments` entry."""
        return {
            "indicator": self.indicator.ecs(self.atomic),
            "matched": {"atomic": self.atomic, "field": self.field, "type": MATCH_TYPE},
        }


class ThreatIntel(Protocol):
    """What the Enricher calls: the indicators an event's fields match (none: [])."""

    def match(self, event: Mapping[str, Any]) -> list[IntelMatch]: ...


def add_matches(doc: dict[str, Any], matches: Iterable[IntelMatch]) -> None:
    """Append `threat.enrichments` entries (once each) and the `threat-intel` tag."""
    entries = [m.ecs() for m in matches]
    if not entries:
        return
    threat = doc.get("threat")
    if not isinstance(threat, dict):
        threat = doc["threat"] = {}
    existing = threat.get("enrichments")
    if not isinstance(existing, list):
        existing = threat["enrichments"] = []
    existing.extend(e for e in entries if e not in existing)
    tags = doc.get("tags")
    if not isinstance(tags, list):
        tags = doc["tags"] = [] if tags is None else [tags]
    if TAG not in tags:
        tags.append(TAG)


# --------------------------------------------------------------------------- normalising


def _ip_int(text: str) -> tuple[int, int] | None:
    """(IP version, address as an integer), or None for no address (no `ipaddress` objects)."""
    v6 = ":" in text
    try:
        packed = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, text)
    except (OSError, ValueError):
        return None
    return (6 if v6 else 4), int.from_bytes(packed, "big")


def _normal_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def _normal_domain(text: str) -> str:
    return text.strip().rstrip(".").lower()


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None and v != ""]
    return [str(value)] if value != "" else []


def _confidence(value: Any, where: str, path: Path | None) -> str | None:
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        label = _CONFIDENCE.get(text.lower())
        if label is None:
            raise IntelError(
                f"{where}: confidence {text!r} is not None/Low/Medium/High or 0-100", _loc(path)
            ) from None
        return label
    if not 0 <= number <= 100:
        raise IntelError(f"{where}: confidence {text} is outside 0-100", _loc(path))
    return "None" if number == 0 else "Low" if number < 30 else "Medium" if number < 70 else "High"


def _loc(path: Path | None, line: int | None = None) -> Location | None:
    return Location(path, line) if path is not None else None


def indicator_from_row(
    row: Mapping[str, Any], *, where: str = "indicator", path: Path | None = None
) -> Indicator:
    """An `Indicator` from one row (`type` + `value`, or one type-named key)."""
    raw_type, raw_value = row.get("type"), row.get("value")
    if raw_type is None:
        named = [k for k in row if str(k).lower() in _TYPE_ALIASES and row[k] not in (None, "")]
        if len(named) != 1:
            raise IntelError(f"{where}: needs `type` and `value`", _loc(path))
        raw_type, raw_value = named[0], row[named[0]]
    kind = _TYPE_ALIASES.get(str(raw_type).strip().lower())
    if kind is None:
        raise IntelError(f"{where}: unknown indicator type {raw_type!r}", _loc(path))
    if raw_value is None or str(raw_value).strip() == "":
        raise IntelError(f"{where}: empty value", _loc(path))
    text = str(raw_value).strip()
    value: str | None
    if kind == "ip":
        value = _normal_ip(text)
        if value is None and "/" in text:
            kind = "cidr"
    if kind == "cidr":
        try:
            value = str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            value = None
    elif kind == "domain":
        value = _normal_domain(text) or None
    elif kind == "url":
        value = text
    elif kind in ("hash", "md5", "sha1", "sha256"):
        value = text.lower()
        algo = _HASH_BY_LENGTH.get(len(value))
        if kind == "hash" and algo is not None:
            kind = algo
        if algo is None or algo != kind or not set(value) <= _HEX:
            value = None
    if value is None:
        raise IntelError(f"{where}: invalid {kind} {text!r}", _loc(path))
    provider = row.get("provider", row.get("source"))
    return Indicator(
        kind=kind,
        value=value,
        description=str(row["description"]) if row.get("description") else None,
        provider=str(provider) if provider else None,
        confidence=_confidence(row.get("confidence"), where, path),
        reference=str(row["reference"]) if row.get("reference") else None,
    )


# --------------------------------------------------------------------------- the set


class IndicatorSet:
    """Indicators in hash maps and sorted CIDR intervals; `match` is the enrichment hook."""

    def __init__(self, indicators: Iterable[Indicator], cache_size: int = 65536) -> None:
        self.indicators: list[Indicator] = []
        self.errors: list[IntelError] = []  # rows skipped by `load(collect_errors=True)`
        self._exact: dict[str, dict[str, list[Indicator]]] = {
            k: {} for k in ("ip", "domain", "url", "md5", "sha1", "sha256")
        }
        by_len: dict[tuple[int, int], dict[int, tuple[int, list[Indicator]]]] = {}
        seen: set[Indicator] = set()
        for ind in indicators:
            if ind in seen:
                continue
            seen.add(ind)
            self.indicators.append(ind)
            if ind.kind == "cidr":
                net = ipaddress.ip_network(ind.value)
                group = by_len.setdefault((net.version, net.prefixlen), {})
                start = int(net.network_address)
                group.setdefault(start, (int(net.broadcast_address), []))[1].append(ind)
            else:
                self._exact[ind.kind].setdefault(ind.value, []).append(ind)
        # Per (version, prefix length) the intervals cannot overlap: one bisect each.
        self._ranges: list[tuple[int, list[int], list[tuple[int, list[Indicator]]]]] = []
        for (version, _length), group in sorted(by_len.items(), key=lambda kv: -kv[0][1]):
            starts = sorted(group)
            self._ranges.append((version, starts, [group[s] for s in starts]))
        self._hash_tables = [
            (f, self._exact[f.rsplit(".", 1)[1]])
            for f in HASH_FIELDS
            if self._exact[f.rsplit(".", 1)[1]]
        ]
        self._ip = lru_cache(maxsize=cache_size)(self._ip_matches)

    def __len__(self) -> int:
        return len(self.indicators)

    @classmethod
    def load(cls, path: Path, *, collect_errors: bool = False) -> IndicatorSet:
        """Read a `.csv` or `.yaml`/`.yml` indicator file. With `collect_errors`, bad rows are
        skipped and kept in `errors`; otherwise the first one raises `IntelError`."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise IntelError(f"cannot read indicator file: {e}", Location(path)) from e
        rows: list[tuple[int | None, str, Any]] = []
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(io.StringIO(text))
            if not reader.fieldnames:
                return cls([])
            reader.fieldnames = [f.strip().lower() for f in reader.fieldnames]
            for row in reader:
                line = reader.line_num
                cleaned = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
                if not any(cleaned.values()) or str(cleaned.get("type") or "").startswith("#"):
                    continue
                rows.append((line, "indicator", cleaned))
        else:
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as e:
                raise IntelError(f"invalid YAML: {e}", Location(path)) from e
            if isinstance(data, dict):
                data = data.get("indicators")
            if data is None:
                data = []
            if not isinstance(data, list):
                raise IntelError("expected a list of indicators", Location(path))
            rows = [(None, f"indicators[{i}]", row) for i, row in enumerate(data)]
        indicators: list[Indicator] = []
        errors: list[IntelError] = []
        for number, where, row in rows:
            try:
                if not isinstance(row, Mapping):
                    raise IntelError(f"{where}: expected a mapping", None)
                indicators.append(indicator_from_row(row, where=where))
            except IntelError as e:
                error = IntelError(e.msg, Location(path, number))
                if not collect_errors:
                    raise error from None
                errors.append(error)
        out = cls(indicators)
        out.errors = errors
        return out

    def _ip_matches(self, text: str) -> tuple[Indicator, ...]:
        found = self._exact["ip"].get(text)
        if found is None and ":" in text:  # IPv6 written another way
            canonical = _normal_ip(text)
            found = self._exact["ip"].get(canonical) if canonical else None
        out = list(found or ())
        parsed = _ip_int(text) if self._ranges else None
        if parsed is not None:
            version, value = parsed
            for v, starts, rows in self._ranges:
                if v != version:
                    continue
                i = bisect.bisect_right(starts, value) - 1
                if i >= 0 and value <= rows[i][0]:
                    out.extend(rows[i][1])
        return tuple(out)

    def _domain_matches(self, name: str) -> list[Indicator]:
        exact = self._exact["domain"]
        if not exact:
            return []
        key = _normal_domain(name)
        out: list[Indicator] = []
        while key:
            out.extend(exact.get(key, ()))
            _, _, key = key.partition(".")
        return out

    def match(self, event: Mapping[str, Any]) -> list[IntelMatch]:
        out: list[IntelMatch] = []
        if self._exact["ip"] or self._ranges:
            for field in IP_FIELDS:
                for value in _values(get_field(event, field)):
                    out.extend(IntelMatch(i, field, value) for i in self._ip(value))
        if self._exact["domain"]:
            for field in DOMAIN_FIELDS:
                for value in _values(get_field(event, field)):
                    out.extend(IntelMatch(i, field, value) for i in self._domain_matches(value))
        urls = self._exact["url"]
        if urls:
            for field in URL_FIELDS:
                for value in _values(get_field(event, field)):
                    out.extend(IntelMatch(i, field, value) for i in urls.get(value.strip(), ()))
        for field, table in self._hash_tables:
            for value in _values(get_field(event, field)):
                out.extend(IntelMatch(i, field, value) for i in table.get(value.lower(), ()))
        return out
