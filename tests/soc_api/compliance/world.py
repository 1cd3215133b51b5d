"""A small province for the compliance tests: units, assets, systems written with the ORM, and
source-health documents and events written to the real store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from collectors.health import health_doc_id
from inventory.tables import (
    AssetRow,
    AttestationRow,
    PublicRangeRow,
    RecordRow,
    SiteRow,
    SystemAssetRow,
    SystemRow,
    UnitRow,
)
from soc_api.compliance.catalog import Catalogue, load_catalogue
from socmon.corpus import default_compliance_catalogue
from socmon.store import Store

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
A = "SO-TTTT"  # department of information and communications
B = "SO-YTE"  # department of health

# asset -> (unit, kind, role, ips, log sources)
ASSETS: dict[str, tuple[str, str, str, list[str], list[str]]] = {
    "dc-web01": (A, "server", "web", ["10.10.1.10"], ["nginx"]),
    "dc-fw01": (A, "firewall", "perimeter", ["10.10.0.1"], ["fortigate"]),
    "dc-ids01": (A, "ids", "sensor", ["10.10.0.2"], ["suricata"]),
    "dc-db01": (A, "server", "database", ["10.10.2.10"], ["linux_auth"]),
    "yt-app01": (B, "server", "app", ["10.20.1.10"], ["windows.security"]),
    "mat-srv01": (A, "server", "app", ["10.30.1.10"], ["linux_auth"]),
}
# system -> (unit, level, regime, dossier, state secret, members)
SYSTEMS: dict[str, tuple[str, int, str, str, bool, list[str]]] = {
    "DVC": (A, 3, "nd85", "approved", False, ["dc-web01", "dc-fw01", "dc-ids01", "dc-db01"]),
    "YTE": (B, 2, "nd331", "submitted", False, ["yt-app01"]),
    "QLVB-MAT": (A, 3, "nd85", "approved", True, ["mat-srv01"]),
}


def catalogue() -> Catalogue:
    path = default_compliance_catalogue()
    assert path is not None, "shared/data/compliance/controls.yaml beside the repository"
    return load_catalogue(path)


def add_world(s: Session) -> None:
    for code, name in ((A, "Sở Thông tin và Truyền thông"), (B, "Sở Y tế")):
        s.add(UnitRow(code=code, name=name, kind="department", parent=None, updated_at=NOW))
    s.flush()
    s.add(SiteRow(code="dc", name="Trung tâm dữ liệu", kind="data_centre", unit=A, updated_at=NOW))
    s.flush()
    for name, (unit, kind, role, ips, sources) in ASSETS.items():
        s.add(
            AssetRow(
                name=name,
                kind=kind,
                role=role,
                unit=unit,
                site="dc" if unit == A else None,
                ips=ips,
                hostnames=[name],
                log_sources=sources,
                updated_at=NOW,
            )
        )
    s.flush()
    for code, (unit, level, regime, dossier, secret, members) in SYSTEMS.items():
        s.add(
            SystemRow(
                code=code,
                name=f"System {code}",
                unit=unit,
                level=level,
                dossier_status=dossier,
                decision_number="123/QĐ-UBND" if dossier == "approved" else None,
                decision_date=date(2025, 3, 1) if dossier == "approved" else None,
                regime=regime,
                state_secret=secret,
                updated_at=NOW,
            )
        )
        s.flush()
        for m in members:
            s.add(SystemAssetRow(system=code, asset=m))
    s.add(
        PublicRangeRow(system="DVC", cidr="203.0.113.0/28", ncsc_status="submitted", updated_at=NOW)
    )
    s.flush()


def health_row(host: str, source: str, last_seen: datetime, first_seen: datetime) -> dict[str, Any]:
    return {
        "host": host,
        "source": source,
        "collector": "syslog" if "://" in source else "file",
        "first_seen": first_seen.timestamp(),
        "last_seen": last_seen.timestamp(),
        "eps": 0.0,
        "events": 10,
        "bytes": 1000,
        "parse_failures": 0,
        "drops": 0,
        "@timestamp": last_seen.isoformat().replace("+00:00", "Z"),
    }


def put_health(store: Store, rows: Sequence[dict[str, Any]]) -> None:
    store.upsert(store.sources_target, [(health_doc_id(r["host"], r["source"]), r) for r in rows])
    store.refresh(store.sources_target)


def put_events(store: Store, dataset: str, docs: Sequence[tuple[str, dict[str, Any]]]) -> None:
    target = store.events_target(dataset)
    result = store.bulk_create(target, list(docs))
    assert result.created == len(docs), result
    store.refresh(target)


def event(ts: datetime, dataset: str, **fields: Any) -> dict[str, Any]:
    return {
        "@timestamp": ts.isoformat().replace("+00:00", "Z"),
        "event": {"dataset": dataset},
        **fields,
    }


def all_sources_live(store: Store, at: datetime = NOW) -> None:
    """Every DVC asset reports: syslog senders by address, the servers by their host name."""
    since = at - timedelta(days=200)
    put_health(
        store,
        [
            health_row("soc-col01", "syslog+udp://10.10.0.1", at - timedelta(minutes=5), since),
            health_row("soc-col01", "syslog+udp://10.10.0.2", at - timedelta(minutes=5), since),
            health_row("dc-web01", "/var/log/nginx/access.log", at - timedelta(minutes=1), since),
            health_row("dc-db01", "/var/log/auth.log", at - timedelta(minutes=1), since),
        ],
    )


def attest(
    s: Session,
    control: str,
    *,
    unit: str = A,
    system: str | None = "DVC",
    attested_on: date = date(2026, 6, 1),
    expires_on: date | None = None,
    attester: str = "Sở TTTT",
    detail: dict[str, Any] | None = None,
) -> AttestationRow:
    row = AttestationRow(
        control=control,
        system=system,
        unit=unit,
        document_ref=f"doc-{control}",
        attester=attester,
        attested_on=attested_on,
        expires_on=expires_on,
        detail=detail or {},
        created_by="test",
        created_at=NOW,
    )
    s.add(row)
    s.flush()
    return row


def record(
    s: Session, kind: str, at: datetime, *, unit: str = A, system: str | None = "DVC", **detail: Any
) -> RecordRow:
    row = RecordRow(
        kind=kind,
        system=system,
        unit=unit,
        occurred_at=at,
        summary=f"{kind} at {at.isoformat()}",
        detail=detail,
        created_by="test",
        created_at=NOW,
    )
    s.add(row)
    s.flush()
    return row
