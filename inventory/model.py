"""The inventory's core model: owner units, network zones, assets and information systems.

Frozen records loaded from YAML (`inventory.load`); the SQL-backed inventory with import,
export and compliance (issue 7) extends these, it does not fork them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Unit:
    """An owner unit (agency: sở, ban, ngành, district, commune)."""

    code: str
    name: str
    parent: str | None = None
    kind: str | None = None  # vocab.UNIT_KINDS


@dataclass(frozen=True)
class Site:
    """A place with equipment: the data centre, a department, a district, a commune office."""

    code: str
    name: str
    kind: str  # vocab.SITE_KINDS
    unit: str


@dataclass(frozen=True)
class Link:
    """A TSLCD, WAN or Internet link of a site, with its edge router and sensor (asset names)."""

    code: str
    kind: str  # vocab.LINK_KINDS
    site: str
    edge_router: str | None = None
    sensor: str | None = None
    bandwidth_mbps: float | None = None
    provider: str | None = None


@dataclass(frozen=True)
class Zone:
    """A network zone (DMZ, internal servers, database, management, agency LAN, outside edge)."""

    name: str
    cidrs: tuple[str, ...]
    internal: bool = True
    site: str | None = None
    kind: str | None = None  # vocab.ZONE_KINDS


@dataclass(frozen=True)
class InfoSystem:
    """An information system (hệ thống thông tin) with its approved security level (cấp độ 1–5)."""

    code: str
    name: str
    level: int
    unit: str
    state_secret: bool = False
    public_ranges: tuple[str, ...] = ()
    dossier_status: str | None = None  # vocab.DOSSIER_STATUSES
    regime: str | None = None  # vocab.REGIMES: nd85 / nd331
    decision_number: str | None = None
    decision_date: date | None = None


@dataclass(frozen=True)
class Asset:
    """A device or server. `kind` (firewall, router, switch, server, ids, proxy...), `vendor`,
    `product` and `hostnames` (lower case) describe it when it reports logs itself: the
    enrichment fills `observer.*` from them."""

    name: str
    ips: tuple[str, ...]
    unit: str
    role: str = "server"
    zone: str | None = None
    systems: tuple[str, ...] = ()
    kind: str | None = None
    vendor: str | None = None
    product: str | None = None
    hostnames: tuple[str, ...] = ()
    site: str | None = None
    os: str | None = None
    virtual: bool = False
    log_sources: tuple[str, ...] = ()  # dataset names this asset is expected to send


@dataclass(frozen=True)
class Inventory:
    units: tuple[Unit, ...] = ()
    zones: tuple[Zone, ...] = ()
    systems: tuple[InfoSystem, ...] = ()
    assets: tuple[Asset, ...] = ()
    sites: tuple[Site, ...] = ()
    links: tuple[Link, ...] = ()
    _by_code: dict[str, InfoSystem] = field(default_factory=dict, compare=False, repr=False)

    def system(self, code: str) -> InfoSystem | None:
        if not self._by_code and self.systems:
            self._by_code.update({s.code: s for s in self.systems})
        return self._by_code.get(code)
