"""Enrichment: inventory context for source, destination and observer, direction from zones,
Community ID, threat-intel matches.

Adds `socmon.source.*` / `socmon.destination.*` (asset, zone, site, information systems,
owner unit, security level), `socmon.unit` (the unit that owns the event: the destination's,
else the source's, else the reporting device's — what API scoping filters on), `socmon.level`
(the highest level among source and destination, else the device's), `network.direction` from
the inventory's zones when the parser did not set one, and `network.community_id` (v1) for
TCP/UDP/ICMP flows.

The reporting device (the firewall, router or server that sent the log) is looked up by
`observer.ip`, else by the syslog sender (`log.source.address`), else by name
(`observer.hostname`, `observer.name`; `host.name`, `host.hostname` only when the parser set no
`observer`, i.e. the host reported its own log). When the inventory knows
it: `socmon.observer.*` (the same context as for source/destination), and `observer.name`,
`observer.type` (ECS values: firewall, router, switch, ids, ips, proxy, server... from the
asset's `kind`, else its `role`), `observer.vendor` / `observer.product` from the asset only
where the parser set none, `observer.ip` (the sender) where the parser set none.

With a `ThreatIntel` (`collectors.intel`), matches become `threat.enrichments` and the tag
`threat-intel`. Pure given the inventory and the indicators; no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import socket
import struct
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from collectors.intel import ThreatIntel, add_matches
from inventory import Asset, IpContext, IpLookup
from socmon.ecs import get_field, set_field

_PROTO = {"tcp": 6, "udp": 17, "sctp": 132}


def _ip_bytes(text: str) -> bytes | None:
    try:
        return socket.inet_pton(socket.AF_INET6 if ":" in text else socket.AF_INET, text)
    except (OSError, ValueError):
        return None


def community_id(doc: dict[str, Any], seed: int = 0) -> str | None:
    """Community ID v1 of a TCP/UDP/SCTP flow (https://github.com/corelight/community-id-spec).

    Computed here rather than with the `communityid` package, which costs ~90 µs per event
    (the enrichment hot path); the tests check this against the package on random flows.
    """
    src, dst = get_field(doc, "source.ip"), get_field(doc, "destination.ip")
    proto = _PROTO.get(str(get_field(doc, "network.transport") or "").lower())
    sport, dport = get_field(doc, "source.port"), get_field(doc, "destination.port")
    if not src or not dst or proto is None or sport is None or dport is None:
        return None
    saddr, daddr = _ip_bytes(str(src)), _ip_bytes(str(dst))
    try:
        sp, dp = int(sport), int(dport)
    except (TypeError, ValueError):
        return None
    if (
        saddr is None
        or daddr is None
        or len(saddr) != len(daddr)
        or not (0 <= sp < 65536 and 0 <= dp < 65536)
    ):
        return None
    if (saddr, sp) > (daddr, dp):
        saddr, daddr, sp, dp = daddr, saddr, dp, sp
    digest = hashlib.sha1(
        struct.pack("!H", seed) + saddr + daddr + struct.pack("!BBHH", proto, 0, sp, dp)
    ).digest()
    return "1:" + base64.b64encode(digest).decode()


def _direction(src: IpContext | None, dst: IpContext | None) -> str:
    src_in = bool(src and src.internal)
    dst_in = bool(dst and dst.internal)
    if src_in and dst_in:
        return "internal"
    if dst_in:
        return "inbound"
    if src_in:
        return "outbound"
    return "external"


# Asset kind (or role) -> ECS `observer.type` (ECS lists no fixed set; these follow its examples).
_OBSERVER_TYPES = {
    "firewall": "firewall",
    "fw": "firewall",
    "ngfw": "firewall",
    "utm": "firewall",
    "waf": "firewall",
    "router": "router",
    "switch": "switch",
    "l3-switch": "switch",
    "ids": "ids",
    "ips": "ips",
    "proxy": "proxy",
    "load-balancer": "load-balancer",
    "vpn": "vpn",
    "wireless-controller": "wireless-controller",
    "sensor": "sensor",
    "server": "server",
    "database": "server",
    "web": "server",
    "domain-controller": "server",
    "mail": "server",
    "workstation": "host",
    "endpoint": "host",
}
_OBSERVER_NAMES = ("observer.hostname", "observer.name")
# A log with no `observer` from its parser comes from the host itself (server, endpoint);
# otherwise `host.*` may describe another machine (FortiGate puts the client PC there).
_HOST_NAMES = ("host.name", "host.hostname")


@dataclass(frozen=True)
class _Device:
    """A reporting device found in the inventory, with what every event from it gets."""

    ctx: IpContext
    name: str
    type: str | None
    vendor: str | None
    product: str | None
    fields: dict[str, object]  # socmon.observer (copied per event)
    address: str | None = None  # canonical, when found by address


def observer_type(asset: Asset) -> str | None:
    """ECS `observer.type` for an asset: from its kind, else from its role."""
    for value in (asset.kind, asset.role):
        if value:
            key = value.strip().lower().replace("_", "-").replace(" ", "-")
            return _OBSERVER_TYPES.get(key, key)
    return None


def _sender_ip(address: str) -> str:
    """The address part of a sender, `ip:port` (`RawMessage.sender`) or `[v6]:port`."""
    if address.startswith("["):
        return address[1 : address.find("]")]
    return address.rsplit(":", 1)[0] if ":" in address else address


def _device(asset: Asset, ctx: IpContext, address: str | None = None) -> _Device:
    return _Device(
        ctx=ctx,
        name=asset.name,
        type=observer_type(asset),
        vendor=asset.vendor,
        product=asset.product,
        fields=ctx.as_fields(),
        address=address,
    )


class Enricher:
    def __init__(self, lookup: IpLookup | None = None, intel: ThreatIntel | None = None) -> None:
        self.lookup = lookup
        self.intel = intel
        self._by_ip = lru_cache(maxsize=4096)(self._observer_by_ip)
        self._by_name = lru_cache(maxsize=4096)(self._observer_by_name)

    def replace_lookup(self, lookup: IpLookup | None) -> None:
        """Use a new inventory from now on (it changed): the caches of the old one go."""
        self.lookup = lookup
        self._by_ip.cache_clear()
        self._by_name.cache_clear()

    def _observer_by_ip(self, ip: str) -> _Device | None:
        assert self.lookup is not None
        asset = self.lookup.asset(ip)
        if asset is None:
            return None
        canonical = str(ipaddress.ip_address(ip))  # the asset lookup accepted it
        ctx = self.lookup.lookup(canonical) or self.lookup.asset_context(asset)
        return _device(asset, ctx, canonical)

    def _observer_by_name(self, name: str) -> _Device | None:
        assert self.lookup is not None
        asset = self.lookup.asset_by_hostname(name)
        return _device(asset, self.lookup.asset_context(asset)) if asset is not None else None

    def observer(self, doc: dict[str, Any]) -> IpContext | None:
        """Find the reporting device in the inventory and fill `observer.*`, `socmon.observer`."""
        found: _Device | None = None
        ips = get_field(doc, "observer.ip")
        for ip in ips if isinstance(ips, list) else [ips] if ips else []:
            found = self._by_ip(str(ip))
            if found is not None:
                break
        from_sender = False
        if found is None and not ips:
            address = get_field(doc, "log.source.address")
            if address:
                found = self._by_ip(_sender_ip(str(address)))
                from_sender = found is not None
        if found is None:
            names = _OBSERVER_NAMES if "observer" in doc else _OBSERVER_NAMES + _HOST_NAMES
            for field in names:
                name = get_field(doc, field)
                if isinstance(name, str) and name:
                    found = self._by_name(name)
                    if found is not None:
                        break
        if found is None:
            return None
        observer = doc.get("observer")
        if not isinstance(observer, dict):
            observer = doc["observer"] = {}
        if from_sender and found.address is not None:
            observer["ip"] = [found.address]
        observer.setdefault("name", found.name)
        if found.type is not None:
            observer.setdefault("type", found.type)
        if found.vendor and not observer.get("vendor"):
            observer["vendor"] = found.vendor
        if found.product and not observer.get("product"):
            observer["product"] = found.product
        socmon = doc.get("socmon")
        if not isinstance(socmon, dict):
            socmon = doc["socmon"] = {}
        socmon["observer"] = dict(found.fields)
        return found.ctx

    def enrich(self, doc: dict[str, Any]) -> None:
        cid = community_id(doc)
        if cid is not None:
            set_field(doc, "network.community_id", cid)
        if self.intel is not None:
            add_matches(doc, self.intel.match(doc))
        if self.lookup is None:
            return
        device = self.observer(doc)
        contexts: dict[str, IpContext | None] = {}
        for side in ("source", "destination"):
            ip = get_field(doc, f"{side}.ip")
            ctx = self.lookup.lookup(str(ip)) if ip else None
            contexts[side] = ctx
            if ctx is not None:
                set_field(doc, f"socmon.{side}", ctx.as_fields())
        src, dst = contexts["source"], contexts["destination"]
        owner = next((c for c in (dst, src, device) if c is not None and c.unit), None)
        if owner is not None:
            set_field(doc, "socmon.unit", owner.unit)
        levels = [c.level for c in (src, dst) if c is not None and c.level is not None]
        if not levels and device is not None and device.level is not None:
            levels = [device.level]
        if levels:
            set_field(doc, "socmon.level", max(levels))
        if src is None and dst is None:
            return
        if (
            get_field(doc, "network.direction") is None
            and get_field(doc, "source.ip")
            and get_field(doc, "destination.ip")
        ):
            set_field(doc, "network.direction", _direction(src, dst))
