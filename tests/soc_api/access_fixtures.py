"""Shared helpers of the access tests: users per role and unit, alerts in the store."""

from __future__ import annotations

from typing import Any

from detections.alerts import make_alert
from soc_api.auth import create_user, issue_token
from socmon.db import Database
from socmon.store import Store

ROLES = ("admin", "analyst", "provider-analyst", "sysadmin", "manager", "drill")


def token_for(db: Database, name: str, role: str, units: list[str]) -> str:
    with db.session() as s:
        return issue_token(s, create_user(s, name, role, units, actor="test"), actor="test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def alert_doc(
    n: int,
    *,
    unit: str | None,
    secret_side: str | None = None,
    rule_id: str = "r-brute",
    level: str = "high",
    title: str = "SSH brute force",
    ts: str = "2026-11-23T10:00:00Z",
) -> tuple[str, dict[str, Any]]:
    context: dict[str, Any] = {}
    if unit is not None:
        context["unit"] = unit
    if secret_side is not None:
        context[secret_side] = {"systems": ["QLVB-MAT"], "state_secret": True, "unit": unit}
    doc = make_alert(
        alert_id=f"al-{n}",
        rule_id=rule_id,
        title=title,
        level=level,
        tags=["attack.credential_access"],
        group_by=[],
        timestamp=ts,
        event_id=f"ev-{n}",
        fields={"socmon": context, "source": {"ip": f"203.0.113.{n % 250}"}},
    )
    doc_id = str(doc.pop("_id"))
    return doc_id, doc


def put_alerts(store: Store, docs: list[tuple[str, dict[str, Any]]]) -> None:
    result = store.bulk_create(store.alerts_target, docs)
    assert result.created == len(docs), result
    store.refresh(store.alerts_target)
