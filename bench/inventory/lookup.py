"""IP -> context lookups/s on a province-scale inventory (seeded, generated in memory).

~300 servers, 250 TSLCD site zones + 18 department LANs + 6 DC zones, 15 systems.
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


if __name__ == "__main__":
    main()
