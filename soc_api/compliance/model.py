"""The compliance report's shape: what `GET /api/compliance/...` answers, what
`socmon compliance report --format json` writes and what the HTML/PDF renderers read.

Values are language-neutral (`pass`, `approved`, `nd85`); each carries both titles (vi, en)
where a person reads it, so one JSON renders in either language.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["pass", "fail", "unknown", "not_applicable"]


class ControlResult(BaseModel):
    """One control of the catalogue for one system (or its owner unit, organisation scope)."""

    id: str
    family: str
    title_vi: str
    title_en: str
    evidence_kind: Literal["live", "attested"]
    status: Status
    regime: str  # nd85 / nd331 / both
    confidence: str  # solid / secondary / unverified
    # Shown, not enforced: confidence "unverified" never turns into "fail" (COMPLIANCE.md).
    enforced: bool
    reason: str  # one line: why this status (in English; `reason_vi` for the Vietnamese page)
    reason_vi: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    due: date | None = None  # when an attestation expires / a periodic duty falls due
    overdue: bool = False
    source: str = ""


class LayerResult(BaseModel):
    """One of the four layers (Directive 14) for one system."""

    id: str  # LAYER1.ONSITE_FORCE ...
    layer: Literal[1, 2, 3, 4]
    title_vi: str
    title_en: str
    required: bool  # by the system's level (layer 2 and 3 from level 3)
    status: Status
    reason: str
    reason_vi: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class Summary(BaseModel):
    applicable: int
    passing: int
    failing: int
    unknown: int
    passing_pct: float  # passing / applicable x 100, 0 when nothing applies


class TrendPoint(BaseModel):
    at: datetime
    passing_pct: float


class OverdueItem(BaseModel):
    control: str
    title_vi: str
    title_en: str
    since: date | None = None


class SystemCompliance(BaseModel):
    code: str
    name: str
    unit: str
    unit_name: str
    level: int
    regime: str
    dossier_status: str
    decision_number: str | None = None
    decision_date: date | None = None
    state_secret: bool = False
    layers: list[LayerResult]
    controls: list[ControlResult]
    summary: Summary
    overdue: list[OverdueItem] = Field(default_factory=list)
    trend: list[TrendPoint] = Field(default_factory=list)
    evaluated_at: datetime


class LevelSummary(BaseModel):
    level: int
    systems: int
    approved: int  # dossier approved
    passing_pct: float  # controls passing over all systems of this level


class ProvinceSummary(BaseModel):
    systems: int
    approved: int
    passing_pct: float
    overdue: int
    by_level: list[LevelSummary]
    layers_passing: dict[str, int]  # layer id -> systems where it passes


class CatalogueInfo(BaseModel):
    version: str
    as_of: str
    controls: int


class ComplianceReport(BaseModel):
    generated_at: datetime
    catalogue: CatalogueInfo
    province: ProvinceSummary
    systems: list[SystemCompliance]
