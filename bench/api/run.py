"""API latency at province scale: list, detail and update of incidents at concurrency 50.

Seeds a database through the real migrations (`Database.migrate()`), bulk-inserts the
incidents and their alert references (SQLAlchemy Core, executemany batches) and creates
an admin and unit-scoped analysts through `soc_api.auth` (as `socmon admin create` does).
Then starts the real API (`create_app`, uvicorn) in a subprocess on a free port and drives
it from 50 worker tasks, each on its own keep-alive connection (`Connection`, a minimal
HTTP/1.1 client: httpx cost more CPU per request than the server). Besides latency it
reports the server's CPU time per request (all its processes, from /proc): a figure that
holds on a loaded machine, where latency and throughput follow what others run.

    .venv/bin/python bench/api/run.py                 # 100k incidents, 1M alert refs
    .venv/bin/python bench/api/run.py --quick         # 10k / 100k / 500 requests
    .venv/bin/python bench/api/run.py --db-url postgresql+psycopg://u:p@host/db

Variants of the server run one after the other on the same database: "head" (a copy of the
last commit, `git archive HEAD`: the "before"), "as-is" (the code in the tree, one process,
as `socmon up` serves it) and "workers" (the tree's code in `--workers` uvicorn processes).
`--phase-seconds` caps each operation's run; `bench/api/explain.py` shows per-request cost
and query plans on a database kept with `--keep` or `--seed-only`.

The update operation is found in the OpenAPI document (a PATCH of
`/api/incidents/{incident_id}`, or a status/transition sub-route); it moves each incident
one step along new → triage → investigating → contained → recovered → closed, so every
request is a valid transition. Without such a route the update rows say so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import git_rev, machine, percentile, table  # noqa: E402

from socmon.db import Database  # noqa: E402

CONCURRENCY = 50
PHASE_SECONDS = [0.0]  # --phase-seconds: a cap on each operation's run (0: none)
GOAL_MS = 100.0
BATCH = 5000
NEXT_STATUS = {
    "new": "triage",
    "triage": "investigating",
    "investigating": "contained",
    "contained": "recovered",
    "recovered": "closed",
}
OPEN_STATUSES = tuple(NEXT_STATUS)
# Owner units of a province: the People's Committee, departments (sở), districts, others.
UNITS = [
    "ubnd-tinh",
    "vp-ubnd",
    "so-tttt",
    "so-tc",
    "so-khdt",
    "so-yte",
    "so-gddt",
    "so-tnmt",
    "so-nnptnt",
    "so-gtvt",
    "so-xd",
    "so-ct",
    "so-nv",
    "so-tp",
    "so-vhttdl",
    "so-khcn",
    "so-ldtbxh",
    "thanh-tra",
    "bql-kkt",
    "bhxh-tinh",
    "benh-vien-dk",
    "cdc-tinh",
    "dai-ptth",
    "trung-tam-hcc",
    "tp-thu-phu",
    "tx-1",
    "tx-2",
    "h-01",
    "h-02",
    "h-03",
    "h-04",
    "h-05",
    "h-06",
    "h-07",
    "h-08",
    "h-09",
    "h-10",
    "h-11",
    "h-12",
    "h-13",
]
SEVERITIES = [("informational", 10), ("low", 30), ("medium", 35), ("high", 20), ("critical", 5)]
CATEGORIES = [*(f"A{i}" for i in range(1, 10)), *(f"B{i}" for i in range(1, 6))]
CATEGORIES += [f"C{i}" for i in range(1, 6)]
TITLES = [
    "Brute force against {host}",
    "Port scan from {src}",
    "Malware callback from {host}",
    "Web attack on {host}",
    "Defacement indicator on {host}",
    "Suspicious PowerShell on {host}",
    "Admin login from abroad to {host}",
    "Connection to known C2 {src}",
    "Denial of service against {host}",
    "Failed logins for {user}",
]
USERS = ["admin", "administrator", "root", "vanthu", "ketoan", "nguyenvana", "tranthib"]
HOSTS = ["portal", "mail", "dvc", "qlvb", "web", "db", "ad", "fs", "erp", "vpn"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_mem(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of a process in bytes."""
    out = {"VmRSS": 0, "VmHWM": 0}
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = ln.split(":", 1)[0]
        if key in out:
            out[key] = int(ln.split()[1]) * 1024
    return out["VmRSS"], out["VmHWM"]


TICK = os.sysconf("SC_CLK_TCK")
SERVER_PID = [0]  # the server being measured (its worker processes are counted too)


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants (uvicorn's
    worker processes): the server's cost per request whatever else runs on the machine."""
    total, todo, seen = 0.0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen or p <= 0:
            continue
        seen.add(p)
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
        for task in tasks:
            with contextlib.suppress(OSError):
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


# --- seeding -------------------------------------------------------------------------------


@dataclass
class Seeded:
    incidents: int = 0
    refs: int = 0
    seconds: float = 0.0
    status: dict[int, str] = field(default_factory=dict)  # incident id -> status
    unit_of: list[str] = field(default_factory=list)  # index id-1 -> unit
    tokens: dict[str, str] = field(default_factory=dict)  # "admin" / "analyst" -> token
    analyst_units: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _weighted(rng: random.Random, pairs: list[tuple[str, int]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _status(rng: random.Random, age_days: float) -> str:
    if age_days > 14:  # old incidents are mostly dealt with
        return _weighted(rng, [("closed", 75), ("false_positive", 20), ("recovered", 5)])
    return _weighted(
        rng,
        [
            ("new", 30),
            ("triage", 20),
            ("investigating", 20),
            ("contained", 10),
            ("recovered", 5),
            ("closed", 10),
            ("false_positive", 5),
        ],
    )


def _alert_counts(rng: random.Random, n: int, total: int) -> list[int]:
    """Alerts per incident: at least one, heavy-tailed (a few brute forces hold thousands)."""
    weights = [min(rng.paretovariate(1.1), 5000.0) for _ in range(n)]
    extra = total - n
    scale = extra / sum(weights)
    counts = [1 + int(w * scale) for w in weights]
    short = total - sum(counts)
    for i in rng.sample(range(n), k=min(n, abs(short))) if short else []:
        counts[i] += 1 if short > 0 else (-1 if counts[i] > 1 else 0)
    counts[-1] += total - sum(counts)
    return counts


def _fill_required(table: Any, row: dict[str, Any], reflected: Any) -> dict[str, Any]:
    """Keep the keys the table has; give NOT NULL columns added by newer migrations a value."""
    out = {k: v for k, v in row.items() if k in table.c}
    for col in reflected.columns:
        if col.name in out or col.nullable or col.server_default is not None or col.primary_key:
            continue
        mcol = table.c.get(col.name)
        if mcol is not None and (mcol.default is not None or mcol.server_default is not None):
            continue
        py: type = str
        with contextlib.suppress(NotImplementedError):
            py = col.type.python_type
        fill: dict[type, Any] = {
            int: 0,
            bool: False,
            dict: {},
            list: [],
            datetime: row.get("created_at"),
        }
        out[col.name] = fill.get(py, "")
    return out


def seed(db: Database, n_inc: int, n_refs: int, rng: random.Random) -> Seeded:
    from sqlalchemy import MetaData, Table, insert, text

    from soc_api.auth import create_user, issue_token
    from soc_api.models import Incident, IncidentAlert

    out = Seeded()
    t0 = time.monotonic()
    db.migrate()
    meta = MetaData()
    meta.reflect(db.engine, only=["incidents", "incident_alerts"])
    inc_table, ref_table = cast(Table, Incident.__table__), cast(Table, IncidentAlert.__table__)
    extra = [
        c.name
        for c in meta.tables["incidents"].columns
        if c.name not in {"id", "state", *_incident_row_keys()}
    ]
    if extra:
        out.notes.append(f"incidents columns not seeded by the bench: {', '.join(extra)}")
    now = datetime.now(UTC).replace(microsecond=0)
    unit_weights = [1.0 / (i + 1) ** 0.6 for i in range(len(UNITS))]  # a few big agencies
    rule_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(400)]
    rule_weights = [1.0 / (i + 1) for i in range(len(rule_ids))]
    counts = _alert_counts(rng, n_inc, n_refs)
    spans: list[tuple[datetime, datetime, str]] = []
    with db.engine.begin() as conn:
        rows: list[dict[str, Any]] = []
        for i in range(1, n_inc + 1):
            unit = rng.choices(UNITS, weights=unit_weights)[0]
            rule = rng.choices(rule_ids, weights=rule_weights)[0]
            last = now - timedelta(seconds=rng.uniform(0, 90 * 86400))
            first = last - timedelta(seconds=min(counts[i - 1] * rng.uniform(1, 30), 86400))
            status = _status(rng, (now - last).total_seconds() / 86400)
            sev = _weighted(rng, SEVERITIES)
            src = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            host = f"{rng.choice(HOSTS)}.{unit}.gov.vn"
            gf = {"source.ip": src, "destination.ip": f"10.{UNITS.index(unit)}.0.{i % 250 + 1}"}
            gk = hashlib.sha256(f"{rule}|{src}|{i}".encode()).hexdigest()
            row = {
                "id": i,
                "group_key": gk,
                "rule_id": rule,
                "title": rng.choice(TITLES).format(host=host, src=src, user=rng.choice(USERS)),
                "severity": sev,
                "status": status,
                "state": status,
                "dedup_key": gk if status in OPEN_STATUSES else None,
                "level": rng.choice([None, 1, 2, 2, 3, 3, 4, 5]),
                "category": rng.choice(CATEGORIES) if rng.random() < 0.9 else None,
                "response_path": "serious"
                if sev == "critical" or rng.random() < 0.05
                else "normal",
                "unit": unit,
                "group_fields": gf,
                "first_seen": first,
                "last_seen": last,
                "alert_count": counts[i - 1],
                "created_at": first,
                "updated_at": last,
            }
            rows.append(_fill_required(inc_table, row, meta.tables["incidents"]))
            out.status[i] = status
            out.unit_of.append(unit)
            spans.append((first, last, rule))
            if len(rows) >= BATCH:
                conn.execute(insert(inc_table), rows)
                rows.clear()
        if rows:
            conn.execute(insert(inc_table), rows)
        rows.clear()
        n = 0
        for i, (first, last, rule) in enumerate(spans, start=1):
            step = (last - first) / max(counts[i - 1], 1)
            gf_unit = out.unit_of[i - 1]
            for k in range(counts[i - 1]):
                n += 1
                ts = first + step * k
                rows.append(
                    _fill_required(
                        ref_table,
                        {
                            "id": n,
                            "incident_id": i,
                            "alert_id": f"{n:020x}",
                            "event_id": hashlib.blake2b(
                                n.to_bytes(8, "big"), digest_size=16
                            ).hexdigest(),
                            "rule_id": rule,
                            "ts": ts,
                            "fields": {
                                "@timestamp": ts.isoformat(),
                                "event.action": "deny" if k % 3 else "login_failed",
                                "source.ip": f"203.0.113.{k % 250 + 1}",
                                "destination.ip": f"10.{UNITS.index(gf_unit)}.0.{i % 250 + 1}",
                                "destination.port": 443,
                                "user.name": USERS[k % len(USERS)],
                                "observer.name": "fw-dc",
                            },
                        },
                        meta.tables["incident_alerts"],
                    )
                )
                if len(rows) >= BATCH:
                    conn.execute(insert(ref_table), rows)
                    rows.clear()
        if rows:
            conn.execute(insert(ref_table), rows)
        if conn.dialect.name == "postgresql":
            conn.execute(text("ANALYZE"))  # what autovacuum would do shortly after a load
    out.incidents, out.refs = n_inc, n
    # Analysts see a few units: one large, one middle-sized and one small agency.
    out.analyst_units = [UNITS[2], UNITS[12], UNITS[30]]
    with db.session() as session:
        admin = create_user(session, "bench-admin", "admin", ["*"], actor="bench")
        out.tokens["admin"] = issue_token(session, admin, actor="bench")
        for j in range(5):
            units = out.analyst_units if j == 0 else rng.sample(UNITS, 3)
            user = create_user(session, f"bench-analyst-{j}", "analyst", units, actor="bench")
            token = issue_token(session, user, actor="bench")
            if j == 0:
                out.tokens["analyst"] = token
    out.seconds = time.monotonic() - t0
    return out


def add_proposed_index(db: Database) -> None:
    """The index a migration would add for the scoped, state-filtered list and its count
    (a unit's incidents of one state, newest first): `--proposed-index`."""
    from sqlalchemy import text

    with db.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_incidents_unit_status_last_seen"
                " ON incidents (unit, status, last_seen)"
            )
        )
        conn.execute(text("ANALYZE"))


def _incident_row_keys() -> set[str]:
    return {
        "dedup_key",
        "level",
        "group_key",
        "rule_id",
        "title",
        "severity",
        "status",
        "category",
        "response_path",
        "unit",
        "group_fields",
        "first_seen",
        "last_seen",
        "alert_count",
        "created_at",
        "updated_at",
    }


# --- the server ----------------------------------------------------------------------------


CPU = [0.0, 0.0]  # (server, client) CPU seconds of the last drive()
WORKERS = [2]  # --workers: uvicorn worker processes of the "workers" variant


def bench_app() -> Any:
    """The application over $SOCMON_BENCH_DB_URL: the factory each uvicorn worker calls."""
    from soc_api.app import create_app

    return create_app(Database(os.environ["SOCMON_BENCH_DB_URL"]), None)


def serve(db_url: str, port: int, variant: str, workers: int) -> None:
    """The API over `db_url` in this process, as `socmon up` runs it (no store).

    "as-is" and "head": one uvicorn process (the code in the tree, or a copy of the last
    commit: `head_tree`); "workers": `workers` uvicorn processes on one socket (what
    `socmon api --workers N` would run), each building the app with `bench_app`.
    """
    import uvicorn

    common: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "log_level": "warning",
        "lifespan": "off",
        "access_log": False,
    }
    if variant == "workers":
        os.environ["SOCMON_BENCH_DB_URL"] = db_url
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        uvicorn.run("run:bench_app", factory=True, workers=workers, **common)
        return
    uvicorn.run(bench_app_for(db_url), **common)


def bench_app_for(db_url: str) -> Any:
    from soc_api.app import create_app

    return create_app(Database(db_url), None)


def head_tree(tmp: Path) -> Path:
    """A copy of the last commit's tree (`git archive HEAD`, read-only for the checkout):
    the "head" variant serves it, so before and after run on one machine at one time."""
    out = tmp / "head"
    if not out.exists():
        out.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


@contextlib.contextmanager
def server(
    db_url: str, variant: str, log: Path, tmp: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    script = Path(__file__)
    env = dict(os.environ)
    if variant == "head":
        tree = head_tree(tmp)
        script = tree / "bench" / "api" / "run.py"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    cmd = [sys.executable, str(script), "--serve", "--db-url", db_url, "--port", str(port)]
    cmd += ["--variant", "as-is" if variant == "head" else variant]
    cmd += ["--workers", str(WORKERS[0])] if variant == "workers" else []
    with log.open("ab") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=script.parents[2]
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the API server did not start") from None
                time.sleep(0.1)
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- the load ------------------------------------------------------------------------------


@dataclass
class Result:
    variant: str
    who: str
    op: str
    latencies: list[float]
    seconds: float
    errors: dict[int, int]
    note: str = ""
    server_cpu: float = 0.0  # CPU seconds of the server (all its processes) in the phase
    client_cpu: float = 0.0  # CPU seconds of this load generator in the phase


@dataclass
class UpdateRoute:
    method: str
    path: str  # with {id}
    field: str  # "status", "state" or "severity"


def find_update_route(spec: dict[str, Any]) -> UpdateRoute | None:
    """The incident update the API offers, from its OpenAPI document."""
    schemas = spec.get("components", {}).get("schemas", {})

    def props(op: dict[str, Any]) -> dict[str, Any]:
        content = op.get("requestBody", {}).get("content", {}).get("application/json", {})
        schema = content.get("schema", {})
        if "$ref" in schema:
            schema = schemas.get(schema["$ref"].rsplit("/", 1)[1], {})
        result: dict[str, Any] = schema.get("properties", {})
        return result

    for path, ops in spec.get("paths", {}).items():
        parts = path.split("/")
        if len(parts) < 4 or parts[:3] != ["", "api", "incidents"] or not parts[3].startswith("{"):
            continue
        tail = parts[4:]
        if tail not in ([], ["status"], ["state"], ["transition"], ["transitions"]):
            continue
        for method in ("patch", "post", "put"):
            if method not in ops or (not tail and method != "patch"):
                continue
            fields = props(ops[method])
            for name in ("status", "state", "to", "severity"):
                if name in fields:
                    return UpdateRoute(method.upper(), path.replace(parts[3], "{id}"), name)
    return None


class Updater:
    """Valid updates: each incident steps to its next status; one request per incident at once."""

    def __init__(self, route: UpdateRoute, pool: list[int], status: dict[int, str]) -> None:
        self.route, self.status = route, status
        self.free = [i for i in pool if status[i] in NEXT_STATUS]
        random.shuffle(self.free)
        self.in_flight = 0

    def take(self) -> tuple[int, dict[str, Any]] | None:
        if not self.free:
            return None
        iid = self.free.pop()
        self.in_flight += 1
        if self.route.field == "severity":
            cur = self.status.get(-iid, "medium")
            new = "high" if cur != "high" else "medium"
            self.status[-iid] = new
            return iid, {"severity": new}
        return iid, {self.route.field: NEXT_STATUS[self.status[iid]]}

    def done(self, iid: int, body: dict[str, Any], ok: bool) -> None:
        self.in_flight -= 1
        if ok and self.route.field != "severity":
            self.status[iid] = next(iter(body.values()))
        if self.route.field == "severity" or self.status[iid] in NEXT_STATUS:
            self.free.insert(0, iid)  # back of the queue: other incidents go first


class Connection:
    """A minimal HTTP/1.1 keep-alive client on one connection (asyncio streams).

    httpx costs the load generator 2-7 ms of CPU per request, more than the server's own
    cost on the list; on 2 shared cores that capped every variant at the same ~90 requests/s.
    This reads status, headers and body (Content-Length or chunked) and nothing more."""

    def __init__(self, base: str, token: str) -> None:
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 80
        self.head = f"Host: {self.host}:{self.port}\r\nAuthorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> int:
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        head = f"{method} {path} HTTP/1.1\r\n{self.head}"
        data = b""
        if body is not None:
            data = json.dumps(body).encode()
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        writer.write(head.encode() + b"\r\n" + data)
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split()[1])
        length, chunked, close = 0, False, False
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            key, value = key.strip().lower(), value.strip().lower()
            if key == b"content-length":
                length = int(value)
            elif key == b"transfer-encoding":
                chunked = b"chunked" in value
            elif key == b"connection":
                close = value == b"close"
        if chunked:
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            await reader.readuntil(b"\r\n")
        else:
            await reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def drive(
    base: str,
    token: str,
    n: int,
    make: Any,
    finish: Any = None,
    busy: Any = None,
    seconds: float = 0.0,
) -> tuple[list[float], float, dict[int, int]]:
    """`n` requests from CONCURRENCY workers, each on its own keep-alive connection.

    make() -> (method, url, json, ctx), or None when nothing can be sent now: the worker
    waits while busy() (requests in flight may free work) and stops otherwise. With
    `seconds`, no request starts after that time (the phase is cut short).
    """
    latencies: list[float] = []
    errors: dict[int, int] = {}
    left = n
    stop = time.perf_counter() + seconds if seconds else float("inf")

    async def worker() -> None:
        nonlocal left
        conn = Connection(base, token)
        try:
            while left > 0 and time.perf_counter() < stop:
                req = make()
                if req is None:
                    if busy is None or not busy():
                        return
                    await asyncio.sleep(0.001)
                    continue
                left -= 1
                method, url, body, ctx = req
                t0 = time.perf_counter()
                try:
                    code = await asyncio.wait_for(conn.request(method, url, body), 90)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as e:
                    code = 0  # connection closed by the server, or a timeout
                    await conn.close()
                    if not errors.get(0):
                        print(f"transport error: {e!r}", file=sys.stderr, flush=True)
                latencies.append(time.perf_counter() - t0)
                if code >= 300 or code == 0:
                    errors[code] = errors.get(code, 0) + 1
                if finish is not None:
                    finish(ctx, 0 < code < 300)
        finally:
            await conn.close()

    t0 = time.perf_counter()
    cpu0, own0 = proc_cpu(SERVER_PID[0]), time.process_time()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    wall = time.perf_counter() - t0
    CPU[:] = [proc_cpu(SERVER_PID[0]) - cpu0, time.process_time() - own0]
    return latencies, wall, errors


async def load(
    base: str, variant: str, seeded: Seeded, n: int, rng: random.Random, results: list[Result]
) -> None:
    spec = httpx.get(f"{base}/api/openapi.json").json()
    list_params = {
        p["name"]: p
        for p in spec["paths"]["/api/incidents"]["get"].get("parameters", [])
        if p.get("in") == "query"
    }
    status_param = next((s for s in ("status", "state") if s in list_params), None)
    route = find_update_route(spec)
    ids_by_who = {
        "admin": list(range(1, seeded.incidents + 1)),
        "analyst": [i + 1 for i, u in enumerate(seeded.unit_of) if u in set(seeded.analyst_units)],
    }
    # Admin updates stay outside the analyst's units, so each sees its own pool.
    update_pool = {
        "admin": [
            i for i in ids_by_who["admin"] if seeded.unit_of[i - 1] not in seeded.analyst_units
        ],
        "analyst": ids_by_who["analyst"],
    }
    for who in ("admin", "analyst"):
        await load_caller(
            base,
            variant,
            who,
            seeded,
            ids_by_who[who],
            update_pool[who],
            n,
            rng,
            status_param,
            route,
            results,
        )


async def load_caller(
    base: str,
    variant: str,
    who: str,
    seeded: Seeded,
    ids: list[int],
    pool: list[int],
    n: int,
    rng: random.Random,
    status_param: str | None,
    route: UpdateRoute | None,
    results: list[Result],
) -> None:
    token = seeded.tokens[who]
    # warm-up (not measured): the first requests open connections and fill caches
    await drive(base, token, 100, lambda: ("GET", "/api/incidents", None, None))

    def list_default() -> tuple[str, str, None, None]:
        return ("GET", "/api/incidents", None, None)

    def list_filtered() -> tuple[str, str, None, None]:
        q = f"?offset={rng.randrange(0, 5) * 50}&sort=-last_seen"
        if status_param:
            q += f"&{status_param}={rng.choice(OPEN_STATUSES)}"
        return ("GET", "/api/incidents" + q, None, None)

    def detail() -> tuple[str, str, None, None]:
        return ("GET", f"/api/incidents/{rng.choice(ids)}", None, None)

    for op, make, label in (
        ("list", list_default, "GET /api/incidents (default page: 50, newest first)"),
        (
            "list filtered",
            list_filtered,
            f"{status_param}=<open status>, sort=-last_seen, offset 0-200",
        ),
        ("detail", detail, "GET /api/incidents/{id}, random id in scope"),
    ):
        lat, wall, errs = await drive(base, token, n, make, seconds=PHASE_SECONDS[0])
        results.append(Result(variant, who, op, lat, wall, errs, label, *CPU))
        progress(results[-1])
    if route is None:
        results.append(
            Result(variant, who, "update", [], 0.0, {}, "no incident update route in the API")
        )
        return
    updater = Updater(route, pool, seeded.status)

    def update() -> tuple[str, str, dict[str, Any], tuple[int, dict[str, Any]]] | None:
        got = updater.take()
        if got is None:
            return None
        iid, body = got
        return (route.method, route.path.replace("{id}", str(iid)), body, (iid, body))

    def finish(ctx: tuple[int, dict[str, Any]], ok: bool) -> None:
        updater.done(ctx[0], ctx[1], ok)

    lat, wall, errs = await drive(
        base, token, n, update, finish, lambda: updater.in_flight, PHASE_SECONDS[0]
    )
    results.append(
        Result(
            variant,
            who,
            "update",
            lat,
            wall,
            errs,
            f"{route.method} {route.path} {{{route.field}}}",
            *CPU,
        )
    )
    progress(results[-1])


def progress(r: Result) -> None:
    p99 = ms(percentile(r.latencies, 99)) if r.latencies else "-"
    print(
        f"{r.variant} {r.who} {r.op}: {len(r.latencies)} in {r.seconds:.1f} s, p99 {p99} ms,"
        f" errors {r.errors}, server CPU {r.server_cpu:.1f} s",
        file=sys.stderr,
        flush=True,
    )


# --- report --------------------------------------------------------------------------------


def ms(v: float) -> str:
    return f"{v * 1000:.1f}"


def report(
    seeded: Seeded,
    results: list[Result],
    rss: dict[str, tuple[int, int]],
    dialect: str,
) -> None:
    print(f"machine: {machine()}; commit {git_rev()}; database {dialect}")
    found = {m: importlib.util.find_spec(m) is not None for m in ("httptools", "uvloop")}
    print(
        f"uvicorn: http {'httptools' if found['httptools'] else 'h11'},"
        f" loop {'uvloop' if found['uvloop'] else 'asyncio'}; concurrency {CONCURRENCY}"
    )
    cmd = " ".join(["bench/api/run.py", *sys.argv[1:]])
    print(f"command: .venv/bin/python {cmd}")
    print(
        f"seeded {seeded.incidents:,} incidents over {len(UNITS)} units and {seeded.refs:,} "
        f"alert references in {seeded.seconds:.1f} s; analyst units: {', '.join(seeded.analyst_units)}"
        f" ({sum(u in seeded.analyst_units for u in seeded.unit_of):,} incidents)"
    )
    for note in seeded.notes:
        print("note:", note)
    rows: list[list[object]] = []
    for r in results:
        if not r.latencies:
            rows.append([r.variant, r.who, r.op, 0, *["-"] * 9, r.note])
            continue
        p99 = percentile(r.latencies, 99)
        goal = "-"
        if r.op in ("list", "list filtered", "detail"):
            goal = "met" if p99 * 1000 < GOAL_MS else "NOT met"
        rows.append(
            [
                r.variant,
                r.who,
                r.op,
                len(r.latencies),
                ms(percentile(r.latencies, 50)),
                ms(percentile(r.latencies, 95)),
                ms(p99),
                ms(max(r.latencies)),
                f"{len(r.latencies) / r.seconds:.0f}",
                f"{r.server_cpu / len(r.latencies) * 1000:.1f}",
                f"{r.client_cpu / len(r.latencies) * 1000:.1f}",
                ", ".join(f"{k}×{v}" for k, v in sorted(r.errors.items())) or 0,
                goal,
                r.note,
            ]
        )
    print(
        table(
            [
                "code",
                "caller",
                "operation",
                "requests",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "req/s",
                "server CPU ms/req",
                "client CPU ms/req",
                "errors",
                f"goal p99 < {GOAL_MS:.0f} ms",
                "request",
            ],
            rows,
        )
    )
    for variant, (now, peak) in rss.items():
        print(f"server RSS ({variant}): {now / 1e6:.0f} MB at the end, peak {peak / 1e6:.0f} MB")


async def measure(
    base: str,
    proc: subprocess.Popen[bytes],
    variant: str,
    seeded: Seeded,
    n: int,
    rng: random.Random,
    results: list[Result],
) -> int:
    """Run the load against one server; returns the peak RSS seen while sampling."""
    peak = 0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, proc_mem(proc.pid)[0])
            await asyncio.sleep(0.5)

    SERVER_PID[0] = proc.pid
    sampler = asyncio.create_task(sample())
    try:
        await load(base, variant, seeded, n, rng, results)
    finally:
        sampler.cancel()
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db-url", help="database URL (default: a SQLite file in a temp dir)")
    ap.add_argument("--incidents", type=int, default=100_000)
    ap.add_argument("--refs", type=int, default=1_000_000, help="incident-alert references")
    ap.add_argument("--requests", type=int, default=5000, help="requests per operation")
    ap.add_argument("--quick", action="store_true", help="10k incidents, 100k refs, 500 requests")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--keep", action="store_true", help="keep the SQLite file")
    ap.add_argument(
        "--proposed-index",
        action="store_true",
        help="add the index (unit, status, last_seen) proposed for a migration before measuring",
    )
    ap.add_argument(
        "--seed-only", action="store_true", help="seed, keep the database and stop (explain.py)"
    )
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--variant", default="as-is", help=argparse.SUPPRESS)
    ap.add_argument(
        "--variants",
        default="head,as-is,workers",
        help="head: the last commit's code (git archive HEAD); as-is: the tree's code, one"
        " process; workers: the tree's code in --workers uvicorn processes",
    )
    ap.add_argument("--workers", type=int, default=2, help="processes of the workers variant")
    ap.add_argument(
        "--phase-seconds",
        type=float,
        default=25.0,
        help="stop starting requests of one operation after this long (0: no cap)",
    )
    ap.add_argument(
        "--as-is-requests", type=int, default=500, help="requests per operation for head"
    )
    args = ap.parse_args()
    if args.serve:
        serve(args.db_url, args.port, args.variant, args.workers)
        return
    if args.quick:
        args.incidents, args.refs, args.requests = 10_000, 100_000, 500
    PHASE_SECONDS[0] = args.phase_seconds
    WORKERS[0] = args.workers
    tmp = Path(tempfile.mkdtemp(prefix="socmon-bench-api-"))
    url = args.db_url or f"sqlite:///{tmp / 'socmon.db'}"
    rng = random.Random(args.seed)
    db = Database(url)
    try:
        seeded = seed(db, args.incidents, args.refs, rng)
        dialect = db.engine.dialect.name
        if args.proposed_index:
            add_proposed_index(db)
            seeded.notes.append("with the proposed index ix_incidents_unit_status_last_seen")
    finally:
        db.dispose()
    print(f"seeded in {seeded.seconds:.1f} s", file=sys.stderr, flush=True)
    if args.seed_only:
        print(f"kept: {url}")
        return
    results: list[Result] = []
    rss: dict[str, tuple[int, int]] = {}
    loads: dict[str, list[float]] = {}
    log = tmp / "server.log"
    for variant in args.variants.split(","):
        n = min(args.requests, args.as_is_requests) if variant == "head" else args.requests
        t0 = time.monotonic()
        loads[variant] = [os.getloadavg()[0]]
        with server(url, variant, log, tmp) as (base, proc):
            peak = asyncio.run(measure(base, proc, variant, seeded, n, rng, results))
            now, hwm = proc_mem(proc.pid)
            rss[variant] = (now, max(hwm, peak))
        loads[variant].append(os.getloadavg()[0])
        print(f"{variant}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    report(seeded, results, rss, dialect)
    for variant, (before, after) in loads.items():
        print(f"load average (1 min, 2 cores shared): {variant} {before:.1f} -> {after:.1f}")
    errors = log.read_text(errors="replace").count("Traceback")
    print(f"server tracebacks logged: {errors}" + (f" (see {log})" if errors else ""))
    if args.keep or errors:
        print(f"kept: {tmp}")
    else:  # the SQLite file, the server log and the copy of the last commit
        shutil.rmtree(tmp)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
