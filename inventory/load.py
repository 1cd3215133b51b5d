"""Load the inventory core from YAML; every problem names the file and the entry."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import yaml

from inventory.model import Asset, InfoSystem, Inventory, Unit, Zone
from socmon.errors import Location, SocmonError


class InventoryError(SocmonError):
    """The inventory file is invalid."""


def _cidrs(values: Any, where: str, path: Path) -> tuple[str, ...]:
    out = []
    for v in values or ():
        try:
            out.append(str(ipaddress.ip_network(str(v), strict=False)))
        except ValueError as e:
            raise InventoryError(f"{where}: invalid CIDR {v!r}", Location(path)) from e
    return tuple(out)


def _optional_text(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _hostnames(values: Any, where: str, path: Path) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise InventoryError(f"{where}: expected a list of host names", Location(path))
    return tuple(v.strip().lower() for v in values)


def load_inventory(path: Path) -> Inventory:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise InventoryError(f"cannot read inventory: {e}", Location(path)) from e
    if not isinstance(data, dict):
        raise InventoryError("inventory must be a mapping", Location(path))
    try:
        units = tuple(
            Unit(code=str(u["code"]), name=str(u.get("name", u["code"])), parent=u.get("parent"))
            for u in data.get("units", [])
        )
        zones = tuple(
            Zone(
                name=str(z["name"]),
                cidrs=_cidrs(z.get("cidrs"), f"zones[{i}]", path),
                internal=bool(z.get("internal", True)),
                site=z.get("site"),
            )
            for i, z in enumerate(data.get("zones", []))
        )
        systems = []
        for i, s in enumerate(data.get("systems", [])):
            level = int(s["level"])
            if not 1 <= level <= 5:
                raise InventoryError(
                    f"systems[{i}].level: {level} is not a security level 1-5", Location(path)
                )
            systems.append(
                InfoSystem(
                    code=str(s["code"]),
                    name=str(s.get("name", s["code"])),
                    level=level,
                    unit=str(s["unit"]),
                    state_secret=bool(s.get("state_secret", False)),
                    public_ranges=_cidrs(
                        s.get("public_ranges"), f"systems[{i}].public_ranges", path
                    ),
                )
            )
        assets = tuple(
            Asset(
                name=str(a["name"]),
                ips=tuple(str(ipaddress.ip_address(str(ip))) for ip in a.get("ips", [])),
                unit=str(a["unit"]),
                role=str(a.get("role", "server")),
                zone=a.get("zone"),
                systems=tuple(str(c) for c in a.get("systems", [])),
                kind=_optional_text(a.get("kind")),
                vendor=_optional_text(a.get("vendor")),
                product=_optional_text(a.get("product")),
                hostnames=_hostnames(a.get("hostnames"), f"assets[{i}].hostnames", path),
            )
            for i, a in enumerate(data.get("assets", []))
        )
    except KeyError as e:
        raise InventoryError(f"missing key {e.args[0]!r}", Location(path)) from e
    except ValueError as e:
        raise InventoryError(str(e), Location(path)) from e
    known_systems = {s.code for s in systems}
    for a in assets:
        missing = [c for c in a.systems if c not in known_systems]
        if missing:
            raise InventoryError(
                f"asset {a.name}: unknown system(s) {', '.join(missing)}", Location(path)
            )
    return Inventory(units=units, zones=zones, systems=tuple(systems), assets=assets)
