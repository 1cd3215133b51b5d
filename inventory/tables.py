"""The inventory and compliance tables (SQL, migration 0008): the state managers edit.

The frozen records of `inventory.model` remain what enrichment reads; `inventory.store`
builds them from these tables (one source of truth: the database, filled by import or the
API). Codes are the keys people use (unit `SO-TTTT`, system `DVC`, asset `dc-web01`);
integer ids are only for rows nobody names (ranges, attestations, statuses).

Vietnamese terms (DOMAIN.md) are the enum values' labels, kept in `inventory.vocab`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from socmon.db import Base

TZDateTime = DateTime(timezone=True)


class UnitRow(Base):
    """An owner unit (đơn vị chủ quản / vận hành): province, department, district, commune.

    `parent` may change (the 2025 merger of provinces, districts and communes): scope checks
    walk the tree at query time, nothing caches a path.
    """

    __tablename__ = "inv_units"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))  # vocab.UNIT_KINDS
    parent: Mapped[str | None] = mapped_column(
        ForeignKey("inv_units.code", ondelete="RESTRICT"), index=True, default=None
    )
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)


class SiteRow(Base):
    """A place with equipment: the data centre, a department, a district, a commune."""

    __tablename__ = "inv_sites"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32))  # vocab.SITE_KINDS
    unit: Mapped[str] = mapped_column(ForeignKey("inv_units.code"), index=True)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)


class LinkRow(Base):
    """A TSLCD, WAN or Internet link of a site: its edge router and (if any) its sensor."""

    __tablename__ = "inv_links"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # vocab.LINK_KINDS: tslcd / wan / internet
    site: Mapped[str] = mapped_column(ForeignKey("inv_sites.code"), index=True)
    edge_router: Mapped[str | None] = mapped_column(String(120), default=None)  # asset name
    sensor: Mapped[str | None] = mapped_column(String(120), default=None)  # TAP/SPAN asset
    bandwidth_mbps: Mapped[float | None] = mapped_column(Float, default=None)
    provider: Mapped[str | None] = mapped_column(String(120), default=None)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)


class ZoneRow(Base):
    """A network zone with its CIDRs (the default set of DOMAIN.md: vocab.ZONE_KINDS)."""

    __tablename__ = "inv_zones"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    cidrs: Mapped[list[Any]]  # ["10.10.1.0/24", ...]
    internal: Mapped[bool] = mapped_column(default=True)
    site: Mapped[str | None] = mapped_column(ForeignKey("inv_sites.code"), default=None)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)


class AssetRow(Base):
    """A server, firewall, router, switch, storage or sensor."""

    __tablename__ = "inv_assets"

    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # vocab.ASSET_KINDS
    role: Mapped[str] = mapped_column(String(64), default="server")
    unit: Mapped[str] = mapped_column(ForeignKey("inv_units.code"), index=True)
    site: Mapped[str | None] = mapped_column(ForeignKey("inv_sites.code"), default=None)
    zone: Mapped[str | None] = mapped_column(ForeignKey("inv_zones.name"), default=None)
    ips: Mapped[list[Any]]  # canonical text addresses
    hostnames: Mapped[list[Any]]  # lower case
    os: Mapped[str | None] = mapped_column(String(120), default=None)
    vendor: Mapped[str | None] = mapped_column(String(120), default=None)
    product: Mapped[str | None] = mapped_column(String(120), default=None)
    virtual: Mapped[bool] = mapped_column(default=False)
    # Log sources this asset is expected to send: dataset names (`windows.security`,
    # `linux_auth`, `fortigate`, ...). Compliance checks that each was seen recently.
    log_sources: Mapped[list[Any]]
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)


class SystemRow(Base):
    """An information system (hệ thống thông tin) with its security level and dossier."""

    __tablename__ = "inv_systems"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    unit: Mapped[str] = mapped_column(ForeignKey("inv_units.code"), index=True)
    level: Mapped[int] = mapped_column(Integer)  # cấp độ 1-5
    dossier_status: Mapped[str] = mapped_column(String(32))  # controls.yaml dossier_statuses
    decision_number: Mapped[str | None] = mapped_column(String(120), default=None)
    decision_date: Mapped[date | None] = mapped_column(Date, default=None)
    # The rule set the level was approved under: nd85 (Decree 85/2016) or nd331 (Decree 331).
    regime: Mapped[str] = mapped_column(String(16))
    state_secret: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)


class SystemAssetRow(Base):
    __tablename__ = "inv_system_assets"

    system: Mapped[str] = mapped_column(
        ForeignKey("inv_systems.code", ondelete="CASCADE"), primary_key=True
    )
    asset: Mapped[str] = mapped_column(
        ForeignKey("inv_assets.name", ondelete="CASCADE"), primary_key=True, index=True
    )


class PublicRangeRow(Base):
    """A public IP range of a system and its registration with NCSC (layer 4)."""

    __tablename__ = "inv_public_ranges"
    __table_args__ = (UniqueConstraint("system", "cidr"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(
        ForeignKey("inv_systems.code", ondelete="CASCADE"), index=True
    )
    cidr: Mapped[str] = mapped_column(String(64))
    ncsc_status: Mapped[str] = mapped_column(String(16))  # vocab.NCSC_STATUSES
    registered_on: Mapped[date | None] = mapped_column(Date, default=None)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)


class AttestationRow(Base):
    """Attested evidence: a document that shows a control (or a layer) is met.

    `system` NULL with `unit` set: an organisation-scope duty of that unit. `detail` holds
    what the control needs beyond the document (the layer-2 provider's name and licence, the
    layer-3 assessor and open findings, the layer-1 team's contacts...).
    """

    __tablename__ = "compliance_attestations"
    __table_args__ = (Index("ix_compliance_attestations_system_control", "system", "control"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    control: Mapped[str] = mapped_column(String(120), index=True)  # control or layer id
    system: Mapped[str | None] = mapped_column(
        ForeignKey("inv_systems.code", ondelete="CASCADE"), default=None
    )
    unit: Mapped[str] = mapped_column(ForeignKey("inv_units.code"), index=True)
    document_ref: Mapped[str] = mapped_column(String(300))
    attester: Mapped[str] = mapped_column(String(200))
    attested_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date, default=None)
    detail: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
    revoked: Mapped[bool] = mapped_column(default=False)


class ControlStatusRow(Base):
    """The latest status of one control for one system (or unit, for organisation scope)."""

    __tablename__ = "compliance_status"
    __table_args__ = (UniqueConstraint("subject", "control"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "system:<code>" or "unit:<code>"
    subject: Mapped[str] = mapped_column(String(140), index=True)
    unit: Mapped[str] = mapped_column(String(64), index=True)
    control: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16))  # pass / fail / unknown / not_applicable
    evidence: Mapped[dict[str, Any]]
    catalogue_version: Mapped[str] = mapped_column(String(64))
    evaluated_at: Mapped[datetime] = mapped_column(TZDateTime)
    changed_at: Mapped[datetime] = mapped_column(TZDateTime)


class ComplianceSnapshotRow(Base):
    """One evaluation of one system, summed: the trend a manager reads."""

    __tablename__ = "compliance_snapshots"
    __table_args__ = (Index("ix_compliance_snapshots_system_at", "system", "evaluated_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(64), index=True)
    evaluated_at: Mapped[datetime] = mapped_column(TZDateTime)
    passing: Mapped[int]
    failing: Mapped[int]
    unknown: Mapped[int]
    applicable: Mapped[int]
    detail: Mapped[dict[str, Any]]  # {"layers": {"LAYER1...": "pass", ...}}


class RecordRow(Base):
    """Free-form record of an event the live checks need and socmon cannot observe itself:
    a drill held, a monitoring report sent, a scan run (kind, subject, when)."""

    __tablename__ = "compliance_records"
    __table_args__ = (Index("ix_compliance_records_kind_at", "kind", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # vocab.RECORD_KINDS: drill, scan, report...
    system: Mapped[str | None] = mapped_column(
        ForeignKey("inv_systems.code", ondelete="CASCADE"), default=None, index=True
    )
    unit: Mapped[str] = mapped_column(ForeignKey("inv_units.code"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(TZDateTime)
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(TZDateTime)
