"""IP → context (asset, zone, site, information system, owner unit, level): the enrichment hot path.

Exact asset addresses are a dict lookup; zones and system ranges are CIDR intervals searched
with `bisect` over integer bounds, most specific prefix first. No `ipaddress` objects per
lookup; results cached per address.
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

from inventory.model import Asset, InfoSystem, Inventory, Zone

T = TypeVar("T")


@dataclass(frozen=True)
class IpContext:
    asset: str | None = None
    role: str | None = None
    zone: str | None = None
    internal: bool | None = None
    site: str | None = None
    systems: tuple[str, ...] = ()
    unit: str | None = None
    level: int | None = None  # highest level among the systems
    state_secret: bool = False

    def as_fields(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, (), False)}


class _Ranges(Generic[T]):
    """Lookup over possibly nested CIDRs: the most specific one wins."""

    def __init__(self, items: list[tuple[str, T]]) -> None:
        by_len: dict[tuple[int, int], list[tuple[int, int, T]]] = {}
        for cidr, value in items:
            net = ipaddress.ip_network(cidr, strict=False)
            by_len.setdefault((int(net.version), net.prefixlen), []).append(
                (int(net.network_address), int(net.broadcast_address), value)
            )
        # Longest prefixes first; within one length, intervals cannot overlap.
        self.levels: list[tuple[int, list[int], list[tuple[int, int, T]]]] = []
        for version, length in sorted(by_len, key=lambda k: -k[1]):
            rows = sorted(by_len[(version, length)], key=lambda r: r[0])
            self.levels.append((version, [r[0] for r in rows], rows))

    def find(self, version: int, value: int) -> T | None:
        for v, starts, rows in self.levels:
            if v != version:
                continue
            i = bisect.bisect_right(starts, value) - 1
            if i >= 0 and rows[i][0] <= value <= rows[i][1]:
                return rows[i][2]
        return None


class IpLookup:
    def __init__(self, inventory: Inventory, cache_size: int = 65536) -> None:
        self.inventory = inventory
        self.assets = {ip: a for a in inventory.assets for ip in a.ips}
        self.hosts: dict[str, Asset] = {}
        for a in inventory.assets:  # the first asset to claim a name keeps it
            for name in (a.name.lower(), *a.hostnames):
                self.hosts.setdefault(name, a)
        self.zones: _Ranges[Zone] = _Ranges([(c, z) for z in inventory.zones for c in z.cidrs])
        self.system_ranges: _Ranges[InfoSystem] = _Ranges(
            [(c, s) for s in inventory.systems for c in s.public_ranges]
        )
        self.zone_by_name = {z.name: z for z in inventory.zones}
        self.lookup = lru_cache(maxsize=cache_size)(self._lookup)

    def asset(self, ip: str) -> Asset | None:
        """The asset that owns exactly this address (canonical text form), if any."""
        found = self.assets.get(ip)
        if found is not None or ":" not in ip:
            return found
        try:  # IPv6 written another way
            return self.assets.get(str(ipaddress.ip_address(ip)))
        except ValueError:
            return None

    def asset_by_hostname(self, name: str) -> Asset | None:
        """The asset named `name` (its inventory name or one of its host names, any case);
        a fully qualified name also matches by its first label."""
        key = name.strip().lower()
        found = self.hosts.get(key)
        if found is None and "." in key:
            found = self.hosts.get(key.split(".", 1)[0])
        return found

    def asset_context(self, asset: Asset) -> IpContext:
        """The context of an asset known by name rather than by address."""
        zone = self.zone_by_name.get(asset.zone) if asset.zone else None
        return self._context(asset, zone, None)

    def _lookup(self, ip: str) -> IpContext | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        asset = self.assets.get(str(addr))
        zone = self.zones.find(addr.version, int(addr))
        system_by_range = self.system_ranges.find(addr.version, int(addr))
        if asset is None and zone is None and system_by_range is None:
            return None
        return self._context(asset, zone, system_by_range)

    def _context(
        self, asset: Asset | None, zone: Zone | None, system_by_range: InfoSystem | None
    ) -> IpContext:
        codes = list(asset.systems) if asset else []
        if system_by_range is not None and system_by_range.code not in codes:
            codes.append(system_by_range.code)
        systems = [s for s in (self.inventory.system(c) for c in codes) if s is not None]
        zone_obj = self.zone_by_name.get(asset.zone) if asset and asset.zone else zone
        zone_name = zone_obj.name if zone_obj is not None else (asset.zone if asset else None)
        unit = asset.unit if asset else (systems[0].unit if systems else None)
        return IpContext(
            asset=asset.name if asset else None,
            role=asset.role if asset else None,
            zone=zone_name,
            internal=zone_obj.internal if zone_obj is not None else None,
            site=zone_obj.site
            if zone_obj is not None and zone_obj.site
            else (asset.site if asset else None),
            systems=tuple(s.code for s in systems),
            unit=unit,
            level=max((s.level for s in systems), default=None),
            state_secret=any(s.state_secret for s in systems),
        )
