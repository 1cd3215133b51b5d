"""IP -> context lookups/s on a province-scale inventory.

Two inventories: one seeded and generated in memory (~300 servers, 250 TSLCD site zones + 18
department LANs + 6 DC zones, 15 systems), and the sample province of `lab/sample_province`
imported into a scratch SQLite database and read back with `inventory.store.load_from_db`
(the path enrichment uses), measured per kind of address: the address of an asset, an
address only inside a zone (or a system's public range), and a miss.
    .venv/bin/python bench/inventory/lookup.py
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import git_rev, machine, table  # noqa: E402

from collectors.enrich import Enricher  # noqa: E402
from inventory import Asset, InfoSystem, Inventory, IpLookup, Zone  # noqa: E402

SAMPLE = ROOT / "lab" / "sample_province" / "province.yaml"


def province(rng: random.Random) -> Inventory:
    zones = [
        Zone(f"dc-{n}", (f"10.10.{i}.0/24",), site="ttdl")
        for i, n in enumerate(["dmz", "internal", "db", "storage", "mgmt", "soc"])
    ]
    zones += [Zone(f"so-{d}", (f"10.{20 + d}.0.0/16",), site=f"so-{d}") for d in range(18)]
    zones += [Zone(f"tslcd-{s}", (f"172.16.{s}.0/24",), site=f"xa-{s}") for s in range(250)]
    systems = [
        InfoSystem(
            f"sys-{i}",
            f"System {i}",
            rng.randint(1, 4),
            f"so-{i % 18}",
            public_ranges=(f"203.0.113.{i * 16}/28",),
        )
        for i in range(15)
    ]
    assets = [
        Asset(
            f"srv-{i}",
            (f"10.10.{i % 6}.{10 + i // 6}",),
            f"so-{i % 18}",
            zone=f"dc-{['dmz', 'internal', 'db', 'storage', 'mgmt', 'soc'][i % 6]}",
            systems=(f"sys-{i % 15}",),
        )
        for i in range(300)
    ]
    return Inventory(zones=tuple(zones), systems=tuple(systems), assets=tuple(assets))


def rate(fn, items) -> float:  # type: ignore[no-untyped-def]
    best = 0.0
    for _ in range(3):
        t = time.process_time()
        for x in items:
            fn(x)
        best = max(best, len(items) / (time.process_time() - t))
    return best


def sample_province() -> tuple[Inventory, float]:
    """The committed sample, through import and `load_from_db` (seconds to import)."""
    import tempfile

    from inventory.io import import_paths
    from inventory.store import load_from_db
    from socmon.db import Database

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        try:
            db.migrate()
            t = time.perf_counter()
            with db.session() as s:
                result = import_paths(s, [SAMPLE], actor="bench")
            took = time.perf_counter() - t
            if result.errors:
                raise SystemExit(f"sample province does not import: {result.errors[0]}")
            with db.session() as s:
                return load_from_db(s), took
        finally:
            db.dispose()


def sample_rows(rng: random.Random) -> list[list[object]]:
    import ipaddress

    inv, took = sample_province()
    asset_ips = [ip for a in inv.assets for ip in a.ips]
    taken = set(asset_ips)
    zone_only: list[str] = []
    for z in inv.zones:
        for cidr in z.cidrs:
            net = ipaddress.ip_network(cidr)
            for _ in range(8):
                ip = str(net[rng.randrange(1, net.num_addresses - 1)])
                if ip not in taken:
                    zone_only.append(ip)
    for s in inv.systems:
        for cidr in s.public_ranges:
            net = ipaddress.ip_network(cidr)
            zone_only += [str(net[i]) for i in range(1, net.num_addresses - 1)]
    miss = [
        f"{rng.randrange(11, 99)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        for _ in range(5000)
    ]
    lookup = IpLookup(inv, cache_size=0)
    assert all(lookup.lookup(ip) is not None for ip in zone_only[:500])
    assert all(lookup.lookup(ip) is None for ip in miss[:500])
    rows: list[list[object]] = []
    n = 100_000
    for label, pool in (
        ("asset address", asset_ips),
        ("zone or public range only", zone_only),
        ("miss (not in the inventory)", miss),
    ):
        queries = [rng.choice(pool) for _ in range(n)]
        cold = rate(IpLookup(inv, cache_size=0).lookup, queries)
        warm = rate(IpLookup(inv, cache_size=65536).lookup, queries)
        rows.append([f"sample province: {label}", f"{cold:,.0f}", f"{warm:,.0f}"])
    summary = (
        f"sample province: {len(inv.assets)} assets, {len(inv.zones)} zones, "
        f"{len(inv.systems)} systems, {sum(len(s.public_ranges) for s in inv.systems)} public "
        f"ranges; import of province.yaml {took:.1f} s"
    )
    return [[summary, "", ""], *rows]


def main() -> None:
    rng = random.Random(7)
    inv = province(rng)
    pool = [f"10.10.{rng.randrange(6)}.{rng.randrange(256)}" for _ in range(2000)]
    pool += [f"172.16.{rng.randrange(250)}.{rng.randrange(256)}" for _ in range(2000)]
    pool += [
        f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
        for _ in range(4000)
    ]
    queries = [rng.choice(pool) for _ in range(200_000)]
    cold = [
        f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
        for _ in range(100_000)
    ]
    lookup = IpLookup(inv, cache_size=65536)
    warm_rate = rate(lookup.lookup, queries)
    cold_rate = rate(IpLookup(inv, cache_size=0).lookup, cold)
    enricher = Enricher(lookup)
    docs = [
        {
            "source": {"ip": rng.choice(pool), "port": 40000},
            "destination": {"ip": rng.choice(pool), "port": 443},
            "network": {"transport": "tcp"},
        }
        for _ in range(50_000)
    ]
    enrich_rate = rate(enricher.enrich, docs)
    print(f"machine: {machine()}; commit {git_rev()}")
    print("command: .venv/bin/python bench/inventory/lookup.py")
    print(
        table(
            ["measure", "per second (1 core)"],
            [
                ["IP lookup, 8k distinct addresses, cached", f"{warm_rate:,.0f}"],
                ["IP lookup, every address new (no cache)", f"{cold_rate:,.0f}"],
                ["enrich one flow event (2 lookups + Community ID)", f"{enrich_rate:,.0f}"],
            ],
        )
    )
    rows = sample_rows(rng)
    print()
    print(
        table(["lookup (IpLookup.lookup)", "per second, no cache", "per second, cached"], rows[1:])
    )
    print(rows[0][0])


if __name__ == "__main__":
    main()
