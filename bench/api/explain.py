"""Where one API request's time goes: serial in-process requests under cProfile, and the
query plans of the incident list (run on a database seeded by `run.py --keep`).

    .venv/bin/python bench/api/explain.py sqlite:////tmp/socmon-bench-api-XXXX/socmon.db
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import UNITS  # noqa: E402

from socmon.db import Database  # noqa: E402

PATHS = {
    "list": "/api/incidents",
    "list filtered": "/api/incidents?status=investigating&sort=-last_seen&offset=100",
    "detail": "/api/incidents/{id}",
}


def explain(db: Database, analyst_units: list[str]) -> None:
    """Plans of the list route's two queries (bounded count, page) for an admin and an analyst."""
    from sqlalchemy import text

    units = ", ".join(f"'{u}'" for u in analyst_units)
    scoped = f"unit IN ({units})"
    bound = 50 + 10_000 + 1  # the list's count stops at offset + limit + COUNT_LIMIT (+1)
    queries = {
        "count, admin": f"SELECT count(*) FROM (SELECT id FROM incidents LIMIT {bound})",
        "exact count, admin (before)": "SELECT count(*) FROM incidents",
        "page, admin": "SELECT * FROM incidents ORDER BY last_seen DESC, id DESC LIMIT 50",
        "count, analyst": (
            f"SELECT count(*) FROM (SELECT id FROM incidents WHERE {scoped} LIMIT {bound})"
        ),
        "page, analyst": (
            f"SELECT * FROM incidents WHERE {scoped} ORDER BY last_seen DESC, id DESC LIMIT 50"
        ),
        "count, analyst, state": (
            f"SELECT count(*) FROM (SELECT id FROM incidents WHERE {scoped}"
            f" AND status = 'investigating' LIMIT {bound})"
        ),
        "page, analyst, state": (
            f"SELECT * FROM incidents WHERE {scoped} AND status = 'investigating' "
            "ORDER BY last_seen DESC, id DESC LIMIT 50 OFFSET 100"
        ),
    }
    pg = db.engine.dialect.name == "postgresql"
    with db.engine.connect() as conn:
        for name, sql in queries.items():
            t0 = time.perf_counter()
            for _ in range(5):
                conn.execute(text(sql)).all()
            took = (time.perf_counter() - t0) / 5 * 1000
            plan = conn.execute(text(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + sql)).all()
            steps = "; ".join(str(r[-1]) for r in plan)
            print(f"{name}: {took:.1f} ms — {steps}")


async def _inline(func: Any, *args: Any, **_kwargs: Any) -> Any:
    return func(*args)


async def serial(db: Database, token: str, ids: list[int], n: int) -> None:
    """`n` requests per path, one at a time; the sync endpoints and dependencies run in the
    event loop's thread (not anyio's worker threads), so that cProfile sees their cost."""
    import anyio.to_thread

    from soc_api.app import create_app

    setattr(anyio.to_thread, "run_sync", _inline)  # noqa: B010

    app = create_app(db, None)
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        await c.get("/api/incidents")
        for op, path in PATHS.items():
            prof = cProfile.Profile()
            t0 = time.perf_counter()
            prof.enable()
            for i in range(n):
                r = await c.get(path.format(id=ids[i % len(ids)]))
                r.raise_for_status()
            prof.disable()
            took = (time.perf_counter() - t0) / n * 1000
            print(f"\n== {op}: {took:.1f} ms per request, serial, in process (profiled)")
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
            print("\n".join(out.getvalue().splitlines()[6:28]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("db_url")
    ap.add_argument("--requests", type=int, default=30)
    args = ap.parse_args()
    from soc_api.auth import create_user, issue_token

    db = Database(args.db_url)
    units = [UNITS[2], UNITS[12], UNITS[30]]
    explain(db, units)
    from sqlalchemy import text

    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, unit FROM incidents WHERE id % 97 = 0")).all()
    stamp = int(time.time())
    with db.session() as session:
        admin = create_user(session, f"profile-admin-{stamp}", "admin", ["*"], actor="bench")
        analyst = create_user(session, f"profile-analyst-{stamp}", "analyst", units, actor="bench")
        tokens = {
            "admin": issue_token(session, admin, actor="bench"),
            "analyst": issue_token(session, analyst, actor="bench"),
        }
    for who, token in tokens.items():
        ids = [r[0] for r in rows if who == "admin" or r[1] in units]
        print(f"\n######## {who}")
        asyncio.run(serial(db, token, ids, args.requests))


if __name__ == "__main__":
    main()
