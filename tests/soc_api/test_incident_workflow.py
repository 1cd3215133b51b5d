"""The incident workflow of issue 6: grouping, windows, dedup, concurrency, suppression,
merge/split, transitions, group and path, observables, timeline, scoping and audit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from detections.alerts import make_alert
from soc_api import audit, create_app, create_user, issue_token
from soc_api.incidents import IncidentPolicy, IncidentService
from soc_api.models import (
    Incident,
    IncidentAlert,
    IncidentEvent,
    IncidentObservable,
    SuppressedAlert,
    Suppression,
)
from soc_api.routes.incidents import suppressions_router
from socmon.db import Database
from socmon.store import Store

PORTAL = "10.10.10.10"


def alert(
    n: int,
    src: str = "198.51.100.1",
    *,
    dst: str = PORTAL,
    rule: str = "r-brute",
    ts: str = "2026-11-23T10:00:00Z",
    level: str = "high",
    tags: tuple[str, ...] = ("attack.credential_access", "attack.t1110", "socmon.group.a4"),
    group_by: tuple[str, ...] = ("destination.ip",),
    unit: str | None = "so-tttt",
    sys_level: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    socmon: dict[str, Any] = {"unit": unit} if unit else {}
    if sys_level is not None:
        socmon["level"] = sys_level
    fields: dict[str, Any] = {
        "source": {"ip": src},
        "destination": {"ip": dst, "port": 443},
        "user": {"name": f"user{n % 7}"},
        "url": {
            "full": "https://dichvucong.example.gov.vn/login",
            "domain": "DichVuCong.example.gov.vn",
        },
        "socmon": socmon,
    }
    fields.update(extra or {})
    return make_alert(
        alert_id=f"{rule}-{n}",
        rule_id=rule,
        title="Brute force against the public-service portal",
        level=level,
        tags=tags,
        group_by=group_by,
        timestamp=ts,
        event_id=f"ev-{n}",
        fields=fields,
    )


def ingest(svc: IncidentService, db: Database, *docs: dict[str, Any]) -> list[Incident | None]:
    with db.session() as s:
        return [svc.ingest(s, d["_id"], d) for d in docs]


def incidents(db: Database) -> list[Incident]:
    with db.session() as s:
        return list(s.scalars(select(Incident).order_by(Incident.id)))


# -- grouping ----------------------------------------------------------------------------------


def test_brute_force_from_500_sources_is_one_incident_with_500_ip_observables(
    db: Database,
) -> None:
    """The issue's case: 500 source IPs against one portal, grouped by destination."""
    svc = IncidentService(window=timedelta(hours=1))
    docs = [
        alert(n, f"198.51.{100 + n // 250}.{n % 250}", ts=f"2026-11-23T10:{n % 60:02d}:00Z")
        for n in range(500)
    ]
    svc.ingest_batch(db, [(d["_id"], d) for d in docs])
    [inc] = incidents(db)
    assert inc.alert_count == 500 and inc.group_fields == {"destination.ip": PORTAL}
    with db.session() as s:
        ips = {
            o.value: o.count
            for o in s.scalars(
                select(IncidentObservable).where(
                    IncidentObservable.incident_id == inc.id, IncidentObservable.type == "ip"
                )
            )
        }
        others = dict(
            s.execute(
                select(IncidentObservable.type, func.count())
                .where(IncidentObservable.incident_id == inc.id, IncidentObservable.type != "ip")
                .group_by(IncidentObservable.type)
            ).all()
        )
    sources = {ip for ip in ips if ip != PORTAL}
    assert len(sources) == 500 and all(ips[ip] == 1 for ip in sources)
    assert ips[PORTAL] == 500  # the portal itself: one observable seen 500 times
    assert others == {"user": 7, "url": 1, "domain": 1}  # deduplicated, domain lower-cased


def test_per_rule_and_per_tag_windows(db: Database) -> None:
    policy = IncidentPolicy.model_validate(
        {
            "window_seconds": 600,
            "rule_windows": {"r-slow": 86400},
            "tag_windows": {"attack.t1110": 7200, "attack.credential_access": 3600},
        }
    )
    assert policy.window_for("r-slow", ["attack.t1110"]) == 86400  # rule wins
    assert policy.window_for("x", ["attack.T1110", "attack.credential_access"]) == 7200
    assert policy.window_for("x", ["attack.execution"]) == 600
    svc = IncidentService(policy=policy)
    tagless: tuple[str, ...] = ()
    # Default window (10 min): 09:00 and 09:30 are two incidents.
    a, b = ingest(
        svc,
        db,
        alert(1, rule="r-plain", tags=tagless, ts="2026-11-23T09:00:00Z"),
        alert(2, rule="r-plain", tags=tagless, ts="2026-11-23T09:30:00Z"),
    )
    assert a is not None and b is not None and a.id != b.id
    # Tag window (2 h): 09:00 and 10:30 are one incident.
    c, d = ingest(
        svc,
        db,
        alert(3, rule="r-tag", ts="2026-11-23T09:00:00Z"),
        alert(4, rule="r-tag", ts="2026-11-23T10:30:00Z"),
    )
    assert c is not None and d is not None and c.id == d.id
    # Rule window (1 day): 09:00 and 20:00 are one incident; another destination is not.
    e, f, g = ingest(
        svc,
        db,
        alert(5, rule="r-slow", tags=tagless, ts="2026-11-23T09:00:00Z"),
        alert(6, rule="r-slow", tags=tagless, ts="2026-11-23T20:00:00Z"),
        alert(7, rule="r-slow", tags=tagless, ts="2026-11-23T20:00:00Z", dst="10.10.10.11"),
    )
    assert e is not None and f is not None and g is not None
    assert e.id == f.id != g.id
    assert IncidentPolicy.from_dict({}, window_seconds=60).window_seconds == 60
    assert IncidentPolicy.from_dict({"window_seconds": 5}, window_seconds=60).window_seconds == 5
    with pytest.raises(ValueError, match="windows must be"):
        IncidentPolicy.model_validate({"rule_windows": {"r": 0}})
    with pytest.raises(ValueError, match="unknown incident groups"):
        IncidentPolicy.model_validate({"rule_groups": {"r": "Z9"}})


def test_same_alert_twice_adds_nothing(db: Database) -> None:
    svc = IncidentService()
    doc = alert(1)
    svc.ingest_batch(db, [(doc["_id"], doc)])
    svc.ingest_batch(db, [(doc["_id"], doc), (doc["_id"], doc)])
    [inc] = incidents(db)
    assert inc.alert_count == 1
    with db.session() as s:
        assert s.scalar(select(func.count(IncidentAlert.id))) == 1
        assert s.scalar(select(func.sum(IncidentObservable.count))) == len(
            {("ip", "198.51.100.1"), ("ip", PORTAL), ("user", "x"), ("url", "u"), ("domain", "d")}
        )
        kinds = s.scalars(select(IncidentEvent.kind).order_by(IncidentEvent.id)).all()
    assert kinds == ["created", "alert_added"]


def test_grouping_slot_is_unique_in_the_database(db: Database) -> None:
    """Two writers that both saw no incident cannot both open one: the second flush fails."""
    svc = IncidentService()
    s1, s2 = db.sessions(), db.sessions()
    try:
        svc.ingest(s1, "x-1", alert(1))
        s1.commit()
        # s2 acts as if it had not seen s1's incident: it inserts the same slot.
        first = s2.scalars(select(Incident)).one()
        clone = Incident(
            **{
                c: getattr(first, c)
                for c in ("group_key", "dedup_key", "rule_id", "title", "severity", "status")
            },
            response_path="normal",
            group_fields={},
            first_seen=first.first_seen,
            last_seen=first.last_seen,
            alert_count=0,
            created_at=first.created_at,
            updated_at=first.updated_at,
        )
        s2.add(clone)
        with pytest.raises(IntegrityError):
            s2.flush()
        s2.rollback()
    finally:
        s1.close()
        s2.close()


def test_alert_storm_from_many_threads_opens_no_duplicate(db: Database) -> None:
    """8 threads, 2 targets, 400 alerts in small transactions against the SQLite file:
    exactly one incident per target, every alert attached once, the audit chain intact."""
    svc = IncidentService(window=timedelta(hours=1))
    docs = [
        alert(n, f"203.0.113.{n % 200}", dst=PORTAL if n % 2 else "10.10.10.11") for n in range(400)
    ]
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            start.wait()
            mine = docs[k::8]
            for i in range(0, len(mine), 5):
                svc.ingest_batch(db, [(d["_id"], d) for d in mine[i : i + 5]], attempts=200)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    found = incidents(db)
    assert sorted(i.group_fields["destination.ip"] for i in found) == ["10.10.10.10", "10.10.10.11"]
    assert [i.alert_count for i in found] == [200, 200]
    with db.session() as s:
        assert s.scalar(select(func.count(IncidentAlert.id))) == 400
        portal = s.scalars(
            select(IncidentObservable).where(IncidentObservable.value == PORTAL)
        ).one()
        assert portal.count == 200  # no lost increment
        ok, n, msg = audit.verify(s)
        assert ok, msg
        assert n == 2  # one incident.create per incident


def _storm_process(url: str, k: int, n: int) -> None:
    """One writer process of the storm below (module level: spawned processes import it)."""
    db = Database(url)
    try:
        svc = IncidentService(window=timedelta(hours=1))
        docs = [alert(i, f"203.0.113.{i % 200}") for i in range(n)][k::3]
        for i in range(0, len(docs), 4):
            svc.ingest_batch(db, [(d["_id"], d) for d in docs[i : i + 4]], attempts=200)
    finally:
        db.dispose()


def test_alert_storm_from_several_processes_opens_no_duplicate(db: Database) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_storm_process, args=(db.url, k, 120)) for k in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    [inc] = incidents(db)
    assert inc.alert_count == 120
    with db.session() as s:
        assert s.scalar(select(func.count(IncidentAlert.id))) == 120
        ip_count = s.scalar(
            select(func.sum(IncidentObservable.count)).where(
                IncidentObservable.value == PORTAL, IncidentObservable.type == "ip"
            )
        )
        assert ip_count == 120  # no lost increment
        ok, n, msg = audit.verify(s)
        assert ok and n == 1, msg


def test_on_opened_is_called_after_commit_only(db: Database) -> None:
    svc = IncidentService()
    seen: list[tuple[int, str]] = []
    svc.on_opened(lambda inc: seen.append((inc.id, inc.status)))
    with pytest.raises(RuntimeError), db.session() as s:
        svc.ingest(s, "rb-1", alert(1))
        assert seen == []
        raise RuntimeError("rolled back")
    assert seen == []
    with db.session() as s:
        inc = svc.ingest(s, "ok-1", alert(1))
        svc.ingest(s, "ok-2", alert(2))  # joins the same incident: no second call
        assert seen == []
    assert inc is not None and seen == [(inc.id, "new")]


# -- group and response path ---------------------------------------------------------------------


def test_group_from_rule_table_tag_or_attack_mapping(db: Database) -> None:
    policy = IncidentPolicy.model_validate(
        {"rule_groups": {"r-overload": "b4"}, "attack_groups": {"attack.discovery": "A4"}}
    )
    assert policy.group_for("r-overload", ["socmon.group.a1"]) == "B4"
    assert policy.group_for("x", ["attack.impact", "socmon.group.a5"]) == "A5"
    assert policy.group_for("x", ["attack.impact", "attack.t1486"]) == "A6"  # technique first
    assert policy.group_for("x", ["attack.impact", "attack.t1498.001"]) == "A1"
    assert policy.group_for("x", ["attack.exfiltration"]) == "A8"
    assert policy.group_for("x", ["attack.discovery"]) == "A4"  # overridden
    assert policy.group_for("x", ["foo"]) is None
    svc = IncidentService(policy=policy)
    [inc] = ingest(svc, db, alert(1, rule="r-x", tags=("attack.t1486", "attack.impact")))
    assert inc is not None and inc.category == "A6"


def test_response_path_from_severity_and_system_level(db: Database) -> None:
    policy = IncidentPolicy()
    assert policy.path_for("critical", None) == "serious"
    assert policy.path_for("high", 3) == "serious"
    assert policy.path_for("high", 2) == "normal"
    assert policy.path_for("high", None) == "normal"
    assert policy.path_for("medium", 5) == "normal"
    strict = IncidentPolicy.model_validate(
        {"serious_when": [{"severity": ["medium", "high", "critical"], "min_level": 4}]}
    )
    assert strict.path_for("medium", 4) == "serious" and strict.path_for("critical", 3) == "normal"
    svc = IncidentService()
    a, b = ingest(svc, db, alert(1, sys_level=2), alert(2, sys_level=3))
    assert a is not None and b is not None and a.id == b.id
    assert b.level == 3 and b.severity == "high" and b.response_path == "serious"
    [c] = ingest(svc, db, alert(3, dst="10.0.0.9", level="medium", sys_level=5))
    assert c is not None and c.response_path == "normal"


# -- suppression -------------------------------------------------------------------------------


def test_suppression_records_alerts_and_expires(db: Database) -> None:
    svc = IncidentService()
    now = datetime.now(UTC)
    with db.session() as s:
        s.add_all(
            [
                Suppression(
                    rule_id="r-brute",
                    match={"source.ip": ["192.0.2.7", "192.0.2.8"]},
                    reason="vulnerability scanner of the provincial SOC",
                    unit=None,
                    expires_at=now + timedelta(days=1),
                    created_by="t",
                    created_at=now,
                    hits=0,
                ),
                Suppression(
                    rule_id="r-brute",
                    match={},
                    reason="expired maintenance window",
                    unit=None,
                    expires_at=now - timedelta(minutes=1),
                    created_by="t",
                    created_at=now - timedelta(days=1),
                    hits=0,
                ),
                Suppression(
                    rule_id="r-brute",
                    match={},
                    reason="only for another unit",
                    unit="so-yte",
                    expires_at=now + timedelta(days=1),
                    created_by="t",
                    created_at=now,
                    hits=0,
                ),
            ]
        )
    suppressed, kept, again = ingest(
        svc, db, alert(1, "192.0.2.7"), alert(2, "192.0.2.9"), alert(1, "192.0.2.7")
    )
    assert suppressed is None and again is None
    assert kept is not None and kept.alert_count == 1
    with db.session() as s:
        rows = s.scalars(select(SuppressedAlert)).all()
        assert [(r.alert_id, r.fields["source.ip"]) for r in rows] == [("r-brute-1", "192.0.2.7")]
        sup = s.scalars(select(Suppression).order_by(Suppression.id)).first()
        assert sup is not None and sup.hits == 1
        sup.expires_at = now - timedelta(seconds=1)  # the scanner window is over
    [later] = ingest(svc, db, alert(3, "192.0.2.7"))
    assert later is not None and later.id == kept.id and later.alert_count == 2


# -- merge and split -----------------------------------------------------------------------------


def test_merge_moves_alerts_observables_timeline(db: Database) -> None:
    svc = IncidentService()
    a, b = ingest(
        svc, db, alert(1, "192.0.2.1"), alert(2, "192.0.2.2", dst="10.0.0.2", level="critical")
    )
    assert a is not None and b is not None and a.id != b.id
    with db.session() as s:
        target, source = s.get_one(Incident, a.id), s.get_one(Incident, b.id)
        svc.comment(s, source, "analyst1", "same campaign")
        svc.merge(s, target, source, "analyst1")
    with db.session() as s:
        target, source = s.get_one(Incident, a.id), s.get_one(Incident, b.id)
        assert source.status == "closed" and source.merged_into_id == a.id
        assert source.alert_count == 0 and source.dedup_key is None
        assert target.alert_count == 2 and target.severity == "critical"
        assert target.response_path == "serious"
        ips = set(
            s.scalars(
                select(IncidentObservable.value).where(
                    IncidentObservable.incident_id == a.id, IncidentObservable.type == "ip"
                )
            )
        )
        assert ips == {"192.0.2.1", "192.0.2.2", PORTAL, "10.0.0.2"}
        assert not s.scalars(
            select(IncidentObservable).where(IncidentObservable.incident_id == b.id)
        ).all()
        kinds = s.scalars(select(IncidentEvent.kind).where(IncidentEvent.incident_id == a.id)).all()
        assert {"created", "alert_added", "comment", "merged"} <= set(kinds)
        assert kinds.count("created") == 2  # B's history moved along
        with pytest.raises(Exception, match="already merged"):
            svc.merge(s, target, source, "analyst1")


def test_split_moves_alerts_into_a_new_incident(db: Database) -> None:
    svc = IncidentService()
    docs = [alert(n, f"192.0.2.{n}", level="critical" if n == 3 else "high") for n in range(5)]
    ingest(svc, db, *docs)
    [inc] = incidents(db)
    with db.session() as s:
        new = svc.split(s, s.get_one(Incident, inc.id), ["r-brute-3", "r-brute-4"], "analyst1")
        new_id = new.id
    with db.session() as s:
        old, new = s.get_one(Incident, inc.id), s.get_one(Incident, new_id)
        assert (old.alert_count, new.alert_count) == (3, 2)
        assert old.severity == "high" and new.severity == "critical"
        assert new.rule_id == old.rule_id and new.unit == old.unit
        new_ips = set(
            s.scalars(
                select(IncidentObservable.value).where(
                    IncidentObservable.incident_id == new_id, IncidentObservable.type == "ip"
                )
            )
        )
        assert new_ips == {"192.0.2.3", "192.0.2.4", PORTAL}
        portal = s.scalars(
            select(IncidentObservable).where(
                IncidentObservable.incident_id == inc.id, IncidentObservable.value == PORTAL
            )
        ).one()
        assert portal.count == 3
    # A later alert of the group joins the original incident, not the split-off one.
    [later] = ingest(svc, db, alert(9, "192.0.2.9"))
    assert later is not None and later.id == inc.id
    with db.session() as s, pytest.raises(Exception, match="at least one alert"):
        svc.split(s, s.get_one(Incident, new_id), ["r-brute-3", "r-brute-4"], "a")


def test_closing_releases_the_slot(db: Database) -> None:
    svc = IncidentService()
    [a] = ingest(svc, db, alert(1))
    assert a is not None
    with db.session() as s:
        svc.update(s, s.get_one(Incident, a.id), "analyst1", state="false_positive")
    [b] = ingest(svc, db, alert(2))
    assert b is not None and b.id != a.id and b.status == "new"


# -- API -------------------------------------------------------------------------------------


@pytest.fixture
def client(db: Database, store: Store) -> Iterator[TestClient]:
    app = create_app(db, store, embedded=True)
    if not any(getattr(r, "path", "") == "/api/suppressions" for r in app.routes):
        app.include_router(suppressions_router, prefix="/api")  # until app.py registers it
    with TestClient(app) as c:
        yield c


def auth(db: Database, name: str, units: list[str], role: str = "analyst") -> dict[str, str]:
    with db.session() as s:
        token = issue_token(s, create_user(s, name, role, units, actor="test"), actor="test")
    return {"Authorization": f"Bearer {token}"}


def user_id(db: Database, name: str) -> int:
    from soc_api.models import User

    with db.session() as s:
        return s.scalars(select(User.id).where(User.name == name)).one()


def two_units(db: Database) -> tuple[int, int]:
    svc = IncidentService()
    a, b = ingest(svc, db, alert(1, unit="so-tttt"), alert(2, dst="10.20.0.5", unit="so-yte"))
    assert a is not None and b is not None
    return a.id, b.id


@pytest.mark.integration
def test_unit_a_never_sees_unit_b(client: TestClient, db: Database) -> None:
    a_id, b_id = two_units(db)
    tttt = auth(db, "tttt", ["so-tttt"])
    yte = auth(db, "yte", ["so-yte"])
    listed = client.get("/api/incidents", headers=tttt).json()
    assert [i["id"] for i in listed["data"]] == [a_id] and listed["count"] == 1
    assert client.get("/api/incidents?unit=so-yte", headers=tttt).json()["count"] == 0
    assert client.get(f"/api/incidents/{b_id}", headers=tttt).status_code == 404
    assert client.get(f"/api/incidents/{b_id}/observables", headers=tttt).status_code == 404
    r = client.patch(f"/api/incidents/{b_id}", json={"state": "triage"}, headers=tttt)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.post(f"/api/incidents/{b_id}/comments", json={"body": "x"}, headers=tttt)
    assert r.status_code == 404
    r = client.post(f"/api/incidents/{a_id}/merge", json={"incident_ids": [b_id]}, headers=tttt)
    assert r.status_code == 404
    r = client.post(f"/api/incidents/{b_id}/split", json={"alert_ids": ["r-brute-2"]}, headers=tttt)
    assert r.status_code == 404
    # Assignment only to a user who can see the incident.
    r = client.patch(
        f"/api/incidents/{a_id}", json={"assignee_id": user_id(db, "yte")}, headers=tttt
    )
    assert r.status_code == 422 and "cannot see or work" in r.json()["error"]["message"]
    r = client.patch(
        f"/api/incidents/{a_id}", json={"assignee_id": user_id(db, "tttt")}, headers=tttt
    )
    assert r.status_code == 200 and r.json()["assignee_id"] == user_id(db, "tttt")
    assert client.get("/api/incidents", headers=yte).json()["data"][0]["id"] == b_id


@pytest.mark.integration
def test_transitions_allowed_and_forbidden(client: TestClient, db: Database) -> None:
    a_id, _ = two_units(db)
    h = auth(db, "boss", ["*"])
    url = f"/api/incidents/{a_id}"
    r = client.patch(url, json={"state": "recovered"}, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"
    for state in ("triage", "investigating", "contained", "recovered", "closed"):
        r = client.patch(url, json={"state": state}, headers=h)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == state
    assert client.patch(url, json={"state": "contained"}, headers=h).status_code == 409
    assert client.patch(url, json={"state": "bogus"}, headers=h).status_code == 422
    assert client.patch(url, json={"state": "triage"}, headers=h).status_code == 200  # reopen
    assert client.patch(url, json={"state": "false_positive"}, headers=h).status_code == 200
    assert client.patch(url, json={}, headers=h).status_code == 422
    detail = client.get(url, headers=h).json()
    changes = [e["detail"] for e in detail["timeline"] if e["kind"] == "state_changed"]
    assert [c["new"] for c in changes] == [
        "triage",
        "investigating",
        "contained",
        "recovered",
        "closed",
        "triage",
        "false_positive",
    ]
    assert all(e["actor"] == "boss" for e in detail["timeline"] if e["kind"] == "state_changed")
    assert detail["timeline"][-1]["kind_label"] == {"vi": "Đổi trạng thái", "en": "State changed"}


@pytest.mark.integration
def test_patch_severity_group_comment_and_list_filters(client: TestClient, db: Database) -> None:
    a_id, b_id = two_units(db)
    h = auth(db, "boss", ["*"])
    r = client.patch(
        f"/api/incidents/{a_id}", json={"severity": "critical", "group": "a9"}, headers=h
    )
    body = r.json()
    assert r.status_code == 200 and body["severity"] == "critical" and body["category"] == "A9"
    assert body["response_path"] == "serious"
    assert body["response_path_label"] == {"vi": "Nghiêm trọng", "en": "Serious"}
    assert (
        client.patch(f"/api/incidents/{a_id}", json={"group": "Z1"}, headers=h).status_code == 422
    )
    assert (
        client.patch(f"/api/incidents/{a_id}", json={"severity": "huge"}, headers=h).status_code
        == 422
    )
    # An analyst's severity stays when milder alerts arrive.
    ingest(IncidentService(), db, alert(30, level="low", unit="so-tttt"))
    assert client.get(f"/api/incidents/{a_id}", headers=h).json()["severity"] == "critical"
    r = client.post(
        f"/api/incidents/{a_id}/comments", json={"body": "  blocked at FW  "}, headers=h
    )
    assert r.status_code == 201 and r.json()["body"] == "blocked at FW"
    assert (
        client.post(f"/api/incidents/{a_id}/comments", json={"body": ""}, headers=h).status_code
        == 422
    )
    detail = client.get(f"/api/incidents/{a_id}", headers=h).json()
    assert [c["body"] for c in detail["comments"]] == ["blocked at FW"]
    assert {o["type"] for o in detail["observables"]} == {"ip", "user", "url", "domain"}
    assert detail["observables"][0]["type_label"] is not None
    assert detail["observable_count"] == len(detail["observables"])

    # Filters, sorting, pagination.
    def ids(query: str) -> list[int]:
        r = client.get(f"/api/incidents?{query}", headers=h)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["data"]]

    assert ids("severity=critical") == [a_id]
    assert ids("group=A9") == [a_id]
    assert ids("state=new&unit=so-yte") == [b_id]
    assert ids("q=PORTAL&sort=id") == [a_id, b_id]
    assert ids("q=nothing-like-this") == []
    assert ids("sort=-severity") == [a_id, b_id]
    assert ids("sort=id&limit=1&offset=1") == [b_id]
    assert ids(f"assignee={user_id(db, 'boss')}") == []
    assert client.get("/api/incidents?group=Q7", headers=h).status_code == 422
    # Out-of-range ids and NUL characters are a 4xx on every database, never a 5xx.
    assert client.get(f"/api/incidents/{2**40}", headers=h).status_code == 422
    assert client.get("/api/incidents?q=a%00b", headers=h).status_code == 422
    r = client.post(f"/api/incidents/{a_id}/comments", json={"body": "a\u0000b"}, headers=h)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = client.patch(f"/api/incidents/{a_id}", json={"assignee_id": 2**40}, headers=h)
    assert r.status_code == 422
    r = client.patch(f"/api/incidents/{a_id}", json={"assignee_id": 999999}, headers=h)
    assert r.status_code == 422 and "not found" in r.json()["error"]["message"]
    assert client.get("/api/incidents?sort=bogus", headers=h).status_code == 422


@pytest.mark.integration
def test_merge_and_split_over_the_api(client: TestClient, db: Database) -> None:
    svc = IncidentService()
    a, b = ingest(svc, db, alert(1, "192.0.2.1"), alert(2, "192.0.2.2", dst="10.0.0.2"))
    assert a is not None and b is not None
    h = auth(db, "boss", ["*"])
    r = client.post(f"/api/incidents/{a.id}/merge", json={"incident_ids": [b.id]}, headers=h)
    assert r.status_code == 200 and r.json()["alert_count"] == 2
    merged = client.get(f"/api/incidents/{b.id}", headers=h).json()
    assert merged["status"] == "closed" and merged["merged_into_id"] == a.id
    r = client.patch(f"/api/incidents/{b.id}", json={"state": "triage"}, headers=h)
    assert r.status_code == 409
    r = client.post(f"/api/incidents/{a.id}/merge", json={"incident_ids": [a.id]}, headers=h)
    assert r.status_code == 422
    r = client.post(f"/api/incidents/{a.id}/split", json={"alert_ids": ["r-brute-2"]}, headers=h)
    assert r.status_code == 201
    new = r.json()
    assert new["alert_count"] == 1 and new["alerts"][0]["alert_id"] == "r-brute-2"
    assert {"split_from"} <= {e["kind"] for e in new["timeline"]}
    r = client.post(f"/api/incidents/{a.id}/split", json={"alert_ids": ["nope"]}, headers=h)
    assert r.status_code == 422 and "nope" in r.json()["error"]["message"]
    with db.session() as s:
        actions = s.scalars(
            select(audit.AuditRecord.action).where(audit.AuditRecord.object_type == "incident")
        ).all()
        assert {"incident.create", "incident.merge", "incident.split"} <= set(actions)
        ok, _, msg = audit.verify(s)
        assert ok, msg


@pytest.mark.integration
def test_suppressions_crud_scoped_and_audited(client: TestClient, db: Database) -> None:
    boss = auth(db, "boss", ["*"])
    yte = auth(db, "yte", ["so-yte"])
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {
        "rule_id": "r-brute",
        "match": {"source.ip": "192.0.2.50"},
        "reason": "pentest by the independent assessor (layer 3)",
        "expires_at": soon,
        "unit": "so-tttt",
    }
    r = client.post("/api/suppressions", json=body, headers=boss)
    assert r.status_code == 201, r.text
    sup = r.json()
    assert sup["active"] is True and sup["created_by"] == "boss"
    # Scoping: a so-yte user neither sees it nor may create one for another unit / all units.
    assert client.get("/api/suppressions", headers=yte).json()["count"] == 0
    assert client.get(f"/api/suppressions/{sup['id']}", headers=yte).status_code == 404
    assert client.delete(f"/api/suppressions/{sup['id']}", headers=yte).status_code == 404
    assert client.post("/api/suppressions", json=body, headers=yte).status_code == 422
    assert (
        client.post("/api/suppressions", json=body | {"unit": None}, headers=yte).status_code == 422
    )
    # Bad input.
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert (
        client.post("/api/suppressions", json=body | {"expires_at": past}, headers=boss).status_code
        == 422
    )
    assert (
        client.post("/api/suppressions", json=body | {"reason": ""}, headers=boss).status_code
        == 422
    )
    assert (
        client.post(
            "/api/suppressions", json=body | {"match": {"source.ip": {"a": 1}}}, headers=boss
        ).status_code
        == 422
    )
    # It applies to ingestion; an expiry set in the past ends it.
    svc = IncidentService()
    assert ingest(svc, db, alert(1, "192.0.2.50")) == [None]
    assert client.get(f"/api/suppressions/{sup['id']}", headers=boss).json()["hits"] == 1
    r = client.patch(f"/api/suppressions/{sup['id']}", json={"expires_at": past}, headers=boss)
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/suppressions?active=true", headers=boss).json()["count"] == 0
    [opened] = ingest(svc, db, alert(2, "192.0.2.50"))
    assert opened is not None
    assert client.delete(f"/api/suppressions/{sup['id']}", headers=boss).status_code == 204
    assert client.get(f"/api/suppressions/{sup['id']}", headers=boss).status_code == 404
    with db.session() as s:
        actions = s.scalars(
            select(audit.AuditRecord.action).where(audit.AuditRecord.object_type == "suppression")
        ).all()
        assert actions == ["suppression.create", "suppression.update", "suppression.delete"]
        ok, _, msg = audit.verify(s)
        assert ok, msg


@pytest.mark.integration
def test_every_api_change_is_audited_and_chain_verifies(client: TestClient, db: Database) -> None:
    a_id, _ = two_units(db)
    h = auth(db, "boss", ["*"])
    client.patch(f"/api/incidents/{a_id}", json={"state": "triage", "severity": "low"}, headers=h)
    client.post(f"/api/incidents/{a_id}/comments", json={"body": "checked"}, headers=h)
    with db.session() as s:
        recs = s.scalars(
            select(audit.AuditRecord).where(audit.AuditRecord.object_id == str(a_id))
        ).all()
        by_action = {r.action: r for r in recs}
        assert by_action["incident.update"].actor == "boss"
        assert by_action["incident.update"].detail["state"] == ["new", "triage"]
        assert by_action["incident.update"].detail["severity"] == ["high", "low"]
        assert "incident.comment" in by_action
        ok, n, msg = audit.verify(s)
        assert ok and n >= 6, msg
        rec = s.scalars(select(audit.AuditRecord).order_by(audit.AuditRecord.id.desc())).first()
        assert rec is not None
        rec.detail = {"state": ["new", "closed"]}
    with db.session() as s:
        ok, _, msg = audit.verify(s)
        assert not ok and "does not match" in msg


@pytest.mark.integration
def test_roles_and_state_secret(client: TestClient, db: Database) -> None:
    """Managers read but do not change; provider analysts never see nor get assigned an
    incident touching a state-secret system."""
    svc = IncidentService()
    [secret] = ingest(
        svc,
        db,
        alert(1, extra={"socmon": {"unit": "so-tttt", "destination": {"state_secret": True}}}),
    )
    [plain] = ingest(svc, db, alert(2, dst="10.0.0.7"))
    assert secret is not None and plain is not None and secret.state_secret
    manager = auth(db, "manager", ["so-tttt"], role="manager")
    provider = auth(db, "provider", ["so-tttt"], role="provider-analyst")
    boss = auth(db, "boss", ["*"])
    assert client.get("/api/incidents", headers=manager).json()["count"] == 2
    r = client.patch(f"/api/incidents/{plain.id}", json={"state": "triage"}, headers=manager)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert [i["id"] for i in client.get("/api/incidents", headers=provider).json()["data"]] == [
        plain.id
    ]
    assert client.get(f"/api/incidents/{secret.id}", headers=provider).status_code == 404
    r = client.patch(
        f"/api/incidents/{secret.id}", json={"assignee_id": user_id(db, "provider")}, headers=boss
    )
    assert r.status_code == 422
    r = client.patch(
        f"/api/incidents/{plain.id}", json={"assignee_id": user_id(db, "manager")}, headers=boss
    )
    assert r.status_code == 422  # a manager does not work incidents
    r = client.patch(
        f"/api/incidents/{plain.id}", json={"assignee_id": user_id(db, "provider")}, headers=boss
    )
    assert r.status_code == 200
