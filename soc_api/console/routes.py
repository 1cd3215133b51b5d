"""The web console: server-rendered, read-only pages in Vietnamese and English.

Analysts and managers sign in with their console password (the same check, limiter and session
tokens as `POST /api/login`); the session token travels in the `socmon_session` cookie
(HttpOnly, SameSite=Strict, Path=/console, Secure over https) and is checked by the API's own
`authenticate()`. Every page reads with the caller's scope exactly as the API does
(`Scope.filter`, the API's query helpers) and applies the same role groups
(`soc_api.access_policy`): a role the API refuses gets a 403 page, an incident outside the
scope is a 404 page. Nothing but login and logout changes state: incidents are worked through
the API. Pages are autoescaped Jinja2 templates with inline CSS, no script and no external
asset; times are shown in Vietnam's time zone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from inventory import vocab
from playbooks.models import PlaybookRun
from soc_api import audit
from soc_api.access_login import Limiter, verify_password
from soc_api.access_policy import COMPLIANCE_READ, INVENTORY_READ, SOC_READ
from soc_api.auth import (
    SESSION_PREFIX,
    SESSION_TTL,
    AuthError,
    authenticate,
    hash_token,
    issue_token,
)
from soc_api.console import i18n
from soc_api.deps import MAX_ID, Scope, SessionDep, WriteRoute, request_scope
from soc_api.incidents import parse_time
from soc_api.labels import (
    INCIDENT_CATEGORY,
    INCIDENT_STATUS,
    OBSERVABLE_TYPE,
    RESPONSE_PATH,
    ROLES,
    SEVERITY,
    TIMELINE_KIND,
)
from soc_api.models import ApiToken, Incident, User
from soc_api.routes.incidents import PUBLIC_COLUMNS, order_of, to_public
from soc_api.routes.incidents import _detail as incident_detail
from soc_api.routes.inventory import list_systems
from soc_api.routes.sources import list_sources
from soc_api.routes.users import get_limiter
from socmon.logging import kv

log = logging.getLogger("socmon.api.console")

router = APIRouter(route_class=WriteRoute, prefix="/console", include_in_schema=False)

SESSION_COOKIE = "socmon_session"
LANG_COOKIE = "socmon_lang"
COOKIE_PATH = "/console"
LANG_COOKIE_SECONDS = 365 * 24 * 3600
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
PAGE_SIZE = 50
COUNT_LIMIT = 10_000  # the list counts at most this many incidents beyond the page
MAX_FORM_BYTES = 8192
MAX_USERNAME = 120  # as LoginRequest
MAX_PASSWORD = 1024
MAX_JSON_CHARS = 4000  # an alert's fields or a timeline entry's detail, as shown
NO_NUL = r"^[^\x00]*$"
TEMPLATES = Path(__file__).parent / "templates"

# No script, nothing fetched from elsewhere, no framing, forms only to this origin.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

LangParam = Annotated[str | None, Query(max_length=8, description="vi or en (kept in a cookie)")]
IncidentId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
PageNo = Annotated[int, Query(ge=1, le=100_000)]

# Pages in the navigation: (message key, path, roles allowed).
NAV: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("nav.incidents", "/console/incidents", SOC_READ),
    ("nav.sources", "/console/sources", tuple(ROLES)),
    ("nav.systems", "/console/systems", INVENTORY_READ),
    ("nav.compliance", "/console/compliance", COMPLIANCE_READ),
)


@dataclass(frozen=True)
class Page:
    """One request's view: language (and whether `?lang=` set it), the signed-in user."""

    request: Request
    lang: i18n.Lang
    lang_given: bool
    user: User | None = None
    scope: Scope | None = None

    @property
    def https(self) -> bool:
        return self.request.url.scheme == "https"


# -- helpers ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        INCIDENT_STATUS=INCIDENT_STATUS,
        SEVERITY=SEVERITY,
        INCIDENT_CATEGORY=INCIDENT_CATEGORY,
        RESPONSE_PATH=RESPONSE_PATH,
        OBSERVABLE_TYPE=OBSERVABLE_TYPE,
        TIMELINE_KIND=TIMELINE_KIND,
        ROLES=ROLES,
        DOSSIER_STATUSES=vocab.DOSSIER_STATUSES,
        REGIMES=vocab.REGIMES,
        as_json=as_json,
        local_time=local_time,
    )
    return env


def local_time(value: datetime | str | float | None) -> str:
    """`value` (aware or UTC datetime, ISO text, epoch seconds) in Vietnam time, zone shown."""
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), UTC)
    else:
        moment = parse_time(value)
    local = moment.astimezone(ZONE)
    offset = local.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{local:%Y-%m-%d %H:%M:%S} UTC{sign}{hours:02d}:{mins:02d}"


def as_json(value: Any, limit: int = MAX_JSON_CHARS) -> str:
    """`value` as readable JSON text (escaped by the template), cut at `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1, default=str)
    return text if len(text) <= limit else text[:limit] + " …"


def label_of(table: Mapping[str, Mapping[str, str]], code: str | None, lang: str) -> str:
    """The label of `code` in `lang`; the code itself when unknown."""
    if not code:
        return "—"
    entry = table.get(code)
    return entry[lang] if entry else code


def _lang(request: Request, given: str | None) -> tuple[i18n.Lang, bool]:
    chosen = i18n.check_lang(given)
    if chosen is not None:
        return chosen, True
    return i18n.check_lang(request.cookies.get(LANG_COOKIE)) or i18n.DEFAULT_LANG, False


_scope = request_scope  # the API's scope, units below included


def _session_user(request: Request, session: Session) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or not token.startswith(SESSION_PREFIX) or len(token) > 200:
        return None
    return authenticate(session, token)


def _set_lang_cookie(page: Page, response: Response) -> Response:
    if page.lang_given:
        response.set_cookie(
            LANG_COOKIE,
            page.lang,
            max_age=LANG_COOKIE_SECONDS,
            path=COOKIE_PATH,
            secure=page.https,
            httponly=True,
            samesite="lax",
        )
    return response


def _redirect(page: Page, location: str) -> Response:
    response = RedirectResponse(location, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return _set_lang_cookie(page, response)


def _signed_in(request: Request, session: Session, lang: str | None) -> Page | Response:
    """The page of the signed-in caller, or a redirect to the login form."""
    chosen, given = _lang(request, lang)
    page = Page(request, chosen, given)
    user = _session_user(request, session)
    if user is None:
        response = _redirect(page, "/console/login")
        if request.cookies.get(SESSION_COOKIE):
            _clear_session_cookie(page, response)
        return response
    return replace(page, user=user, scope=_scope(request, user))


def _clear_session_cookie(page: Page, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=COOKIE_PATH, secure=page.https, httponly=True, samesite="strict"
    )


def _switch_url(request: Request, lang: str) -> str:
    url = request.url.include_query_params(lang=lang)
    return f"{url.path}?{url.query}"


def _html(page: Page, template: str, **values: Any) -> str:
    lang = page.lang

    def t(key: str, **fields: Any) -> str:
        return i18n.t(key, lang, **fields)

    def label(table: Mapping[str, Mapping[str, str]], code: str | None) -> str:
        return label_of(table, code, lang)

    role = page.user.role if page.user is not None else None
    html = (
        _environment()
        .get_template(template)
        .render(
            lang=lang,
            t=t,
            label=label,
            user=page.user,
            nav=[(t(key), path) for key, path, roles in NAV if role in roles],
            current=page.request.url.path,
            has=i18n.has,
            switch={code: _switch_url(page.request, code) for code in i18n.LANGS},
            **values,
        )
    )
    return html


def _render(page: Page, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    response = HTMLResponse(_html(page, template, **values), status_code=status)
    response.headers.update(SECURITY_HEADERS)
    _set_lang_cookie(page, response)
    return response


def _forbidden(page: Page) -> HTMLResponse:
    assert page.user is not None
    role = label_of(ROLES, page.user.role, page.lang)
    return _render(
        page,
        "error.html",
        403,
        title=i18n.t("error.403", page.lang),
        message=i18n.t("error.403.text", page.lang, role=role),
    )


def _home(user: User) -> str:
    """Where a user lands: the incidents, or for a role that does not read them the sources."""
    return "/console/incidents" if user.role in SOC_READ else "/console/sources"


def _same_origin(request: Request) -> bool:
    """A form post from another site is refused (on top of the SameSite=Strict cookie).

    Browsers send `Origin` with every form post; a page elsewhere cannot set it, nor the
    `X-Forwarded-Host` a reverse proxy in front of the API may put in place of `Host`."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")}
    return urlsplit(origin).netloc in hosts - {None}


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form post (empty when the body is anything else or too big).

    Read here rather than with `Form()`: the API does not depend on python-multipart."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        parsed = parse_qs(
            body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20
        )
    except ValueError:
        return {}
    return {key: values[0] for key, values in parsed.items() if values}


FormFields = Annotated[dict[str, str], Depends(form_fields)]
LimiterDep = Annotated[Limiter, Depends(get_limiter)]


def _pages(request: Request, page_no: int, has_next: bool) -> dict[str, str | None]:
    def at(n: int) -> str:
        url = request.url.include_query_params(page=n)
        return f"{url.path}?{url.query}"

    return {
        "prev": at(page_no - 1) if page_no > 1 else None,
        "next": at(page_no + 1) if has_next else None,
    }


# -- login and logout -------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, session: SessionDep, lang: LangParam = None) -> Response:
    chosen, given = _lang(request, lang)
    page = Page(request, chosen, given)
    user = _session_user(request, session)
    if user is not None:
        return _redirect(page, _home(user))
    return _render(page, "login.html", username="", error=None)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request, session: SessionDep, form: FormFields, limiter: LimiterDep
) -> Response:
    chosen, _ = _lang(request, None)
    page = Page(request, chosen, False)
    username = form.get("username", "").strip()
    password = form.get("password", "")

    def again(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        response = _render(page, "login.html", status, username=username, error=message)
        response.headers.update(headers or {})
        return response

    if not _same_origin(request):
        return again(403, i18n.t("error.forbidden_origin", chosen))
    if not username or not password:
        return again(400, i18n.t("login.missing", chosen))
    if len(username) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        username = username[:MAX_USERNAME]
        return again(400, i18n.t("login.failed", chosen))
    client = request.client.host if request.client else "unknown"
    keys = (f"user:{username.lower()}", f"ip:{client}")
    wait = limiter.retry_after(*keys)
    if wait:
        log.warning("console login refused %s", kv(user=username, client=client, reason="rate"))
        message = i18n.t("login.limited", chosen, seconds=wait)
        return again(429, message, {"Retry-After": str(wait)})
    try:
        user = verify_password(session, username, password)
    except AuthError as e:
        return again(503, i18n.t("login.unavailable", chosen, error=str(e)))
    if user is None:
        limiter.failure(*keys)
        log.warning("console login failed %s", kv(user=username, client=client))
        return again(401, i18n.t("login.failed", chosen))
    limiter.success(keys[0])
    token = issue_token(session, user, actor=user.name, session_token=True)
    response = _redirect(page, _home(user))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        path=COOKIE_PATH,
        secure=page.https,
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/logout")
def logout(request: Request, session: SessionDep) -> Response:
    """Revoke the cookie's session token and clear the cookie."""
    chosen, _ = _lang(request, None)
    page = Page(request, chosen, False)
    if not _same_origin(request):
        return _render(
            page,
            "error.html",
            403,
            title=i18n.t("error.403", chosen),
            message=i18n.t("error.forbidden_origin", chosen),
        )
    user = _session_user(request, session)
    token = request.cookies.get(SESSION_COOKIE, "")
    if user is not None:
        row = session.scalars(
            select(ApiToken).where(
                ApiToken.token_hash == hash_token(token), ApiToken.revoked.is_(False)
            )
        ).first()
        if row is not None:
            row.revoked = True
            session.flush()
            audit.record(
                session,
                user.name,
                "token.revoke",
                "user",
                user.id,
                token_id=row.id,
                token_prefix=row.prefix,
            )
    response = _redirect(page, "/console/login")
    _clear_session_cookie(page, response)
    return response


# -- incidents --------------------------------------------------------------------------------


def _incident_filters(
    scope: Scope, state: str | None, severity: str | None, q: str | None
) -> list[ColumnElement[bool]]:
    """The API list's filters (`soc_api.routes.incidents.incident_where`), scope first."""
    where = [scope.filter(Incident.unit)]
    if state:
        where.append(Incident.status == state)
    if severity:
        where.append(Incident.severity == severity)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(
            or_(
                Incident.title.ilike(pattern, escape="\\"),
                Incident.rule_id.ilike(pattern, escape="\\"),
            )
        )
    return where


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(
    request: Request,
    session: SessionDep,
    lang: LangParam = None,
    state: Annotated[str | None, Query(max_length=32)] = None,
    severity: Annotated[str | None, Query(max_length=32)] = None,
    q: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    page: PageNo = 1,
) -> Response:
    view = _signed_in(request, session, lang)
    if isinstance(view, Response):
        return view
    assert view.user is not None and view.scope is not None
    if view.user.role not in SOC_READ:
        return _forbidden(view)
    state = state if state in INCIDENT_STATUS else None
    severity = severity if severity in SEVERITY else None
    q = (q or "").strip() or None
    where = _incident_filters(view.scope, state, severity, q)
    offset = (page - 1) * PAGE_SIZE
    bound = offset + PAGE_SIZE + COUNT_LIMIT
    counted = select(Incident.id).where(*where).limit(bound + 1).subquery()
    count = session.scalar(select(func.count()).select_from(counted)) or 0
    rows = session.execute(
        select(*PUBLIC_COLUMNS)
        .where(*where)
        .order_by(*order_of("-last_seen"))
        .offset(offset)
        .limit(PAGE_SIZE)
    )
    incidents = [to_public(r) for r in rows]
    return _render(
        view,
        "incidents.html",
        incidents=incidents,
        count=min(count, bound),
        count_exact=count <= bound,
        filters={"state": state or "", "severity": severity or "", "q": q or ""},
        page_no=page,
        pages=_pages(request, page, offset + PAGE_SIZE < count),
    )


def _runs(session: Session, incident_id: int) -> list[PlaybookRun]:
    return list(
        session.scalars(
            select(PlaybookRun)
            .where(PlaybookRun.incident_id == incident_id)
            .order_by(PlaybookRun.id)
        )
    )


@router.get("/incidents/{incident_id}", response_class=HTMLResponse)
def incident_page(
    incident_id: IncidentId, request: Request, session: SessionDep, lang: LangParam = None
) -> Response:
    view = _signed_in(request, session, lang)
    if isinstance(view, Response):
        return view
    assert view.user is not None and view.scope is not None
    if view.user.role not in SOC_READ:
        return _forbidden(view)
    inc = session.scalars(
        select(Incident).where(Incident.id == incident_id, view.scope.filter(Incident.unit))
    ).first()
    if inc is None:
        return _render(
            view,
            "error.html",
            404,
            title=i18n.t("error.404", view.lang),
            message=i18n.t("error.404.text", view.lang, id=incident_id),
        )
    detail = incident_detail(session, inc)
    assignee = session.get(User, inc.assignee_id) if inc.assignee_id is not None else None
    return _render(
        view,
        "incident.html",
        inc=detail,
        assignee=assignee.name if assignee is not None else None,
        runs=_runs(session, inc.id),
    )


# -- sources, systems, compliance -------------------------------------------------------------


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request, session: SessionDep, lang: LangParam = None) -> Response:
    view = _signed_in(request, session, lang)
    if isinstance(view, Response):
        return view
    assert view.user is not None and view.scope is not None
    sources = list_sources(request, view.user, view.scope)
    return _render(view, "sources.html", sources=sources["data"])


@router.get("/systems", response_class=HTMLResponse)
def systems_page(
    request: Request, session: SessionDep, lang: LangParam = None, page: PageNo = 1
) -> Response:
    view = _signed_in(request, session, lang)
    if isinstance(view, Response):
        return view
    assert view.user is not None and view.scope is not None
    if view.user.role not in INVENTORY_READ:
        return _forbidden(view)
    offset = (page - 1) * PAGE_SIZE
    systems = list_systems(session, view.scope, offset=offset, limit=PAGE_SIZE)
    return _render(
        view,
        "systems.html",
        systems=systems["data"],
        count=systems["count"],
        page_no=page,
        pages=_pages(request, page, offset + PAGE_SIZE < systems["count"]),
    )


def _catalogue_path(request: Request) -> Any:
    from socmon.config import Settings, get_settings

    settings = getattr(request.app.state, "settings", None)
    if not isinstance(settings, Settings):
        settings = get_settings()
    return settings.compliance_catalogue


@router.get("/compliance", response_class=HTMLResponse)
def compliance_page(request: Request, session: SessionDep, lang: LangParam = None) -> Response:
    """The compliance report of the caller's systems (`soc_api.compliance.report`), with the
    console's navigation put in at the top of its page."""
    view = _signed_in(request, session, lang)
    if isinstance(view, Response):
        return view
    assert view.user is not None and view.scope is not None
    if view.user.role not in COMPLIANCE_READ:
        return _forbidden(view)
    from soc_api.compliance.catalog import load_catalogue
    from soc_api.compliance.evaluate import report_from_db
    from soc_api.compliance.report import render

    report = report_from_db(session, load_catalogue(_catalogue_path(request)), scope=view.scope)
    html = render(report, "html", view.lang).decode("utf-8")
    response = HTMLResponse(_insert_bar(html, _html(view, "bar.html")))
    response.headers.update(SECURITY_HEADERS)
    return _set_lang_cookie(view, response)


def _insert_bar(html: str, bar: str) -> str:
    """`bar` (the console's navigation) as the first thing in the report's body."""
    start = html.find("<body")
    end = html.find(">", start) if start >= 0 else -1
    if end < 0:
        return bar + html
    return html[: end + 1] + bar + html[end + 1 :]
