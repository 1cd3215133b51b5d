"""The inventory service on the real database: validation, references, overlaps, cycles,
audit, and the frozen inventory enrichment reads."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory import IpLookup, store
from inventory.tables import AssetRow, PublicRangeRow, UnitRow
from soc_api.audit import verify
from soc_api.models import AuditRecord
from socmon.db import Database


def seed(s: Session) -> None:
    store.upsert_unit(s, {"code": "UBND", "name": "UBND tỉnh", "kind": "province"})
    store.upsert_unit(s, {"code": "SO-A", "name": "Sở A", "parent": "UBND"})
    store.upsert_unit(s, {"code": "SO-B", "name": "Sở B", "parent": "UBND"})
    store.upsert_unit(s, {"code": "X1", "name": "UBND xã Một", "kind": "commune", "parent": "SO-A"})
    store.upsert_site(s, {"code": "TTDL", "name": "TTDL", "kind": "data_centre", "unit": "SO-A"})
    store.upsert_zone(s, {"name": "dmz", "kind": "dmz", "cidrs": ["10.0.16.0/22"], "site": "TTDL"})
    store.upsert_zone(
        s, {"name": "db", "kind": "database", "cidrs": ["10.0.48.1/22"], "site": "TTDL"}
    )
    store.upsert_system(
        s,
        {
            "code": "DVC",
            "name": "Cổng dịch vụ công",
            "unit": "SO-A",
            "level": 3,
            "dossier_status": "approved",
            "decision_number": "12/QĐ-UBND",
            "decision_date": "2024-05-01",
            "regime": "nd85",
        },
    )
    store.upsert_system(
        s, {"code": "MAT", "name": "Văn bản mật", "unit": "SO-B", "level": 4, "state_secret": True}
    )
    store.upsert_asset(
        s,
        {
            "name": "dvc-web01",
            "unit": "SO-A",
            "site": "TTDL",
            "zone": "dmz",
            "ips": ["10.0.16.10", "2001:DB8:0:0::1"],
            "log_sources": ["nginx.access", "system.auth"],
        },
    )
    store.upsert_asset(s, {"name": "mat-db01", "unit": "SO-B", "zone": "db", "ips": ["10.0.48.5"]})
    store.set_members(s, "DVC", ["dvc-web01"])
    store.set_members(s, "MAT", ["mat-db01"])
    store.set_ranges(
        s,
        "DVC",
        [{"cidr": "203.0.113.0/28", "ncsc_status": "registered", "registered_on": "2025-01-02"}],
    )


def errors_of(exc: pytest.ExceptionInfo[store.ValidationFailed]) -> dict[str, str]:
    return {e.field: e.message for e in exc.value.errors}


def test_valid_objects_are_stored_canonically_and_audited(db: Database) -> None:
    with db.session() as s:
        seed(s)
    with db.session() as s:
        web = s.get(AssetRow, "dvc-web01")
        assert web is not None and web.ips == ["10.0.16.10", "2001:db8::1"]
        assert web.kind == "server" and web.log_sources == ["nginx.access", "system.auth"]
        zones = {z.name: z.cidrs for z in store.load_from_db(s).zones}
        assert zones["db"] == ("10.0.48.0/22",)  # host bits cleared
        actions = [r.action for r in s.scalars(select(AuditRecord).order_by(AuditRecord.id))]
        assert "inventory.unit.create" in actions and "inventory.system.ranges" in actions
        assert actions.count("inventory.asset.create") == 2
        assert verify(s)[0]
    # Writing the same values again changes nothing and audits nothing.
    with db.session() as s:
        n = len(list(s.scalars(select(AuditRecord))))
        outcome, _ = store.upsert_unit(s, {"code": "SO-A", "name": "Sở A", "parent": "UBND"})
        assert outcome == "unchanged"
        assert len(list(s.scalars(select(AuditRecord)))) == n


def test_every_field_error_is_reported_at_once(db: Database) -> None:
    with db.session() as s:
        seed(s)
        with pytest.raises(store.ValidationFailed) as exc:
            store.upsert_asset(
                s,
                {
                    "name": "bad one",
                    "kind": "toaster",
                    "unit": "SO-Z",
                    "zone": "nowhere",
                    "ips": ["10.0.0.300"],
                    "virtual": "maybe",
                },
            )
        errs = errors_of(exc)
        assert set(errs) == {"name", "kind", "unit", "zone", "ips", "virtual"}
        assert "toaster" in errs["kind"] and "SO-Z" in errs["unit"]
        with pytest.raises(store.ValidationFailed) as exc2:
            store.upsert_system(
                s,
                {
                    "code": "X",
                    "unit": "SO-A",
                    "level": 6,
                    "dossier_status": "approved",
                    "regime": "x",
                },
            )
        assert set(errors_of(exc2)) == {"level", "decision_number", "regime"}


def test_duplicate_address_is_refused(db: Database) -> None:
    with db.session() as s:
        seed(s)
        with pytest.raises(store.ValidationFailed) as exc:
            store.upsert_asset(s, {"name": "other", "unit": "SO-A", "ips": ["2001:db8::0:1"]})
        assert "dvc-web01" in errors_of(exc)["ips"]


def test_zone_overlap_within_a_site_is_an_error(db: Database) -> None:
    with db.session() as s:
        seed(s)
        with pytest.raises(store.ValidationFailed) as exc:
            store.upsert_zone(s, {"name": "inner", "cidrs": ["10.0.17.0/24"], "site": "TTDL"})
        assert "dmz" in errors_of(exc)["cidrs"]
        with pytest.raises(store.ValidationFailed):
            store.upsert_zone(s, {"name": "self", "cidrs": ["10.9.0.0/16", "10.9.1.0/24"]})
        # Another site (or none) may reuse the space: sites are checked one by one.
        store.upsert_site(s, {"code": "X1-TS", "kind": "commune", "unit": "X1"})
        outcome, _ = store.upsert_zone(
            s, {"name": "lan-x1", "cidrs": ["10.0.17.0/24"], "site": "X1-TS"}
        )
        assert outcome == "created"
        # Updating a zone does not overlap with itself.
        outcome, _ = store.upsert_zone(
            s, {"name": "dmz", "kind": "dmz", "cidrs": ["10.0.16.0/23"], "site": "TTDL"}
        )
        assert outcome == "updated"


def test_public_range_overlap_with_another_system(db: Database) -> None:
    with db.session() as s:
        seed(s)
        with pytest.raises(store.ValidationFailed) as exc:
            store.set_ranges(s, "MAT", ["203.0.113.8/29"])
        assert "DVC" in exc.value.errors[0].message and exc.value.errors[0].index == 0
        with pytest.raises(store.ValidationFailed) as exc2:
            store.set_ranges(s, "MAT", [{"cidr": "198.51.100.0/28", "ncsc_status": "registered"}])
        assert exc2.value.errors[0].field == "public_ranges.registered_on"
        changes = store.set_ranges(s, "MAT", ["198.51.100.0/28"])
        assert changes["added"] == ["198.51.100.0/28"]
        row = s.scalars(select(PublicRangeRow).where(PublicRangeRow.system == "MAT")).one()
        assert row.ncsc_status == "unregistered"
        changes = store.set_ranges(
            s,
            "DVC",
            [
                {
                    "cidr": "203.0.113.0/28",
                    "ncsc_status": "registered",
                    "registered_on": "2025-01-02",
                }
            ],
        )
        assert changes["unchanged"] == ["203.0.113.0/28"] and not changes["added"]


def test_reparenting_refuses_cycles_and_descendants_follow(db: Database) -> None:
    with db.session() as s:
        seed(s)
        assert store.descendants(s, ["UBND"]) == {"UBND", "SO-A", "SO-B", "X1"}
        assert store.descendants(s, ["SO-A"]) == {"SO-A", "X1"}
        with pytest.raises(store.ValidationFailed) as exc:
            store.reparent_unit(s, "SO-A", "X1", actor="t")
        assert "cycle" in errors_of(exc)["parent"]
        with pytest.raises(store.ValidationFailed):
            store.reparent_unit(s, "SO-A", "SO-A", actor="t")
        store.reparent_unit(s, "X1", "SO-B", actor="t")  # the 2025 merger moves a commune
        assert store.descendants(s, ["SO-B"]) == {"SO-B", "X1"}
        assert store.descendants(s, ["SO-A"]) == {"SO-A"}
        row = s.get(UnitRow, "X1")
        assert row is not None and row.parent == "SO-B"


def test_delete_refused_while_used(db: Database) -> None:
    with db.session() as s:
        seed(s)
        with pytest.raises(store.InUse):
            store.delete_object(s, "zone", "dmz", actor="t")
        with pytest.raises(store.NotFound):
            store.delete_object(s, "asset", "nope", actor="t")
        store.delete_object(s, "asset", "dvc-web01", actor="t")
        assert store.members(s).get("DVC") is None
        store.delete_object(s, "zone", "dmz", actor="t")
        store.delete_object(s, "system", "DVC", actor="t")
        assert s.scalars(select(PublicRangeRow)).all() == []


def test_load_from_db_feeds_the_lookup(db: Database) -> None:
    with db.session() as s:
        seed(s)
    with db.session() as s:
        inv = store.load_from_db(s)
    dvc = inv.system("DVC")
    assert dvc is not None and dvc.decision_date == date(2024, 5, 1)
    assert dvc.public_ranges == ("203.0.113.0/28",) and dvc.regime == "nd85"
    lookup = IpLookup(inv)
    web = lookup.lookup("10.0.16.10")
    assert web is not None
    assert (web.asset, web.zone, web.site, web.systems, web.unit, web.level) == (
        "dvc-web01",
        "dmz",
        "TTDL",
        ("DVC",),
        "SO-A",
        3,
    )
    secret = lookup.lookup("10.0.48.5")
    assert secret is not None and secret.state_secret and secret.level == 4
    by_range = lookup.lookup("203.0.113.5")
    assert by_range is not None and by_range.systems == ("DVC",) and by_range.asset is None
    zone_only = lookup.lookup("10.0.17.1")
    assert zone_only is not None and zone_only.zone == "dmz" and zone_only.asset is None
    assert lookup.lookup("192.0.2.1") is None
    assert {a.name for a in inv.assets} == {"dvc-web01", "mat-db01"}
    assert {s.code for s in inv.sites} == {"TTDL"}
