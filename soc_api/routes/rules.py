"""Detection rules: health of every rule file, and per-rule enable/disable and tuning.

Who may do what (DOMAIN.md §5): reading the rule list is open to every role, since rule health
carries no agency's data and sysadmins fixing log gaps, managers and the drill team all need to
know what is detected. Changing a rule (switching it on or off, its false-positive exceptions)
changes what the SOC sees, so it is kept to the provincial staff: ``admin`` and ``analyst``.
Provider analysts, sysadmins, managers and the drill team get 403.

Changes are stored in ``rule_settings`` (migration 0003), laid over the configuration's
``rules_policy`` (a stored value wins; ``null`` returns the rule to the configuration), applied
to the running catalog at once, and audited as ``rule.update``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from detections.catalog import (
    LEVELS,
    RULE_STATUSES,
    Exception_,
    RuleCatalog,
    RuleEntry,
    RuleOverride,
    normalise_exception,
)
from soc_api import audit
from soc_api.deps import CurrentUser, WriteRoute, get_db
from soc_api.errors import ApiProblem, ErrorResponse
from soc_api.labels import RULE_KIND, RULE_STATUS, SEVERITY, label
from soc_api.models import TZDateTime
from socmon.db import Base, Database

EDIT_ROLES = frozenset({"admin", "analyst"})
MAX_EXCEPTIONS = 200
MAX_VALUES = 500

router = APIRouter(
    route_class=WriteRoute,
    prefix="/rules",
    tags=["rules"],
    responses={401: {"model": ErrorResponse}},
)


class RuleSetting(Base):
    """A per-rule change made through the API (NULL = the configuration decides)."""

    __tablename__ = "rule_settings"

    rule_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    enabled: Mapped[bool | None] = mapped_column(default=None)
    exceptions: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime)
    updated_by: Mapped[str] = mapped_column(String(120))

    def override(self) -> RuleOverride:
        return RuleOverride(enabled=self.enabled, exceptions=self.exceptions)


def load_overrides(session: Session) -> dict[str, RuleOverride]:
    """Every stored per-rule change, to lay over the configured policy."""
    return {row.rule_id: row.override() for row in session.scalars(select(RuleSetting))}


def get_catalog(request: Request) -> RuleCatalog:
    catalog: RuleCatalog | None = getattr(request.app.state, "catalog", None)
    if catalog is None:
        raise ApiProblem(503, "unavailable", "no rule catalog is loaded in this process")
    return catalog


CatalogDep = Annotated[RuleCatalog, Depends(get_catalog)]


class Labels(BaseModel):
    vi: str
    en: str


class Logsource(BaseModel):
    category: str | None = None
    product: str | None = None
    service: str | None = None


class RulePublic(BaseModel):
    key: str = Field(description="the rule id (or the file path of a rule without one)")
    id: str | None
    kind: str
    kind_label: Labels | None
    title: str
    path: str
    line: int | None
    status: str
    status_label: Labels | None
    reason: str | None
    enabled: bool = Field(description="the selection policy lets the rule run")
    level: str | None
    level_label: Labels | None
    sigma_status: str | None
    logsource: Logsource
    tags: list[str]
    notes: list[str]
    exceptions: list[Exception_] = Field(description="effective false-positive exceptions")
    match_count: int
    last_match: datetime | None


class RulesPublic(BaseModel):
    data: list[RulePublic]
    count: int
    counts: dict[str, int] = Field(description="rules per status in the whole catalog")


class RuleOverridePublic(BaseModel):
    enabled: bool | None
    exceptions: list[Exception_] | None
    updated_at: datetime
    updated_by: str


class RuleConfigured(BaseModel):
    enabled: bool | None = Field(description="true/false when the configuration names the rule")
    exceptions: list[Exception_]


class RuleDetail(RulePublic):
    configured: RuleConfigured
    override: RuleOverridePublic | None


class RuleUpdate(BaseModel):
    """Fields to change; ``null`` returns that setting to the configuration."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    exceptions: list[dict[str, Any]] | None = Field(
        default=None,
        description='false-positive exceptions, e.g. [{"winlog.event_data.User": ["svc_backup"]}]',
    )


def to_public(catalog: RuleCatalog, e: RuleEntry) -> dict[str, Any]:
    return {
        "key": e.key,
        "id": e.id,
        "kind": e.kind,
        "kind_label": label(RULE_KIND, e.kind),
        "title": e.title,
        "path": str(e.path),
        "line": e.line,
        "status": e.status,
        "status_label": label(RULE_STATUS, e.status),
        "reason": e.reason,
        "enabled": e.enabled,
        "level": e.level,
        "level_label": label(SEVERITY, e.level),
        "sigma_status": e.sigma_status,
        "logsource": e.logsource,
        "tags": list(e.tags),
        "notes": list(e.notes),
        "exceptions": catalog.exceptions(e.key),
        "match_count": e.match_count,
        "last_match": e.last_match,
    }


def _logsource_selects(wanted: str, e: RuleEntry) -> bool:
    """``windows`` matches any part; ``product:windows`` matches that part only."""
    part, _, value = wanted.rpartition(":")
    value = value.lower()
    parts = [part] if part else ["category", "product", "service"]
    return any((e.logsource.get(p) or "").lower() == value for p in parts)


@router.get("", response_model=RulesPublic, summary="Every rule file and what became of it")
def list_rules(
    catalog: CatalogDep,
    _user: CurrentUser,
    status: Annotated[str | None, Query(description="compiled, unsupported, error, …")] = None,
    level: Annotated[str | None, Query(description="Sigma level")] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="text in id, title, path or tags")
    ] = None,
    logsource: Annotated[
        str | None, Query(max_length=200, description="windows, or product:windows")
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    if status is not None and status not in RULE_STATUSES:
        raise ApiProblem(
            422, "invalid_request", f"unknown status {status!r}; one of {', '.join(RULE_STATUSES)}"
        )
    if level is not None and level not in LEVELS:
        raise ApiProblem(
            422, "invalid_request", f"unknown level {level!r}; one of {', '.join(LEVELS)}"
        )
    if logsource is not None:
        part = logsource.rpartition(":")[0]
        if part and part not in ("category", "product", "service"):
            raise ApiProblem(
                422, "invalid_request", f"logsource part {part!r}: category, product or service"
            )
    needle = q.lower() if q else None
    rows = []
    for e in catalog.entries:
        if status is not None and e.status != status:
            continue
        if level is not None and e.level != level:
            continue
        if logsource is not None and not _logsource_selects(logsource, e):
            continue
        if needle is not None:
            text = " ".join([e.key, e.title, str(e.path), *e.tags]).lower()
            if needle not in text:
                continue
        rows.append(e)
    return {
        "data": [to_public(catalog, e) for e in rows[offset : offset + limit]],
        "count": len(rows),
        "counts": catalog.counts(),
    }


def _detail(catalog: RuleCatalog, e: RuleEntry, row: RuleSetting | None) -> dict[str, Any]:
    base = catalog.base_policy
    configured = False if e.key in base.disabled else True if e.key in base.enabled else None
    out = to_public(catalog, e)
    out["configured"] = {"enabled": configured, "exceptions": base.exceptions(e.key)}
    out["override"] = (
        {
            "enabled": row.enabled,
            "exceptions": row.exceptions,
            "updated_at": row.updated_at,
            "updated_by": row.updated_by,
        }
        if row is not None
        else None
    )
    return out


def _entry(catalog: RuleCatalog, key: str) -> RuleEntry:
    e = catalog.get(key)
    if e is None:
        raise ApiProblem(404, "not_found", f"rule {key!r} not found")
    return e


@router.get("/{key:path}", response_model=RuleDetail, responses={404: {"model": ErrorResponse}})
def get_rule(
    key: str,
    catalog: CatalogDep,
    _user: CurrentUser,
    db: Annotated[Database, Depends(get_db)],
) -> dict[str, Any]:
    e = _entry(catalog, key)
    with db.session() as session:
        row = session.get(RuleSetting, e.key)
        return _detail(catalog, e, row)


@router.patch(
    "/{key:path}",
    response_model=RuleDetail,
    summary="Switch a rule on or off, or set its false-positive exceptions (admin, analyst)",
    responses={
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)
def update_rule(
    key: str,
    body: RuleUpdate,
    catalog: CatalogDep,
    user: CurrentUser,
    db: Annotated[Database, Depends(get_db)],
) -> dict[str, Any]:
    if user.role not in EDIT_ROLES:
        raise ApiProblem(
            403, "forbidden", f"changing rules needs the {' or '.join(sorted(EDIT_ROLES))} role"
        )
    e = _entry(catalog, key)
    changes = body.model_fields_set
    if not changes:
        raise ApiProblem(422, "invalid_request", "nothing to change: give enabled or exceptions")
    if e.kind == "filter":
        raise ApiProblem(
            422,
            "invalid_request",
            "a global filter is applied when the rules load; change its file instead",
        )
    exceptions = _checked_exceptions(body.exceptions) if "exceptions" in changes else None

    with db.session() as session:
        row = session.get(RuleSetting, e.key)
        previous = {"enabled": row.enabled, "exceptions": row.exceptions} if row else None
        if row is None:
            row = RuleSetting(rule_id=e.key, enabled=None, exceptions=None)
            session.add(row)
        if "enabled" in changes:
            row.enabled = body.enabled
        if "exceptions" in changes:
            row.exceptions = exceptions
        row.updated_at = datetime.now(UTC)
        row.updated_by = user.name
        detail: dict[str, Any] = {"rule_key": e.key, "previous": previous}
        for name in sorted(changes):
            detail[name] = getattr(row, name)
        audit.record(session, user.name, "rule.update", "rule", e.key[:64], **detail)
        override = row.override()
        if override == RuleOverride():
            session.delete(row)
            stored: RuleSetting | None = None
        else:
            stored = row
        session.flush()
        # Committed when the block ends; the running catalog follows right after.
    catalog.set_override(e.key, override)
    return _detail(catalog, e, stored)


def _checked_exceptions(raw: list[dict[str, Any]] | None) -> list[Exception_] | None:
    if raw is None:
        return None
    if len(raw) > MAX_EXCEPTIONS:
        raise ApiProblem(422, "invalid_request", f"at most {MAX_EXCEPTIONS} exceptions per rule")
    out: list[Exception_] = []
    for i, item in enumerate(raw):
        try:
            exc = normalise_exception(item)
        except ValueError as err:
            raise ApiProblem(422, "invalid_request", f"exceptions.{i}: {err}") from err
        if sum(len(v) for v in exc.values()) > MAX_VALUES:
            raise ApiProblem(422, "invalid_request", f"exceptions.{i}: at most {MAX_VALUES} values")
        out.append(exc)
    return out
