"""The web console: login and logout, redirects, the pages in vi and en, tenancy and roles
through the console, escaping of hostile text.

The console is reached with a browser's session cookie, never a bearer token; every page is
scoped like the API (a unit-A analyst never sees unit B's incidents, a provider analyst never
a state-secret one) and refuses the roles the API refuses with a 403 page.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from detections.alerts import make_alert
from inventory.tables import SystemRow, UnitRow
from soc_api import IncidentService, create_app
from soc_api.access_login import LoginLimiter, set_password
from soc_api.auth import create_user
from soc_api.console import i18n
from soc_api.console.routes import LANG_COOKIE, SESSION_COOKIE
from soc_api.models import ApiToken, Incident
from socmon.db import Database
from socmon.store import Store
from tests.soc_api.access_fixtures import bearer, token_for

pytestmark = pytest.mark.integration

A, B = "so-tttt", "so-yte"
PASSWORD = "mật khẩu đủ dài 2026"
HOSTILE = "<script>alert('x')</script>"
_n = itertools.count()


def console_app(db: Database, store: Store | None) -> FastAPI:
    return create_app(db, store, embedded=True, login_limiter=LoginLimiter(3, 300))


@pytest.fixture
def client(db: Database, store: Store) -> Iterator[TestClient]:
    with TestClient(console_app(db, store), follow_redirects=False) as c:
        yield c


def user_with_password(db: Database, role: str, units: list[str]) -> str:
    name = f"{role}-{next(_n)}"
    with db.session() as s:
        user = create_user(s, name, role, units, actor="test")
        set_password(s, user, PASSWORD, actor="test")
        s.commit()
    return name


def login(client: TestClient, db: Database, role: str, units: list[str]) -> str:
    """Sign a new user of `role` in; the client then carries the session cookie."""
    client.cookies.clear()
    name = user_with_password(db, role, units)
    r = client.post("/console/login", data={"username": name, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return name


def alert(
    n: int, *, unit: str | None, title: str = "SSH brute force", secret: bool = False, **extra: Any
) -> tuple[str, dict[str, Any]]:
    context: dict[str, Any] = {} if unit is None else {"unit": unit}
    if secret:
        context["destination"] = {"systems": ["QLVB-MAT"], "state_secret": True, "unit": unit}
    doc = make_alert(
        alert_id=f"al-{n}",
        rule_id=f"r-{n}",
        title=title,
        level="high",
        tags=["attack.credential_access"],
        group_by=[],
        timestamp=f"2026-11-23T10:0{n}:00Z",
        event_id=f"ev-{n}",
        fields={"socmon": context, "source": {"ip": f"203.0.113.{n}"}, **extra},
    )
    return str(doc.pop("_id")), doc


def incidents(db: Database, *alerts: tuple[str, dict[str, Any]]) -> list[int]:
    """An incident per alert (each alert has a rule of its own), their ids in order."""
    service = IncidentService(window=timedelta(hours=1))
    ids = []
    with db.session() as s:
        for alert_id, doc in alerts:
            inc = service.ingest(s, alert_id, doc)
            assert inc is not None
            s.flush()
            ids.append(inc.id)
        s.commit()
    return ids


# -- login, logout, redirects -----------------------------------------------------------------


def test_login_sets_a_strict_httponly_session_cookie(client: TestClient, db: Database) -> None:
    name = user_with_password(db, "analyst", [A])
    form = client.get("/console/login")
    assert form.status_code == 200
    assert 'name="username"' in form.text and "Đăng nhập" in form.text

    r = client.post("/console/login", data={"username": name, "password": PASSWORD})
    assert r.status_code == 303
    assert r.headers["location"] == "/console/incidents"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=sms_")
    attrs = {a.strip().lower() for a in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/console"} <= attrs
    assert "secure" not in attrs  # plain http here; https requests get Secure
    # the cookie's token is a session token of this user
    token = cookie.split(";")[0].split("=", 1)[1]
    assert client.get("/api/me", headers=bearer(token)).json()["name"] == name
    assert client.get("/console/incidents").status_code == 200
    # signed in already: the form sends the user on
    assert client.get("/console/login").headers["location"] == "/console/incidents"


def test_over_https_the_cookie_is_secure(db: Database, store: Store) -> None:
    name = user_with_password(db, "manager", [A])
    app = console_app(db, store)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as c:
        r = c.post("/console/login", data={"username": name, "password": PASSWORD})
    assert r.status_code == 303
    assert "secure" in {a.strip().lower() for a in r.headers["set-cookie"].split(";")}


def test_every_console_string_has_both_languages() -> None:
    for key, texts in i18n.MESSAGES.items():
        assert set(texts) == set(i18n.LANGS), key
        assert all(texts[lang].strip() for lang in i18n.LANGS), key


def test_wrong_password_shows_the_form_again_without_a_cookie(
    client: TestClient, db: Database
) -> None:
    name = user_with_password(db, "analyst", [A])
    r = client.post("/console/login", data={"username": name, "password": "not the password"})
    assert r.status_code == 401
    assert "set-cookie" not in r.headers
    assert "Sai tên đăng nhập hoặc mật khẩu" in r.text
    assert f'value="{name}"' in r.text
    assert "not the password" not in r.text
    r = client.post("/console/login", data={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401 and "set-cookie" not in r.headers
    r = client.post("/console/login", data={"username": name, "password": ""})
    assert r.status_code == 400 and "set-cookie" not in r.headers


def test_the_login_limiter_applies(client: TestClient, db: Database) -> None:
    name = user_with_password(db, "analyst", [A])
    for _ in range(3):  # the test app's limiter: 3 failures per 5 minutes
        r = client.post("/console/login", data={"username": name, "password": "wrong password"})
        assert r.status_code == 401
    r = client.post("/console/login", data={"username": name, "password": PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) > 0
    assert "Quá nhiều lần đăng nhập sai" in r.text
    assert "set-cookie" not in r.headers


def test_a_cross_origin_post_is_refused(client: TestClient, db: Database) -> None:
    name = user_with_password(db, "analyst", [A])
    r = client.post(
        "/console/login",
        data={"username": name, "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403 and "set-cookie" not in r.headers


@pytest.mark.parametrize(
    "path",
    [
        "/console/incidents",
        "/console/incidents/1",
        "/console/sources",
        "/console/systems",
        "/console/compliance",
    ],
)
def test_pages_redirect_to_the_login_without_a_session(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    client.cookies.set(SESSION_COOKIE, "sms_not-a-token", path="/console")
    r = client.get(path)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"


def test_an_api_token_in_the_cookie_is_not_a_session(client: TestClient, db: Database) -> None:
    client.cookies.set(SESSION_COOKIE, token_for(db, "api-user", "admin", ["*"]), path="/console")
    assert client.get("/console/incidents").status_code == 303


def test_logout_revokes_the_token(client: TestClient, db: Database) -> None:
    login(client, db, "analyst", [A])
    token = client.cookies[SESSION_COOKIE]
    assert client.get("/console/incidents").status_code == 200
    r = client.post("/console/logout")
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    assert f'{SESSION_COOKIE}=""' in r.headers["set-cookie"]
    with db.session() as s:
        rows = list(s.scalars(select(ApiToken).where(ApiToken.prefix == token[:10])))
        assert [row.revoked for row in rows] == [True]
    # the old cookie no longer works, nor the token through the API
    client.cookies.set(SESSION_COOKIE, token, path="/console")
    assert client.get("/console/incidents").status_code == 303
    assert client.get("/api/me", headers=bearer(token)).status_code == 401


# -- pages ------------------------------------------------------------------------------------


def test_incident_list_and_detail_in_vietnamese_and_english(
    client: TestClient, db: Database
) -> None:
    (inc_id,) = incidents(db, alert(1, unit=A))
    admin = bearer(token_for(db, "seeder", "admin", ["*"]))
    run = client.post("/api/playbook-runs", headers=admin, json={"incident_id": inc_id})
    assert run.status_code == 201, run.text
    task = run.json()["tasks"][0]
    login(client, db, "analyst", [A])

    vi = client.get("/console/incidents")
    assert vi.status_code == 200
    assert '<html lang="vi">' in vi.text
    for text in ("Danh sách sự cố", "Mới", "Cao", "Trạng thái", "SSH brute force", "UTC+07:00"):
        assert text in vi.text, text
    # 10:01 UTC is 17:01 in Hà Nội
    assert "2026-11-23 17:01:00 UTC+07:00" in vi.text

    en = client.get("/console/incidents", params={"lang": "en"})
    assert en.status_code == 200
    assert f"{LANG_COOKIE}=en" in en.headers["set-cookie"]
    for text in ("Incidents", "New", "High", "State", "Severity"):
        assert text in en.text, text
    assert "Danh sách sự cố" not in en.text
    # the choice is kept in the cookie
    again = client.get(f"/console/incidents/{inc_id}")
    assert '<html lang="en">' in again.text
    for text in ("Alerts", "Observables", "Timeline", "Incident opened", "IP address"):
        assert text in again.text, text
    assert "203.0.113.1" in again.text
    assert task["title"]["en"] in again.text
    assert "Playbook runs" in again.text

    vi_detail = client.get(f"/console/incidents/{inc_id}", params={"lang": "vi"})
    for text in ("Cảnh báo", "Đối tượng quan sát", "Diễn biến", "Tạo sự cố", "Địa chỉ IP"):
        assert text in vi_detail.text, text
    assert task["title"]["vi"] in vi_detail.text
    assert "Hạn xử lý" in vi_detail.text


def test_incident_list_filters_and_pages(client: TestClient, db: Database) -> None:
    ids = incidents(
        db, alert(1, unit=A, title="SSH brute force"), alert(2, unit=A, title="Web shell upload")
    )
    login(client, db, "analyst", [A])
    page = client.get("/console/incidents", params={"q": "shell", "lang": "en"})
    assert f"/console/incidents/{ids[1]}" in page.text
    assert f"/console/incidents/{ids[0]}" not in page.text
    page = client.get("/console/incidents", params={"state": "closed"})
    assert "No incidents." in page.text
    page = client.get("/console/incidents", params={"state": "new", "severity": "high"})
    assert all(f"/console/incidents/{i}" in page.text for i in ids)
    # newest first
    assert page.text.index(f"/console/incidents/{ids[1]}") < page.text.index(
        f"/console/incidents/{ids[0]}"
    )
    assert client.get("/console/incidents", params={"page": 2}).status_code == 200


def test_a_unit_a_analyst_never_sees_unit_b(client: TestClient, db: Database) -> None:
    a_id, b_id = incidents(
        db, alert(1, unit=A, title="Incident of A"), alert(2, unit=B, title="Incident of B")
    )
    login(client, db, "analyst", [A])
    page = client.get("/console/incidents")
    assert "Incident of A" in page.text and "Incident of B" not in page.text
    assert f"/console/incidents/{b_id}" not in page.text
    searched = client.get("/console/incidents", params={"q": "Incident of B", "lang": "en"})
    assert "No incidents." in searched.text and f"/console/incidents/{b_id}" not in searched.text
    assert client.get(f"/console/incidents/{a_id}").status_code == 200
    other = client.get(f"/console/incidents/{b_id}")
    assert other.status_code == 404 and "Incident of B" not in other.text


def test_a_provider_analyst_never_sees_a_state_secret_incident(
    client: TestClient, db: Database
) -> None:
    open_id, secret_id = incidents(
        db,
        alert(1, unit=A, title="Ordinary incident"),
        alert(2, unit=A, title="Secret incident", secret=True),
    )
    with db.session() as s:
        assert s.get_one(Incident, secret_id).state_secret is True  # precondition
    login(client, db, "provider-analyst", ["*"])
    page = client.get("/console/incidents")
    assert "Ordinary incident" in page.text and "Secret incident" not in page.text
    assert client.get(f"/console/incidents/{secret_id}").status_code == 404
    assert client.get(f"/console/incidents/{open_id}").status_code == 200
    # a provincial analyst of the unit sees both
    login(client, db, "analyst", [A])
    assert "Secret incident" in client.get("/console/incidents").text


def test_hostile_text_is_escaped(client: TestClient, db: Database) -> None:
    (inc_id,) = incidents(db, alert(1, unit=A, title=HOSTILE, user={"name": HOSTILE}))
    login(client, db, "analyst", [A])
    for path in ("/console/incidents", f"/console/incidents/{inc_id}"):
        page = client.get(path)
        assert page.status_code == 200
        assert "<script" not in page.text.lower(), path
        assert "&lt;script&gt;" in page.text, path
        assert "script-src" not in page.headers["content-security-policy"]
    # the login form echoes the user name escaped
    client.cookies.clear()
    r = client.post("/console/login", data={"username": HOSTILE, "password": "x" * 12})
    assert "<script" not in r.text.lower() and "&lt;script&gt;" in r.text


def test_roles_without_incident_read_get_a_403_page(client: TestClient, db: Database) -> None:
    incidents(db, alert(1, unit=A))
    login(client, db, "sysadmin", [A])
    r = client.get("/console/incidents")
    assert r.status_code == 403
    assert "Không có quyền truy cập" in r.text and "SSH brute force" not in r.text
    assert client.get("/console/incidents/1").status_code == 403
    # a sysadmin lands on the sources, which every role reads
    client.cookies.clear()
    name = user_with_password(db, "sysadmin", [A])
    r = client.post("/console/login", data={"username": name, "password": PASSWORD})
    assert r.headers["location"] == "/console/sources"


def seed_systems(db: Database) -> None:
    now = datetime.now(UTC)
    with db.session() as s:
        for unit in (A, B):
            s.add(UnitRow(code=unit, name=f"Sở {unit}", kind="department", updated_at=now))
        s.flush()
        for code, unit, secret in (
            ("SYS-A", A, False),
            ("SYS-A-MAT", A, True),
            ("SYS-B", B, False),
        ):
            s.add(
                SystemRow(
                    code=code,
                    name=f"Hệ thống {code}",
                    unit=unit,
                    level=3,
                    dossier_status="approved",
                    regime="nd85",
                    state_secret=secret,
                    updated_at=now,
                )
            )
        s.commit()


def test_compliance_page_for_a_manager_and_403_for_the_drill_team(
    client: TestClient, db: Database
) -> None:
    seed_systems(db)
    login(client, db, "manager", [A])
    r = client.get("/console/compliance", params={"lang": "en"})
    assert r.status_code == 200
    assert "SYS-A" in r.text and "SYS-B" not in r.text
    assert 'action="/console/logout"' in r.text  # the console's bar is on the report
    assert r.text.index('class="cbar"') > r.text.index("<body")
    vi = client.get("/console/compliance", params={"lang": "vi"})
    assert '<html lang="vi">' in vi.text and "Đăng xuất" in vi.text

    login(client, db, "drill", [A])
    r = client.get("/console/compliance")
    assert r.status_code == 403 and "SYS-A" not in r.text
    assert client.get("/console/systems").status_code == 403


def test_systems_page_is_scoped(client: TestClient, db: Database) -> None:
    seed_systems(db)
    login(client, db, "analyst", [A])
    page = client.get("/console/systems", params={"lang": "vi"})
    assert page.status_code == 200
    assert "SYS-A-MAT" in page.text and "SYS-B" not in page.text
    assert "Đã phê duyệt" in page.text  # the dossier status, translated
    login(client, db, "provider-analyst", [A])
    page = client.get("/console/systems", params={"lang": "en"})
    assert "SYS-A" in page.text and "SYS-A-MAT" not in page.text
    assert "Approved" in page.text


def test_sources_page_is_scoped(client: TestClient, db: Database, store: Store) -> None:
    rows = []
    for host, unit in (("web-a", A), ("db-b", B)):
        row: dict[str, Any] = {
            "source": "/var/log/auth.log",
            "host": host,
            "collector": "file",
            "first_seen": 1.0,
            "last_seen": datetime(2026, 11, 23, 10, 0, 2, tzinfo=UTC).timestamp(),
            "eps": 0.0,
            "events": 1,
            "bytes": 10,
            "parse_failures": 0,
            "drops": 0,
            "unit": unit,
        }
        rows.append((f"{host}-auth", row))
    store.upsert(store.sources_target, rows)
    store.refresh(store.sources_target)
    login(client, db, "sysadmin", [A])
    page = client.get("/console/sources", params={"lang": "en"})
    assert page.status_code == 200
    assert "web-a" in page.text and "db-b" not in page.text
    assert "Silent" in page.text
    assert "2026-11-23 17:00:02 UTC+07:00" in page.text
