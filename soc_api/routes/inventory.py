"""The inventory: units, sites, links, zones, assets, information systems (with member assets
and public ranges); import and export.

Who may do what (ARCHITECTURE §7, DOMAIN.md §5):

| Operation                                    | admin | analyst | provider-analyst | sysadmin        | manager | drill |
|----------------------------------------------|-------|---------|------------------|-----------------|---------|-------|
| list, detail, export (scoped)                | yes   | yes     | yes              | yes             | yes     | –     |
| create, update, delete assets                | yes   | –       | –                | own units only  | –       | –     |
| create, update, delete units, sites, links,  | yes   | –       | –                | –               | –       | –     |
| zones, systems (members, ranges); import     |       |         |                  |                 |         |       |

Reasons: analysts need the context of what they triage, sysadmins fix their servers (and
keep their assets' records right), managers review systems and dossiers; the drill team
scores detection in a lab and needs no map of the estate. Only provincial administrators
change the structure (units, network, levels and dossiers), since every scope and
compliance result depends on it.

Scope (`AgencyScope`): units by their code, sites by their unit, links and zones by their
site's unit (a zone without a site: only callers who see every unit), assets and systems by
their `unit`. Provider analysts never see a state-secret system, nor an asset whose only
systems are state-secret ones; member lists show only what the caller sees. An object out of
scope is a 404, as if it did not exist; filters never widen the scope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, exists, func, not_, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventory import io as inv_io
from inventory import store, vocab
from inventory.tables import (
    AssetRow,
    LinkRow,
    PublicRangeRow,
    SiteRow,
    SystemAssetRow,
    SystemRow,
    UnitRow,
    ZoneRow,
)
from soc_api.access_policy import ADMIN as ADMIN_ROLES
from soc_api.access_policy import INVENTORY_ASSETS, INVENTORY_READ
from soc_api.deps import AgencyScope, CurrentUser, Scope, SessionDep, WriteRoute, require_roles
from soc_api.errors import ApiProblem, ErrorResponse

INVENTORY_ADMIN = ADMIN_ROLES

MAX_ID = 2**31 - 1
NO_NUL = r"^[^\x00]*$"
Key = Annotated[str, PathParam(min_length=1, max_length=120, pattern=NO_NUL)]
Offset = Annotated[int, Query(ge=0, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Filter = Annotated[str | None, Query(max_length=120, pattern=NO_NUL)]

ROLE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
}
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}
router = APIRouter(
    route_class=WriteRoute,
    prefix="/inventory",
    tags=["inventory"],
    responses=ROLE_ERRORS,
    dependencies=[Depends(require_roles(*INVENTORY_READ))],
)
ADMIN = [Depends(require_roles(*INVENTORY_ADMIN))]
ASSETS = [Depends(require_roles(*INVENTORY_ASSETS))]


class Labels(BaseModel):
    vi: str
    en: str


def _label(table: vocab.Labels, value: str | None) -> dict[str, str] | None:
    if value is None or value not in table:
        return None
    return {"vi": table[value]["vi"], "en": table[value]["en"]}


# --- response models -------------------------------------------------------------------------


class UnitPublic(BaseModel):
    id: str = Field(description="the unit's code")
    code: str
    name: str
    kind: str
    kind_label: Labels | None
    parent: str | None


class SitePublic(BaseModel):
    id: str
    code: str
    name: str
    kind: str
    kind_label: Labels | None
    unit: str


class LinkPublic(BaseModel):
    id: str
    code: str
    kind: str
    kind_label: Labels | None
    site: str
    edge_router: str | None
    sensor: str | None
    bandwidth_mbps: float | None
    provider: str | None


class ZonePublic(BaseModel):
    id: str
    name: str
    kind: str
    kind_label: Labels | None
    cidrs: list[str]
    internal: bool
    site: str | None


class AssetPublic(BaseModel):
    id: str
    name: str
    kind: str
    kind_label: Labels | None
    role: str
    unit: str
    site: str | None
    zone: str | None
    ips: list[str]
    hostnames: list[str]
    os: str | None
    vendor: str | None
    product: str | None
    virtual: bool
    log_sources: list[str]
    systems: list[str] = Field(description="systems the asset belongs to (those the caller sees)")


class RangePublic(BaseModel):
    cidr: str
    ncsc_status: str
    ncsc_status_label: Labels | None
    registered_on: str | None


class SystemPublic(BaseModel):
    id: str
    code: str
    name: str
    unit: str
    level: int = Field(description="security level (cấp độ) 1-5")
    dossier_status: str
    dossier_status_label: Labels | None
    decision_number: str | None
    decision_date: str | None
    regime: str
    regime_label: Labels | None
    state_secret: bool
    assets: list[str] = Field(description="member assets (those the caller sees)")
    public_ranges: list[RangePublic]


class Page(BaseModel):
    count: int


class UnitsPublic(Page):
    data: list[UnitPublic]


class SitesPublic(Page):
    data: list[SitePublic]


class LinksPublic(Page):
    data: list[LinkPublic]


class ZonesPublic(Page):
    data: list[ZonePublic]


class AssetsPublic(Page):
    data: list[AssetPublic]


class SystemsPublic(Page):
    data: list[SystemPublic]


# --- request models (validated again by inventory.store, field by field) --------------------

Text = Annotated[str, Field(max_length=300, pattern=NO_NUL)]
Code = Annotated[str, Field(min_length=1, max_length=120, pattern=NO_NUL)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UnitIn(_In):
    code: Code
    name: Text | None = None
    kind: Text | None = None
    parent: Code | None = None


class UnitChange(_In):
    name: Text | None = None
    kind: Text | None = None
    parent: Code | None = Field(default=None, description="re-parent the unit (null: top level)")


class SiteIn(_In):
    code: Code
    name: Text | None = None
    kind: Text
    unit: Code


class SiteChange(_In):
    name: Text | None = None
    kind: Text | None = None
    unit: Code | None = None


class LinkIn(_In):
    code: Code
    kind: Text
    site: Code
    edge_router: Code | None = None
    sensor: Code | None = None
    bandwidth_mbps: float | None = Field(default=None, ge=0, lt=10**9)
    provider: Text | None = None


class LinkChange(_In):
    kind: Text | None = None
    site: Code | None = None
    edge_router: Code | None = None
    sensor: Code | None = None
    bandwidth_mbps: float | None = Field(default=None, ge=0, lt=10**9)
    provider: Text | None = None


class ZoneIn(_In):
    name: Code
    kind: Text | None = None
    cidrs: list[Text] = Field(default_factory=list, max_length=1000)
    internal: bool = True
    site: Code | None = None


class ZoneChange(_In):
    kind: Text | None = None
    cidrs: list[Text] | None = Field(default=None, max_length=1000)
    internal: bool | None = None
    site: Code | None = None


class AssetIn(_In):
    name: Code
    kind: Text | None = None
    role: Text | None = None
    unit: Code
    site: Code | None = None
    zone: Code | None = None
    ips: list[Text] = Field(default_factory=list, max_length=256)
    hostnames: list[Text] = Field(default_factory=list, max_length=256)
    os: Text | None = None
    vendor: Text | None = None
    product: Text | None = None
    virtual: bool = False
    log_sources: list[Text] = Field(default_factory=list, max_length=100)


class AssetChange(_In):
    kind: Text | None = None
    role: Text | None = None
    unit: Code | None = None
    site: Code | None = None
    zone: Code | None = None
    ips: list[Text] | None = Field(default=None, max_length=256)
    hostnames: list[Text] | None = Field(default=None, max_length=256)
    os: Text | None = None
    vendor: Text | None = None
    product: Text | None = None
    virtual: bool | None = None
    log_sources: list[Text] | None = Field(default=None, max_length=100)


class RangeIn(_In):
    cidr: Text
    ncsc_status: Text = "unregistered"
    registered_on: Text | None = None


class SystemIn(_In):
    code: Code
    name: Text | None = None
    unit: Code
    level: int = Field(ge=1, le=5)
    dossier_status: Text = "draft"
    decision_number: Text | None = None
    decision_date: Text | None = None
    regime: Text = "nd85"
    state_secret: bool = False
    assets: list[Code] = Field(default_factory=list, max_length=10000)
    public_ranges: list[RangeIn] = Field(default_factory=list, max_length=1000)


class SystemChange(_In):
    name: Text | None = None
    unit: Code | None = None
    level: int | None = Field(default=None, ge=1, le=5)
    dossier_status: Text | None = None
    decision_number: Text | None = None
    decision_date: Text | None = None
    regime: Text | None = None
    state_secret: bool | None = None
    assets: list[Code] | None = Field(default=None, max_length=10000)
    public_ranges: list[RangeIn] | None = Field(default=None, max_length=1000)


class ImportProblemPublic(BaseModel):
    file: str
    row: int
    field: str
    message: str


class ImportResultPublic(BaseModel):
    ok: bool
    dry_run: bool
    counts: dict[str, dict[str, int]]
    errors: list[ImportProblemPublic]


# --- scope ------------------------------------------------------------------------------------


def _visible_sites(scope: Scope) -> Any:
    return select(SiteRow.code).where(scope.filter(SiteRow.unit))


def _unit_cond(scope: Scope) -> ColumnElement[bool]:
    return scope.filter(UnitRow.code)


def _site_cond(scope: Scope) -> ColumnElement[bool]:
    return scope.filter(SiteRow.unit)


def _link_cond(scope: Scope) -> ColumnElement[bool]:
    return true() if scope.everything else LinkRow.site.in_(_visible_sites(scope))


def _zone_cond(scope: Scope) -> ColumnElement[bool]:
    return true() if scope.everything else ZoneRow.site.in_(_visible_sites(scope))


def _secret_only(asset: Any) -> ColumnElement[bool]:
    """The asset belongs to state-secret systems and to nothing else."""
    secret = (
        select(SystemAssetRow.asset)
        .join(SystemRow, SystemRow.code == SystemAssetRow.system)
        .where(SystemAssetRow.asset == asset, SystemRow.state_secret.is_(True))
    )
    open_ = (
        select(SystemAssetRow.asset)
        .join(SystemRow, SystemRow.code == SystemAssetRow.system)
        .where(SystemAssetRow.asset == asset, SystemRow.state_secret.is_(False))
    )
    return and_(exists(secret), not_(exists(open_)))


def _asset_cond(scope: Scope) -> ColumnElement[bool]:
    cond = scope.filter(AssetRow.unit)
    if scope.hide_state_secret:
        cond = and_(cond, not_(_secret_only(AssetRow.name)))
    return cond


def _system_cond(scope: Scope) -> ColumnElement[bool]:
    return scope.filter(SystemRow.unit)


def _escape(q: str) -> str:
    return "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _page(
    session: Session,
    model: Any,
    where: list[ColumnElement[bool]],
    order: Any,
    offset: int,
    limit: int,
) -> tuple[list[Any], int]:
    count = session.scalar(select(func.count()).select_from(model).where(*where)) or 0
    rows = list(
        session.scalars(select(model).where(*where).order_by(order).offset(offset).limit(limit))
    )
    return rows, count


def _one(
    session: Session, model: Any, key_col: Any, key: str, cond: ColumnElement[bool], what: str
) -> Any:
    row = session.scalars(select(model).where(key_col == key, cond)).first()
    if row is None:
        raise ApiProblem(404, "not_found", f"{what} {key!r} not found")
    return row


# --- public shapes ----------------------------------------------------------------------------


def unit_public(u: UnitRow) -> dict[str, Any]:
    return {
        "id": u.code,
        "code": u.code,
        "name": u.name,
        "kind": u.kind,
        "kind_label": _label(vocab.UNIT_KINDS, u.kind),
        "parent": u.parent,
    }


def site_public(s: SiteRow) -> dict[str, Any]:
    return {
        "id": s.code,
        "code": s.code,
        "name": s.name,
        "kind": s.kind,
        "kind_label": _label(vocab.SITE_KINDS, s.kind),
        "unit": s.unit,
    }


def link_public(k: LinkRow) -> dict[str, Any]:
    return {
        "id": k.code,
        "code": k.code,
        "kind": k.kind,
        "kind_label": _label(vocab.LINK_KINDS, k.kind),
        "site": k.site,
        "edge_router": k.edge_router,
        "sensor": k.sensor,
        "bandwidth_mbps": k.bandwidth_mbps,
        "provider": k.provider,
    }


def zone_public(z: ZoneRow) -> dict[str, Any]:
    return {
        "id": z.name,
        "name": z.name,
        "kind": z.kind,
        "kind_label": _label(vocab.ZONE_KINDS, z.kind),
        "cidrs": list(z.cidrs),
        "internal": z.internal,
        "site": z.site,
    }


def _systems_of(session: Session, scope: Scope, names: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if not names:
        return out
    rows = session.execute(
        select(SystemAssetRow.asset, SystemAssetRow.system)
        .join(SystemRow, SystemRow.code == SystemAssetRow.system)
        .where(SystemAssetRow.asset.in_(names), _system_cond(scope))
        .order_by(SystemAssetRow.system)
    )
    for asset, system in rows:
        out.setdefault(asset, []).append(system)
    return out


def asset_public(a: AssetRow, systems: list[str]) -> dict[str, Any]:
    return {
        "id": a.name,
        "name": a.name,
        "kind": a.kind,
        "kind_label": _label(vocab.ASSET_KINDS, a.kind),
        "role": a.role,
        "unit": a.unit,
        "site": a.site,
        "zone": a.zone,
        "ips": list(a.ips),
        "hostnames": list(a.hostnames),
        "os": a.os,
        "vendor": a.vendor,
        "product": a.product,
        "virtual": a.virtual,
        "log_sources": list(a.log_sources),
        "systems": systems,
    }


def _systems_public(session: Session, scope: Scope, rows: list[SystemRow]) -> list[dict[str, Any]]:
    codes = [s.code for s in rows]
    members: dict[str, list[str]] = {}
    ranges: dict[str, list[dict[str, Any]]] = {}
    if codes:
        for system, asset in session.execute(
            select(SystemAssetRow.system, SystemAssetRow.asset)
            .join(AssetRow, AssetRow.name == SystemAssetRow.asset)
            .where(SystemAssetRow.system.in_(codes), _asset_cond(scope))
            .order_by(SystemAssetRow.asset)
        ):
            members.setdefault(system, []).append(asset)
        for pr in session.scalars(
            select(PublicRangeRow)
            .where(PublicRangeRow.system.in_(codes))
            .order_by(PublicRangeRow.cidr)
        ):
            ranges.setdefault(pr.system, []).append(
                {
                    "cidr": pr.cidr,
                    "ncsc_status": pr.ncsc_status,
                    "ncsc_status_label": _label(vocab.NCSC_STATUSES, pr.ncsc_status),
                    "registered_on": pr.registered_on.isoformat() if pr.registered_on else None,
                }
            )
    return [
        {
            "id": s.code,
            "code": s.code,
            "name": s.name,
            "unit": s.unit,
            "level": s.level,
            "dossier_status": s.dossier_status,
            "dossier_status_label": _label(vocab.DOSSIER_STATUSES, s.dossier_status),
            "decision_number": s.decision_number,
            "decision_date": s.decision_date.isoformat() if s.decision_date else None,
            "regime": s.regime,
            "regime_label": _label(vocab.REGIMES, s.regime),
            "state_secret": s.state_secret,
            "assets": members.get(s.code, []),
            "public_ranges": ranges.get(s.code, []),
        }
        for s in rows
    ]


# --- writes -----------------------------------------------------------------------------------


def _write(fn: Callable[[], Any]) -> Any:
    """Run a store call, turning its errors into API problems."""
    try:
        return fn()
    except store.ValidationFailed as e:
        raise ApiProblem(422, "invalid_request", str(e)) from e
    except store.NotFound as e:
        raise ApiProblem(404, "not_found", str(e)) from e
    except store.InUse as e:
        raise ApiProblem(409, "conflict", str(e)) from e
    except IntegrityError as e:  # a concurrent change won the race
        raise ApiProblem(409, "conflict", "the inventory changed meanwhile; retry") from e


def _row_values(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(row, f) for f in fields}


def _must_not_exist(session: Session, model: Any, key: str, what: str) -> None:
    if session.get(model, key) is not None:
        raise ApiProblem(409, "conflict", f"{what} {key!r} already exists")


# --- units ------------------------------------------------------------------------------------

UNIT_FIELDS = ("code", "name", "kind", "parent")


@router.get("/units", response_model=UnitsPublic, summary="List owner units")
def list_units(
    session: SessionDep,
    scope: AgencyScope,
    kind: Filter = None,
    parent: Filter = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="in code or name")
    ] = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    where = [_unit_cond(scope)]
    if kind:
        where.append(UnitRow.kind == kind)
    if parent:
        where.append(UnitRow.parent == parent)
    if q:
        where.append(
            or_(
                UnitRow.code.ilike(_escape(q), escape="\\"),
                UnitRow.name.ilike(_escape(q), escape="\\"),
            )
        )
    rows, count = _page(session, UnitRow, where, UnitRow.code, offset, limit)
    return {"data": [unit_public(u) for u in rows], "count": count}


@router.get("/units/{code}", response_model=UnitPublic, responses=ERRORS, summary="One unit")
def get_unit(session: SessionDep, scope: AgencyScope, code: Key) -> dict[str, Any]:
    return unit_public(_one(session, UnitRow, UnitRow.code, code, _unit_cond(scope), "unit"))


@router.post(
    "/units",
    response_model=UnitPublic,
    status_code=201,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Create a unit",
)
def create_unit(session: SessionDep, user: CurrentUser, body: UnitIn) -> dict[str, Any]:
    _must_not_exist(session, UnitRow, body.code, "unit")
    _, row = _write(lambda: store.upsert_unit(session, body.model_dump(), actor=user.name))
    return unit_public(row)


@router.patch(
    "/units/{code}",
    response_model=UnitPublic,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Change or re-parent a unit",
)
def update_unit(
    session: SessionDep, user: CurrentUser, code: Key, body: UnitChange
) -> dict[str, Any]:
    row = _one(session, UnitRow, UnitRow.code, code, true(), "unit")
    values = {**_row_values(row, UNIT_FIELDS), **body.model_dump(exclude_unset=True)}
    _, row = _write(lambda: store.upsert_unit(session, values, actor=user.name))
    return unit_public(row)


@router.delete(
    "/units/{code}",
    status_code=204,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Delete an unused unit",
)
def delete_unit(session: SessionDep, user: CurrentUser, code: Key) -> Response:
    _write(lambda: store.delete_object(session, "unit", code, actor=user.name))
    return Response(status_code=204)


# --- sites ------------------------------------------------------------------------------------

SITE_FIELDS = ("code", "name", "kind", "unit")


@router.get("/sites", response_model=SitesPublic, summary="List sites")
def list_sites(
    session: SessionDep,
    scope: AgencyScope,
    kind: Filter = None,
    unit: Filter = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    where = [_site_cond(scope)]
    if kind:
        where.append(SiteRow.kind == kind)
    if unit:
        where.append(SiteRow.unit == unit)
    rows, count = _page(session, SiteRow, where, SiteRow.code, offset, limit)
    return {"data": [site_public(s) for s in rows], "count": count}


@router.get("/sites/{code}", response_model=SitePublic, responses=ERRORS, summary="One site")
def get_site(session: SessionDep, scope: AgencyScope, code: Key) -> dict[str, Any]:
    return site_public(_one(session, SiteRow, SiteRow.code, code, _site_cond(scope), "site"))


@router.post(
    "/sites",
    response_model=SitePublic,
    status_code=201,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Create a site",
)
def create_site(session: SessionDep, user: CurrentUser, body: SiteIn) -> dict[str, Any]:
    _must_not_exist(session, SiteRow, body.code, "site")
    _, row = _write(lambda: store.upsert_site(session, body.model_dump(), actor=user.name))
    return site_public(row)


@router.patch(
    "/sites/{code}",
    response_model=SitePublic,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Change a site",
)
def update_site(
    session: SessionDep, user: CurrentUser, code: Key, body: SiteChange
) -> dict[str, Any]:
    row = _one(session, SiteRow, SiteRow.code, code, true(), "site")
    values = {**_row_values(row, SITE_FIELDS), **body.model_dump(exclude_unset=True)}
    _, row = _write(lambda: store.upsert_site(session, values, actor=user.name))
    return site_public(row)


@router.delete(
    "/sites/{code}",
    status_code=204,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Delete an unused site",
)
def delete_site(session: SessionDep, user: CurrentUser, code: Key) -> Response:
    _write(lambda: store.delete_object(session, "site", code, actor=user.name))
    return Response(status_code=204)


# --- links ------------------------------------------------------------------------------------

LINK_FIELDS = ("code", "kind", "site", "edge_router", "sensor", "bandwidth_mbps", "provider")


@router.get("/links", response_model=LinksPublic, summary="List TSLCD, WAN and Internet links")
def list_links(
    session: SessionDep,
    scope: AgencyScope,
    kind: Filter = None,
    site: Filter = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    where = [_link_cond(scope)]
    if kind:
        where.append(LinkRow.kind == kind)
    if site:
        where.append(LinkRow.site == site)
    rows, count = _page(session, LinkRow, where, LinkRow.code, offset, limit)
    return {"data": [link_public(k) for k in rows], "count": count}


@router.get("/links/{code}", response_model=LinkPublic, responses=ERRORS, summary="One link")
def get_link(session: SessionDep, scope: AgencyScope, code: Key) -> dict[str, Any]:
    return link_public(_one(session, LinkRow, LinkRow.code, code, _link_cond(scope), "link"))


@router.post(
    "/links",
    response_model=LinkPublic,
    status_code=201,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Create a link",
)
def create_link(session: SessionDep, user: CurrentUser, body: LinkIn) -> dict[str, Any]:
    _must_not_exist(session, LinkRow, body.code, "link")
    _, row = _write(lambda: store.upsert_link(session, body.model_dump(), actor=user.name))
    return link_public(row)


@router.patch(
    "/links/{code}",
    response_model=LinkPublic,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Change a link",
)
def update_link(
    session: SessionDep, user: CurrentUser, code: Key, body: LinkChange
) -> dict[str, Any]:
    row = _one(session, LinkRow, LinkRow.code, code, true(), "link")
    values = {**_row_values(row, LINK_FIELDS), **body.model_dump(exclude_unset=True)}
    _, row = _write(lambda: store.upsert_link(session, values, actor=user.name))
    return link_public(row)


@router.delete(
    "/links/{code}", status_code=204, responses=ERRORS, dependencies=ADMIN, summary="Delete a link"
)
def delete_link(session: SessionDep, user: CurrentUser, code: Key) -> Response:
    _write(lambda: store.delete_object(session, "link", code, actor=user.name))
    return Response(status_code=204)


# --- zones ------------------------------------------------------------------------------------

ZONE_FIELDS = ("name", "kind", "cidrs", "internal", "site")


@router.get("/zones", response_model=ZonesPublic, summary="List network zones")
def list_zones(
    session: SessionDep,
    scope: AgencyScope,
    kind: Filter = None,
    site: Filter = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    where = [_zone_cond(scope)]
    if kind:
        where.append(ZoneRow.kind == kind)
    if site:
        where.append(ZoneRow.site == site)
    rows, count = _page(session, ZoneRow, where, ZoneRow.name, offset, limit)
    return {"data": [zone_public(z) for z in rows], "count": count}


@router.get("/zones/{name}", response_model=ZonePublic, responses=ERRORS, summary="One zone")
def get_zone(session: SessionDep, scope: AgencyScope, name: Key) -> dict[str, Any]:
    return zone_public(_one(session, ZoneRow, ZoneRow.name, name, _zone_cond(scope), "zone"))


@router.post(
    "/zones",
    response_model=ZonePublic,
    status_code=201,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Create a zone",
)
def create_zone(session: SessionDep, user: CurrentUser, body: ZoneIn) -> dict[str, Any]:
    _must_not_exist(session, ZoneRow, body.name, "zone")
    _, row = _write(lambda: store.upsert_zone(session, body.model_dump(), actor=user.name))
    return zone_public(row)


@router.patch(
    "/zones/{name}",
    response_model=ZonePublic,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Change a zone",
)
def update_zone(
    session: SessionDep, user: CurrentUser, name: Key, body: ZoneChange
) -> dict[str, Any]:
    row = _one(session, ZoneRow, ZoneRow.name, name, true(), "zone")
    values = {**_row_values(row, ZONE_FIELDS), **body.model_dump(exclude_unset=True)}
    _, row = _write(lambda: store.upsert_zone(session, values, actor=user.name))
    return zone_public(row)


@router.delete(
    "/zones/{name}",
    status_code=204,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Delete an unused zone",
)
def delete_zone(session: SessionDep, user: CurrentUser, name: Key) -> Response:
    _write(lambda: store.delete_object(session, "zone", name, actor=user.name))
    return Response(status_code=204)


# --- assets -----------------------------------------------------------------------------------

ASSET_FIELDS = (
    "name",
    "kind",
    "role",
    "unit",
    "site",
    "zone",
    "ips",
    "hostnames",
    "os",
    "vendor",
    "product",
    "virtual",
    "log_sources",
)


@router.get("/assets", response_model=AssetsPublic, summary="List assets")
def list_assets(
    session: SessionDep,
    scope: AgencyScope,
    kind: Filter = None,
    unit: Filter = None,
    site: Filter = None,
    zone: Filter = None,
    system: Filter = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=NO_NUL, description="in the name")
    ] = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    where = [_asset_cond(scope)]
    for col, value in (
        (AssetRow.kind, kind),
        (AssetRow.unit, unit),
        (AssetRow.site, site),
        (AssetRow.zone, zone),
    ):
        if value:
            where.append(col == value)
    if system:
        where.append(
            AssetRow.name.in_(
                select(SystemAssetRow.asset)
                .join(SystemRow, SystemRow.code == SystemAssetRow.system)
                .where(SystemAssetRow.system == system, _system_cond(scope))
            )
        )
    if q:
        where.append(AssetRow.name.ilike(_escape(q), escape="\\"))
    rows, count = _page(session, AssetRow, where, AssetRow.name, offset, limit)
    systems = _systems_of(session, scope, [a.name for a in rows])
    return {"data": [asset_public(a, systems.get(a.name, [])) for a in rows], "count": count}


def _asset(session: Session, scope: Scope, name: str) -> AssetRow:
    row: AssetRow = _one(session, AssetRow, AssetRow.name, name, _asset_cond(scope), "asset")
    return row


def _asset_out(session: Session, scope: Scope, row: AssetRow) -> dict[str, Any]:
    return asset_public(row, _systems_of(session, scope, [row.name]).get(row.name, []))


@router.get("/assets/{name}", response_model=AssetPublic, responses=ERRORS, summary="One asset")
def get_asset(session: SessionDep, scope: AgencyScope, name: Key) -> dict[str, Any]:
    return _asset_out(session, scope, _asset(session, scope, name))


def _check_unit(scope: Scope, unit: str | None) -> None:
    if not scope.allows(unit):
        raise ApiProblem(403, "forbidden", f"unit {unit!r} is outside your units")


@router.post(
    "/assets",
    response_model=AssetPublic,
    status_code=201,
    responses=ERRORS,
    dependencies=ASSETS,
    summary="Create an asset",
)
def create_asset(
    session: SessionDep, user: CurrentUser, scope: AgencyScope, body: AssetIn
) -> dict[str, Any]:
    _check_unit(scope, body.unit)
    _must_not_exist(session, AssetRow, body.name, "asset")
    values = {k: v for k, v in body.model_dump().items() if v is not None}
    _, row = _write(lambda: store.upsert_asset(session, values, actor=user.name))
    return _asset_out(session, scope, row)


@router.patch(
    "/assets/{name}",
    response_model=AssetPublic,
    responses=ERRORS,
    dependencies=ASSETS,
    summary="Change an asset",
)
def update_asset(
    session: SessionDep, user: CurrentUser, scope: AgencyScope, name: Key, body: AssetChange
) -> dict[str, Any]:
    row = _asset(session, scope, name)
    values = {**_row_values(row, ASSET_FIELDS), **body.model_dump(exclude_unset=True)}
    _check_unit(scope, values.get("unit"))
    _, row = _write(lambda: store.upsert_asset(session, values, actor=user.name))
    return _asset_out(session, scope, row)


@router.delete(
    "/assets/{name}",
    status_code=204,
    responses=ERRORS,
    dependencies=ASSETS,
    summary="Delete an asset",
)
def delete_asset(session: SessionDep, user: CurrentUser, scope: AgencyScope, name: Key) -> Response:
    _asset(session, scope, name)
    _write(lambda: store.delete_object(session, "asset", name, actor=user.name))
    return Response(status_code=204)


# --- systems ----------------------------------------------------------------------------------

SYSTEM_FIELDS = (
    "code",
    "name",
    "unit",
    "level",
    "dossier_status",
    "decision_number",
    "decision_date",
    "regime",
    "state_secret",
)


@router.get("/systems", response_model=SystemsPublic, summary="List information systems")
def list_systems(
    session: SessionDep,
    scope: AgencyScope,
    unit: Filter = None,
    level: Annotated[int | None, Query(ge=1, le=5)] = None,
    dossier_status: Filter = None,
    regime: Filter = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    where = [_system_cond(scope)]
    if unit:
        where.append(SystemRow.unit == unit)
    if level is not None:
        where.append(SystemRow.level == level)
    if dossier_status:
        where.append(SystemRow.dossier_status == dossier_status)
    if regime:
        where.append(SystemRow.regime == regime)
    rows, count = _page(session, SystemRow, where, SystemRow.code, offset, limit)
    return {"data": _systems_public(session, scope, rows), "count": count}


@router.get(
    "/systems/{code}",
    response_model=SystemPublic,
    responses=ERRORS,
    summary="One information system",
)
def get_system(session: SessionDep, scope: AgencyScope, code: Key) -> dict[str, Any]:
    row = _one(session, SystemRow, SystemRow.code, code, _system_cond(scope), "system")
    return _systems_public(session, scope, [row])[0]


def _save_system(
    session: Session,
    user: str,
    values: dict[str, Any],
    assets: list[str] | None,
    ranges: list[dict[str, Any]] | None,
) -> SystemRow:
    def run() -> SystemRow:
        _, row = store.upsert_system(session, values, actor=user)
        if ranges is not None:
            store.set_ranges(session, row.code, ranges, actor=user)
        if assets is not None:
            store.set_members(session, row.code, assets, actor=user)
        return row

    row: SystemRow = _write(run)
    return row


@router.post(
    "/systems",
    response_model=SystemPublic,
    status_code=201,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Create an information system",
)
def create_system(
    session: SessionDep, user: CurrentUser, scope: AgencyScope, body: SystemIn
) -> dict[str, Any]:
    _must_not_exist(session, SystemRow, body.code, "system")
    data = body.model_dump()
    assets, ranges = data.pop("assets"), data.pop("public_ranges")
    row = _save_system(session, user.name, data, assets, ranges)
    return _systems_public(session, scope, [row])[0]


@router.patch(
    "/systems/{code}",
    response_model=SystemPublic,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Change a system, its members or its public ranges",
)
def update_system(
    session: SessionDep, user: CurrentUser, scope: AgencyScope, code: Key, body: SystemChange
) -> dict[str, Any]:
    row = _one(session, SystemRow, SystemRow.code, code, true(), "system")
    change = body.model_dump(exclude_unset=True)
    assets, ranges = change.pop("assets", None), change.pop("public_ranges", None)
    values = {**_row_values(row, SYSTEM_FIELDS), **change}
    row = _save_system(session, user.name, values, assets, ranges)
    return _systems_public(session, scope, [row])[0]


@router.delete(
    "/systems/{code}",
    status_code=204,
    responses=ERRORS,
    dependencies=ADMIN,
    summary="Delete a system",
)
def delete_system(session: SessionDep, user: CurrentUser, code: Key) -> Response:
    _write(lambda: store.delete_object(session, "system", code, actor=user.name))
    return Response(status_code=204)


# --- import and export ------------------------------------------------------------------------


@router.post(
    "/import",
    response_model=ImportResultPublic,
    responses={
        422: {
            "model": ErrorResponse,
            "description": "Invalid: nothing imported. The body also carries `errors` "
            "(file, row, field, message), `counts` and `dry_run` as in the 200 response.",
        }
    },
    dependencies=ADMIN,
    summary="Import a YAML document or a zip of CSV files (all or nothing)",
)
def import_inventory(
    session: SessionDep,
    user: CurrentUser,
    body: Annotated[
        bytes, Body(media_type="application/octet-stream", max_length=inv_io.MAX_IMPORT_BYTES)
    ],
    format: Annotated[
        Literal["yaml", "csv"], Query(description="yaml, or csv: a zip of CSV files")
    ] = "yaml",
    dry_run: bool = False,
) -> Any:
    if not body:
        raise ApiProblem(422, "invalid_request", "the request body is empty")
    doc = inv_io.read_bytes(body, "upload.yaml" if format == "yaml" else "upload.zip", format)
    result = inv_io.import_document(session, doc, dry_run=dry_run, actor=user.name)
    out = {
        "ok": result.ok,
        "dry_run": dry_run,
        "counts": result.counts,
        "errors": [e.__dict__ for e in result.errors],
    }
    if not result.ok:
        first = "; ".join(str(e) for e in result.errors[:3])
        return JSONResponse(
            {
                "error": {
                    "code": "invalid_inventory",
                    "message": f"{len(result.errors)} error(s), nothing imported: {first}",
                },
                **out,
            },
            status_code=422,
        )
    return out


def scoped_snapshot(session: Session, scope: Scope) -> dict[str, list[dict[str, Any]]]:
    """The export rows the caller may see (the same rules as the list routes)."""
    snap = inv_io.snapshot(session)
    if scope.everything and not scope.hide_state_secret:
        return snap

    def keys(model: Any, key: Any, cond: ColumnElement[bool]) -> set[str]:
        return set(session.scalars(select(key).where(cond)))

    seen = {
        "units": keys(UnitRow, UnitRow.code, _unit_cond(scope)),
        "sites": keys(SiteRow, SiteRow.code, _site_cond(scope)),
        "links": keys(LinkRow, LinkRow.code, _link_cond(scope)),
        "zones": keys(ZoneRow, ZoneRow.name, _zone_cond(scope)),
        "assets": keys(AssetRow, AssetRow.name, _asset_cond(scope)),
        "systems": keys(SystemRow, SystemRow.code, _system_cond(scope)),
    }
    key_of = {"zones": "name", "assets": "name"}
    out = {
        entity: [r for r in rows if r[key_of.get(entity, "code")] in seen[entity]]
        for entity, rows in snap.items()
    }
    for s in out["systems"]:
        s["assets"] = [a for a in s["assets"] if a in seen["assets"]]
    return out


@router.get(
    "/export",
    summary="Export the inventory you can see (YAML, or a zip of CSV files)",
    response_class=Response,
    responses={
        200: {
            "content": {
                "application/yaml": {"schema": {"type": "object"}},
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
def export_inventory(
    session: SessionDep,
    scope: AgencyScope,
    format: Annotated[Literal["yaml", "csv"], Query()] = "yaml",
) -> Response:
    snap = scoped_snapshot(session, scope)
    if format == "yaml":
        return Response(
            inv_io.to_yaml(snap).encode("utf-8"),
            media_type="application/yaml; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="inventory.yaml"'},
        )
    return Response(
        inv_io.to_zip(inv_io.to_csv(snap)),
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="inventory-csv.zip"'},
    )
