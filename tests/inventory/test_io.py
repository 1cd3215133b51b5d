"""Import and export: YAML and CSV, errors by file/row/field, all or nothing, dry run,
the older inventory format, and byte-identical round trips."""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from sqlalchemy import func, select

from inventory import load_inventory
from inventory.cli import run_export, run_import
from inventory.io import (
    export,
    import_document,
    import_paths,
    read_bytes,
    read_yaml,
    snapshot,
    to_csv,
    to_yaml,
    to_zip,
)
from inventory.tables import AssetRow, PublicRangeRow, SystemAssetRow, UnitRow
from socmon.config import Settings
from socmon.db import Database

GOOD = """\
units:
  - {code: UBND, name: UBND tỉnh, kind: province}
  - {code: SO-A, name: Sở A, parent: UBND}
sites:
  - {code: TTDL, name: Trung tâm dữ liệu, kind: data_centre, unit: SO-A}
links:
  - {code: TTDL-INET, kind: internet, site: TTDL, edge_router: rt-01, bandwidth_mbps: 200}
zones:
  - {name: dmz, cidrs: [10.0.16.0/22], site: TTDL}
  - {name: internet, cidrs: [100.64.0.0/10], internal: false}
systems:
  - code: DVC
    name: Cổng dịch vụ công
    unit: SO-A
    level: 3
    dossier_status: approved
    decision_number: 12/QĐ-UBND
    decision_date: 2024-05-01
    public_ranges:
      - 203.0.113.0/28
      - {cidr: 203.0.113.16/28, ncsc_status: registered, registered_on: 2025-01-02}
assets:
  - {name: rt-01, kind: router, unit: SO-A, site: TTDL, ips: [10.0.0.1]}
  - {name: dvc-web01, ips: [10.0.16.10], unit: SO-A, zone: dmz, systems: [DVC],
     log_sources: [nginx.access]}
"""

# Errors on purpose, one per line of interest.
BAD = """\
units:
  - {code: UBND, name: UBND tỉnh, kind: province}
  - {code: SO-A, parent: NOPE}
zones:
  - {name: dmz, cidrs: [10.0.16.0/22, 10.0.17.0/24]}
systems:
  - {code: DVC, unit: UBND, level: 9}
assets:
  - {name: web, ips: [10.0.16.999], unit: UBND, colour: blue}
  - {name: db, ips: [10.0.48.1], unit: UBND, systems: [GHOST]}
"""


def count(db: Database, model: object) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0  # type: ignore[arg-type]


def test_yaml_import_creates_everything(db: Database) -> None:
    with db.session() as s:
        result = import_document(s, read_yaml(GOOD, "inv.yaml"), actor="t")
    assert result.ok, result.errors
    assert result.counts["units"]["created"] == 2 and result.counts["assets"]["created"] == 2
    assert result.counts["public_ranges"]["created"] == 2
    with db.session() as s:
        asset = s.get(AssetRow, "dvc-web01")
        assert asset is not None and asset.log_sources == ["nginx.access"]
        assert s.scalars(select(SystemAssetRow.asset)).all() == ["dvc-web01"]
        outside = snapshot(s)["zones"][1]  # sorted: dmz, internet
        assert outside["kind"] == "external" and outside["internal"] is False
    # The same file again: nothing changes.
    with db.session() as s:
        again = import_document(s, read_yaml(GOOD, "inv.yaml"), actor="t")
    assert again.ok
    assert all(c["created"] == 0 and c["updated"] == 0 for c in again.counts.values())


def test_errors_name_file_row_and_field_and_nothing_is_kept(db: Database) -> None:
    with db.session() as s:
        result = import_document(s, read_yaml(BAD, "bad.yaml"), actor="t")
    got = {(e.file, e.row, e.field) for e in result.errors}
    assert ("bad.yaml", 3, "units.parent") in got
    assert ("bad.yaml", 5, "zones.cidrs") in got
    assert ("bad.yaml", 7, "systems.level") in got
    assert ("bad.yaml", 9, "assets.colour") in got
    assert ("bad.yaml", 10, "assets.systems") in got
    messages = " ".join(e.message for e in result.errors)
    assert "NOPE" in messages and "GHOST" in messages and "overlaps" in messages
    # UBND and the asset `db` were valid, yet nothing was imported.
    assert count(db, UnitRow) == 0 and count(db, AssetRow) == 0


def test_dry_run_reports_and_keeps_nothing(db: Database) -> None:
    with db.session() as s:
        result = import_document(s, read_yaml(GOOD, "inv.yaml"), dry_run=True, actor="t")
    assert result.ok and result.dry_run
    assert result.counts["units"] == {"created": 2, "updated": 0, "unchanged": 0}
    assert count(db, UnitRow) == 0
    with db.session() as s:
        import_document(s, read_yaml(GOOD, "inv.yaml"), actor="t")
    changed = GOOD.replace("name: Sở A,", "name: Sở A mới,")
    with db.session() as s:
        result = import_document(s, read_yaml(changed, "inv.yaml"), dry_run=True, actor="t")
    assert result.counts["units"] == {"created": 0, "updated": 1, "unchanged": 1}
    with db.session() as s:
        unit = s.get(UnitRow, "SO-A")
        assert unit is not None and unit.name == "Sở A"


def test_csv_rows_are_counted_from_the_header(db: Database, tmp_path: Path) -> None:
    d = tmp_path / "csv"
    d.mkdir()
    (d / "units.csv").write_text(
        "code,name,kind,parent\nUBND,UBND tỉnh,province,\nSO-A,Sở A,department,UBND\n",
        encoding="utf-8",
    )
    (d / "assets.csv").write_text(
        "name,unit,ips,log_sources\n"
        "web,SO-A,10.0.0.1;10.0.0.2,system.auth;nginx.access\n"
        "db,SO-A,10.0.0.2,\n",
        encoding="utf-8",
    )
    with db.session() as s:
        result = import_paths(s, [d], actor="t")
    assert [(Path(e.file).name, e.row, e.field) for e in result.errors] == [
        ("assets.csv", 3, "ips")
    ]
    assert "already belongs to asset 'web'" in result.errors[0].message
    assert count(db, UnitRow) == 0
    (d / "assets.csv").write_text(
        "name,unit,ips,log_sources\nweb,SO-A,10.0.0.1;10.0.0.2,system.auth;nginx.access\n",
        encoding="utf-8",
    )
    with db.session() as s:
        assert import_paths(s, [d], actor="t").ok
    with db.session() as s:
        web = s.get(AssetRow, "web")
        assert web is not None and web.ips == ["10.0.0.1", "10.0.0.2"]


def test_the_older_inventory_format_is_read(db: Database, tmp_path: Path) -> None:
    """A file `inventory.load` reads (no sites, no kinds, plain CIDR ranges) imports."""
    legacy = """\
units:
  - {code: so-tttt, name: Sở Thông tin và Truyền thông}
zones:
  - {name: dmz, cidrs: [10.10.10.0/24]}
  - {name: internal-servers, cidrs: [10.10.20.0/24]}
systems:
  - {code: cong-dvc, name: Cổng dịch vụ công, level: 3, unit: so-tttt,
     public_ranges: [203.0.113.0/28]}
assets:
  - {name: dvc-web-01, ips: [10.10.10.10], unit: so-tttt, zone: dmz, systems: [cong-dvc],
     kind: firewall, vendor: Fortinet, hostnames: [DVC-WEB-01]}
"""
    path = tmp_path / "legacy.yaml"
    path.write_text(legacy, encoding="utf-8")
    old = load_inventory(path)
    with db.session() as s:
        result = import_paths(s, [path], actor="t")
    assert result.ok, result.errors
    from inventory.store import load_from_db

    with db.session() as s:
        new = load_from_db(s)
    assert [a.name for a in new.assets] == [a.name for a in old.assets]
    for a, b in zip(new.assets, old.assets, strict=True):
        assert (a.ips, a.unit, a.zone, a.systems, a.kind, a.vendor, a.hostnames) == (
            b.ips,
            b.unit,
            b.zone,
            b.systems,
            b.kind,
            b.vendor,
            b.hostnames,
        )
    assert {z.name: z.kind for z in new.zones} == {
        "dmz": "dmz",
        "internal-servers": "internal_servers",
    }
    assert new.systems[0].public_ranges == old.systems[0].public_ranges


def test_round_trip_is_byte_identical(db: Database, tmp_path: Path) -> None:
    with db.session() as s:
        assert import_document(s, read_yaml(GOOD, "inv.yaml"), actor="t").ok
    with db.session() as s:
        snap = snapshot(s)
    first_yaml, first_csv = to_yaml(snap), to_csv(snap)
    first_zip = to_zip(first_csv)
    assert first_zip == to_zip(first_csv)
    # YAML export -> a second empty database -> export again.
    second = Database(f"sqlite:///{tmp_path / 'second.db'}")
    second.migrate()
    try:
        with second.session() as s:
            assert import_document(s, read_yaml(first_yaml, "export.yaml"), actor="t").ok
        with second.session() as s:
            snap2 = snapshot(s)
        assert to_yaml(snap2) == first_yaml
        assert to_csv(snap2) == first_csv
    finally:
        second.dispose()
    # CSV zip export -> a third database -> export again.
    third = Database(f"sqlite:///{tmp_path / 'third.db'}")
    third.migrate()
    try:
        with third.session() as s:
            result = import_document(s, read_bytes(first_zip, "export.zip", "csv"), actor="t")
            assert result.ok, result.errors
        with third.session() as s:
            assert to_zip(to_csv(snapshot(s))) == first_zip
            assert to_yaml(snapshot(s)) == first_yaml
    finally:
        third.dispose()


def test_ranges_and_members_of_named_systems_are_replaced(db: Database) -> None:
    with db.session() as s:
        assert import_document(s, read_yaml(GOOD, "inv.yaml"), actor="t").ok
    fewer = """\
systems:
  - {code: DVC, name: Cổng dịch vụ công, unit: SO-A, level: 3, dossier_status: approved,
     decision_number: 12/QĐ-UBND, decision_date: 2024-05-01,
     public_ranges: [203.0.113.0/28]}
"""
    with db.session() as s:
        result = import_document(s, read_yaml(fewer, "fewer.yaml"), actor="t")
    assert result.ok, result.errors
    assert result.counts["systems"]["unchanged"] == 1
    with db.session() as s:
        assert s.scalars(select(PublicRangeRow.cidr)).all() == ["203.0.113.0/28"]
        assert s.scalars(select(SystemAssetRow)).all() == []
        assert s.get(AssetRow, "dvc-web01") is not None  # import never deletes objects


def test_cli_import_and_export(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI on the configured database (the settings' SQLite file)."""
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(GOOD, encoding="utf-8")
    bad.write_text(BAD, encoding="utf-8")
    assert run_import(settings, [bad], dry_run=False) == 1
    err = capsys.readouterr().err
    assert f"{bad}:3: units.parent: unknown unit 'NOPE'" in err.splitlines()
    assert run_import(settings, [good], dry_run=True) == 0
    assert "would change" in capsys.readouterr().out
    assert run_import(settings, [good], dry_run=False) == 0
    out = tmp_path / "out"
    assert run_export(settings, "csv", out / "inv.zip") == 0
    assert run_export(settings, "yaml", out / "inv.yaml") == 0
    names = set(zipfile.ZipFile(BytesIO((out / "inv.zip").read_bytes())).namelist())
    assert "system_assets.csv" in names and "public_ranges.csv" in names
    assert "dvc-web01" in (out / "inv.yaml").read_text(encoding="utf-8")
    assert run_export(settings, "csv", out / "dir") == 0
    assert (out / "dir" / "units.csv").read_text(encoding="utf-8").startswith("code,name,kind")


def test_export_function_writes_files(db: Database, tmp_path: Path) -> None:
    with db.session() as s:
        assert import_document(s, read_yaml(GOOD, "inv.yaml"), actor="t").ok
    with db.session() as s:
        written = export(s, "csv", tmp_path / "csv")
    assert {p.name for p in written} >= {"units.csv", "system_assets.csv"}
