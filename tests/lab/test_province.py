"""The sample province: the committed files are a fresh generation, they import cleanly
(YAML and CSV), and the province has the scale and the variety DOMAIN.md describes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from collectors.registry import DATASETS
from inventory import IpLookup
from inventory.io import import_paths, snapshot, to_csv, to_yaml
from inventory.store import load_from_db
from lab.province import generate, render
from socmon.db import Database

SAMPLE = Path(__file__).resolve().parents[2] / "lab" / "sample_province"
KNOWN_LOG_SOURCES = set(DATASETS.values()) | {"windows.other", "journald"}


@pytest.fixture(scope="module")
def fresh() -> tuple[str, dict[str, str]]:
    return render(generate())


def test_committed_sample_equals_a_fresh_generation(fresh: tuple[str, dict[str, str]]) -> None:
    text, files = fresh
    assert (SAMPLE / "province.yaml").read_text(encoding="utf-8") == text, (
        "regenerate: .venv/bin/python -m lab.province --out lab/sample_province"
    )
    committed = {p.name: p.read_text(encoding="utf-8") for p in (SAMPLE / "csv").glob("*.csv")}
    assert committed == files


def test_generation_is_deterministic() -> None:
    assert generate() == generate()
    assert generate(1) != generate()


@pytest.mark.parametrize("source", ["province.yaml", "csv"])
def test_sample_imports_cleanly(db: Database, source: str) -> None:
    with db.session() as s:
        result = import_paths(s, [SAMPLE / source], actor="test")
    assert result.ok, [str(e) for e in result.errors[:10]]
    with db.session() as s:
        snap = snapshot(s)
        inv = load_from_db(s)
    # What was imported exports back to the committed bytes.
    assert to_yaml(snap) == (SAMPLE / "province.yaml").read_text(encoding="utf-8")
    assert to_csv(snap)["assets.csv"] == (SAMPLE / "csv" / "assets.csv").read_text(encoding="utf-8")
    servers = [a for a in inv.assets if a.kind == "server"]
    physical = [a for a in servers if not a.virtual]
    assert 35 <= len(physical) <= 45 and 240 <= len(servers) - len(physical) <= 260
    firewalls = Counter(a.unit == "TTCDS" for a in inv.assets if a.kind == "firewall")
    assert firewalls[True] == 4 and firewalls[False] == 20
    assert any(a.kind == "router" for a in inv.assets) and any(
        a.kind == "sensor" for a in inv.assets
    )
    tslcd_sites = {link.site for link in inv.links if link.kind == "tslcd"} - {"TTDL"}
    assert len(tslcd_sites) == 250
    assert len([link for link in inv.links if link.kind == "wan"]) == 18 + 1
    assert len(inv.systems) == 15
    assert {s.level for s in inv.systems} == {2, 3, 4}
    assert {s.regime for s in inv.systems} == {"nd85", "nd331"}
    assert len({s.dossier_status for s in inv.systems}) >= 4
    assert [s.code for s in inv.systems if s.state_secret] == ["QLVB-MAT"]
    statuses = {r["ncsc_status"] for s in snap["systems"] for r in s["public_ranges"]}
    assert statuses == {"registered", "submitted", "unregistered"}
    assert {z.kind for z in inv.zones} >= {
        "outside_edge",
        "soc",
        "core",
        "dmz",
        "internal_servers",
        "database",
        "storage",
        "management",
        "agency_lan",
    }
    assert all(a.log_sources for a in inv.assets)
    assert {ls for a in inv.assets for ls in a.log_sources} <= KNOWN_LOG_SOURCES
    assert any("ệ" in s.name or "ơ" in s.name for s in inv.systems)  # Vietnamese diacritics
    # Every asset address resolves to its asset, zone and site.
    lookup = IpLookup(inv)
    for a in inv.assets:
        ctx = lookup.lookup(a.ips[0])
        assert ctx is not None and ctx.asset == a.name and ctx.site == a.site
