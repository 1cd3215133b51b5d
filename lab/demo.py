"""The demo province: the sample inventory plus the evidence a province would have recorded.

`socmon up --demo` and `socmon compliance report --demo` load `lab/sample_province` (the
inventory: units, sites, links, zones, assets, 15 information systems) and then this module's
attestations and records, dated relative to today, so the compliance views show what a
manager would see in a province that is partly in order: most level-3 systems have their
monitoring contract and a recent assessment, one assessment is out of date, one system has
no national-monitoring heartbeat, the drill was held 4 months ago. Deterministic: the same
day gives the same evidence. Nothing here is used outside the demo.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.tables import AttestationRow, RecordRow, SystemRow

SAMPLE_PROVINCE = Path(__file__).parent / "sample_province" / "province.yaml"
ACTOR = "demo"
PROVIDER = "VNPT Sông Lam"  # layer-2 monitoring provider of the demo
ASSESSOR = "Công ty CP An toàn thông tin Sao Việt"  # independent layer-3 assessor


def _pick(code: str, salt: str, modulo: int) -> int:
    """A stable small number per system (the demo's variety, the same on every run)."""
    return zlib.crc32(f"{salt}:{code}".encode()) % modulo


def seed_evidence(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Add the demo's attestations and records (once: nothing when the demo's are there)."""
    now = now or datetime.now(UTC)
    if session.scalar(select(AttestationRow.id).where(AttestationRow.created_by == ACTOR)):
        return {"attestations": 0, "records": 0}
    today = now.date()
    attestations: list[AttestationRow] = []
    records: list[RecordRow] = []

    def attest(
        control: str,
        system: SystemRow | None,
        unit: str,
        doc: str,
        attester: str,
        age_days: int,
        valid_days: int | None,
        **detail: Any,
    ) -> None:
        on = today - timedelta(days=age_days)
        attestations.append(
            AttestationRow(
                control=control,
                system=system.code if system else None,
                unit=unit,
                document_ref=doc,
                attester=attester,
                attested_on=on,
                expires_on=on + timedelta(days=valid_days) if valid_days else None,
                detail=detail,
                created_by=ACTOR,
                created_at=now,
            )
        )

    def record(kind: str, system: SystemRow | None, unit: str, ago: timedelta, text: str) -> None:
        records.append(
            RecordRow(
                kind=kind,
                system=system.code if system else None,
                unit=unit,
                occurred_at=now - ago,
                summary=text,
                detail={},
                created_by=ACTOR,
                created_at=now,
            )
        )

    systems = session.scalars(select(SystemRow).order_by(SystemRow.code)).all()
    units = sorted({s.unit for s in systems})
    late_assessment = next((s.code for s in systems if s.level == 3 and not s.state_secret), None)
    for unit in units:  # layer 1: the unit's security team and response-network membership
        if _pick(unit, "layer1", 5):
            attest(
                "LAYER1.ONSITE_FORCE",
                None,
                unit,
                f"QĐ thành lập đội ứng cứu sự cố - {unit}",
                f"Thủ trưởng {unit}",
                200,
                366,
                team="Đội ứng cứu sự cố",
            )
    for system in systems:
        if system.dossier_status == "approved" and system.decision_number:
            attest(
                "ND85.LEVEL.APPROVED",
                system,
                system.unit,
                f"Quyết định {system.decision_number}",
                "UBND tỉnh",
                300,
                None,
            )
        if system.level >= 3:
            attest(
                "LAYER2.PROFESSIONAL_MONITORING",
                system,
                system.unit,
                f"Hợp đồng giám sát ATTT số {100 + _pick(system.code, 'contract', 800)}/HĐ",
                PROVIDER,
                120,
                365,
                provider=PROVIDER,
            )
            # One level-3+ system's assessment is older than a year: layer 3 fails, overdue.
            age = 430 if system.code == late_assessment else 90
            attest(
                "LAYER3.INDEPENDENT_ASSESSMENT",
                system,
                system.unit,
                f"Báo cáo kiểm tra, đánh giá ATTT {system.code}",
                ASSESSOR,
                age,
                None,
                assessor=ASSESSOR,
                findings_open=_pick(system.code, "findings", 4),
            )
        if _pick(system.code, "policy", 3):
            attest(
                "TCVN11930.MGMT.POLICY",
                system,
                system.unit,
                f"Quy chế bảo đảm ATTT {system.code}",
                f"Thủ trưởng {system.unit}",
                400,
                730,
            )
        if _pick(system.code, "heartbeat", 6):  # one system in six has lost its connector
            record(
                "connector_heartbeat",
                system,
                system.unit,
                timedelta(minutes=20 + _pick(system.code, "beat", 600)),
                "Kết nối hệ thống giám sát quốc gia (NCSC) hoạt động",
            )
        if system.level >= 3:
            record(
                "scan",
                system,
                system.unit,
                timedelta(days=30 + _pick(system.code, "scan", 200)),
                f"Rà quét lỗ hổng {system.code}",
            )
            for day in range(7):
                record(
                    "monitoring_report",
                    system,
                    system.unit,
                    timedelta(days=day, hours=1),
                    f"Báo cáo giám sát ngày - {system.code}",
                )
    for unit in units:  # every owner unit took part in the provincial drill
        record("drill", None, unit, timedelta(days=120), "Diễn tập thực chiến ATTT cấp tỉnh")
    session.add_all([*attestations, *records])
    session.flush()
    return {"attestations": len(attestations), "records": len(records)}


def load_demo(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Import the sample province (all or nothing; an update when already there) and seed
    the demo's evidence. Returns what was added; raises InventoryError on an import error."""
    from inventory import InventoryError
    from inventory.io import import_paths

    result = import_paths(session, [SAMPLE_PROVINCE], actor=ACTOR)
    if not result.ok:
        first = result.errors[0]
        raise InventoryError(f"the sample province does not import: {first}")
    systems = len(session.scalars(select(SystemRow.code)).all())
    return {"systems": systems, **seed_evidence(session, now)}
