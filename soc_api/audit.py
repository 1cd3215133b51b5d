"""An append-only, hash-chained audit log of every state change."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import false, select, text, update
from sqlalchemy.orm import Session

from soc_api.models import AuditRecord

GENESIS = "0" * 64
_AUDIT_LOCK = 0x736F636D6175  # "socmau": the advisory lock key of the audit chain


def _digest(
    prev_hash: str,
    ts: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    detail: dict[str, Any],
) -> str:
    body = orjson.dumps(
        [prev_hash, ts.isoformat(), actor, action, object_type, object_id, detail],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(body).hexdigest()


def record(
    session: Session, actor: str, action: str, object_type: str, object_id: object, **detail: Any
) -> AuditRecord:
    """Append one audit record in the caller's transaction.

    Two writers must never chain onto the same last record (the chain would fork): the
    transaction first takes the database's write lock — PostgreSQL: an advisory transaction
    lock; SQLite: a no-op write, which takes the file's write lock before the read below.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK})
    elif dialect == "sqlite":
        session.execute(update(AuditRecord).where(false()).values(actor=AuditRecord.actor))
    last = session.scalars(
        select(AuditRecord).order_by(AuditRecord.id.desc()).limit(1).with_for_update()
    ).first()
    prev = last.hash if last else GENESIS
    ts = datetime.now(UTC).replace(microsecond=0)
    oid = str(object_id)
    rec = AuditRecord(
        ts=ts,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=oid,
        detail=detail,
        prev_hash=prev,
        hash=_digest(prev, ts, actor, action, object_type, oid, detail),
    )
    session.add(rec)
    session.flush()
    return rec


def verify(session: Session) -> tuple[bool, int, str]:
    """Check the whole chain: (ok, records checked, message)."""
    prev, n = GENESIS, 0
    for rec in session.scalars(select(AuditRecord).order_by(AuditRecord.id)):
        ts = rec.ts if rec.ts.tzinfo else rec.ts.replace(tzinfo=UTC)
        expected = _digest(
            prev, ts, rec.actor, rec.action, rec.object_type, rec.object_id, rec.detail
        )
        if rec.prev_hash != prev or rec.hash != expected:
            return False, n, f"audit record {rec.id} does not match the chain"
        prev, n = rec.hash, n + 1
    return True, n, f"{n} audit records verified"
