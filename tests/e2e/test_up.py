"""The whole stack as a user runs it: `socmon up`, a FortiGate line over UDP, an incident."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from socmon.corpus import corpus_dir
from socmon.store import CompatibleJsonNode

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SOCMON = [sys.executable, "-m", "socmon.cli"]


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningStack:
    proc: subprocess.Popen[str]
    api: str
    udp_port: int
    token: str
    log_path: Path

    def store_url(self) -> str:
        m = re.search(r"embedded store started url=(\S+)", self.log_path.read_text())
        assert m, "the stack did not log its embedded store URL"
        return m.group(1)


def start_stack(
    tmp_path: Path, db_url: str, *args: str, **extra_env: str
) -> Iterator[RunningStack]:
    """`socmon up ARGS` on the embedded store and the database at `db_url` (empty: the stack
    migrates it itself); stopped with SIGTERM after."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SOCMON_") or k == "SOCMON_CORPUS"
    }
    api_port, udp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    env.update(
        extra_env,
        SOCMON_DATA_DIR=str(tmp_path / "data"),
        SOCMON_API_PORT=str(api_port),
        SOCMON_SYSLOG_UDP_PORT=str(udp_port),
        SOCMON_SYSLOG_HOST="127.0.0.1",
        SOCMON_DB_URL=db_url,
    )
    created = subprocess.run(
        [*SOCMON, "admin", "create", "e2e-admin"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = created.stdout.strip()
    assert token.startswith("smk_") and "shown once" in created.stderr
    log_path = tmp_path / "socmon.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*SOCMON, "up", *args], env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
    api = f"http://127.0.0.1:{api_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"socmon up exited early:\n{log_path.read_text()}"
        try:
            if httpx.get(f"{api}/api/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail(f"stack not healthy within 60 s:\n{log_path.read_text()}")
    running = RunningStack(proc, api, udp_port, token, log_path)
    yield running
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def stack(tmp_path: Path, empty_db_url: str) -> Iterator[RunningStack]:
    """`socmon up` with a small inventory file, on SQLite and on PostgreSQL."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "zones:\n  - {name: dmz, cidrs: [10.10.10.0/24]}\n"
        "systems:\n  - {code: cong-dvc, name: Cổng dịch vụ công, level: 3, unit: so-tttt}\n"
        "assets:\n  - {name: dvc-web-01, ips: [10.10.10.10], unit: so-tttt, zone: dmz, systems: [cong-dvc]}\n",
        encoding="utf-8",
    )
    yield from start_stack(tmp_path, empty_db_url, SOCMON_INVENTORY_FILE=str(inventory))


def fortigate_line() -> bytes:
    """A real FortiGate deny from the corpus, re-addressed to an outside -> DC admin-port case."""
    base = corpus_dir()
    if base is None:
        pytest.skip("corpus absent: set SOCMON_CORPUS (CI always has it)")
    lines = (
        (base / "ecs-conformance/fortinet_fortigate/log/test-fortinet.log")
        .read_bytes()
        .split(b"\n")
    )
    deny = next(line for line in lines if b'action="deny"' in line and b'type="traffic"' in line)
    deny = re.sub(rb"srcip=\S+", b"srcip=203.0.113.50", deny)
    deny = re.sub(rb"dstip=\S+", b"dstip=10.10.10.10", deny)
    return re.sub(rb"dstport=\d+", b"dstport=22", deny)


def send_udp(port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, ("127.0.0.1", port))


def test_fortigate_deny_becomes_an_incident(stack: RunningStack) -> None:
    health = httpx.get(f"{stack.api}/api/health").json()
    assert health["status"] == "ok" and health["store"]["embedded"] is True
    auth = {"Authorization": f"Bearer {stack.token}"}
    assert httpx.get(f"{stack.api}/api/incidents").status_code == 401

    sent_at = time.monotonic()
    send_udp(stack.udp_port, fortigate_line())
    incidents: list[dict[str, object]] = []
    while time.monotonic() - sent_at < 15:
        incidents = httpx.get(f"{stack.api}/api/incidents", headers=auth).json()["data"]
        if incidents:
            break
        time.sleep(0.1)
    latency = time.monotonic() - sent_at
    assert incidents, f"no incident within 15 s:\n{stack.log_path.read_text()}"
    print(f"incident visible {latency:.2f} s after the UDP send")
    inc = incidents[0]
    assert inc["rule_id"] == "d68a873f-6857-441b-a820-02ad753c96ea"
    assert inc["category"] == "A4" and inc["severity"] == "high"
    assert inc["unit"] == "so-tttt"  # owner unit from the inventory (enrichment), used for scoping
    assert inc["group_fields"] == {"source.ip": "203.0.113.50", "destination.ip": "10.10.10.10"}

    # The event and the alert are in the store, with ECS types.
    es = Elasticsearch(stack.store_url(), node_class=CompatibleJsonNode)
    events = es.search(
        index="logs-fortinet.fortigate-default", query={"term": {"source.ip": "203.0.113.0/24"}}
    )
    assert events["hits"]["total"]["value"] == 1
    event = events["hits"]["hits"][0]
    assert event["_source"]["destination"]["port"] == 22
    alerts = es.search(index="socmon-alerts-default", query={"match_all": {}})
    assert alerts["hits"]["hits"][0]["_source"]["socmon"]["alert"]["event_id"] == event["_id"]
    detail = httpx.get(f"{stack.api}/api/incidents/{inc['id']}", headers=auth).json()
    assert detail["alerts"][0]["event_id"] == event["_id"]
    # The incident opened its group's playbook (A4, normal path) with tasks due.
    runs = httpx.get(f"{stack.api}/api/playbook-runs", headers=auth).json()["data"]
    assert [(r["incident_id"], r["group"]) for r in runs] == [(inc["id"], "A4")]
    es.close()
    # High severity on a level-3 system: the serious path. Working the incident through the
    # API drives the same playbook engine: an analyst lowering the severity makes the path
    # normal (that playbook's run starts, the serious one is superseded), and recovery
    # starts the end-of-response report's deadline.
    assert inc["response_path"] == "serious" and runs[0]["path"] == "serious"
    url = f"{stack.api}/api/incidents/{inc['id']}"
    r = httpx.patch(url, headers=auth, json={"severity": "low"})
    assert r.status_code == 200 and r.json()["response_path"] == "normal", r.text
    for state in ("investigating", "contained", "recovered"):
        assert httpx.patch(url, headers=auth, json={"state": state}).status_code == 200
    runs = httpx.get(f"{stack.api}/api/playbook-runs", headers=auth).json()["data"]
    by_path = {r["path"]: r for r in runs}
    assert set(by_path) == {"normal", "serious"} and by_path["serious"]["status"] == "done"
    normal = httpx.get(
        f"{stack.api}/api/playbook-runs/{by_path['normal']['id']}", headers=auth
    ).json()
    reports = [t for t in normal["tasks"] if t["kind"] == "report"]
    assert reports and all(t["due_at"] for t in reports), reports

    # Source health shows the sender (published every 5 s).
    deadline = time.monotonic() + 15
    sources: list[dict[str, object]] = []
    while time.monotonic() < deadline and not sources:
        sources = httpx.get(f"{stack.api}/api/sources", headers=auth).json()["data"]
        time.sleep(0.2)
    assert [(s["source"], s["events"], s["silent"]) for s in sources] == [
        ("syslog+udp://127.0.0.1", 1, False)
    ]


def test_malformed_syslog_is_stored_with_reason(stack: RunningStack) -> None:
    send_udp(stack.udp_port, b"this line has no syslog header \xff\xfe")
    send_udp(stack.udp_port, b"<13>Nov 23 10:00:00 web01 sshd[1]: fine line")
    es = Elasticsearch(stack.store_url(), node_class=CompatibleJsonNode)
    deadline = time.monotonic() + 15
    hits: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        hits = es.search(
            index="logs-*", query={"term": {"tags": "_parse_failure"}}, ignore_unavailable=True
        )["hits"]["hits"]
        if hits:
            break
        time.sleep(0.2)
    assert len(hits) == 1, stack.log_path.read_text()
    src = hits[0]["_source"]
    assert "invalid UTF-8" in src["error"]["message"]
    assert src["event"]["original"].startswith("this line has no syslog header")
    ok: list[dict[str, Any]] = []
    while time.monotonic() < deadline + 15 and not ok:  # shipped in its own batch, maybe later
        ok = es.search(
            index="logs-syslog-default",
            query={"match": {"message": "fine"}},
            ignore_unavailable=True,
        )["hits"]["hits"]
        time.sleep(0.2)
    assert ok and "_parse_failure" not in ok[0]["_source"].get("tags", [])
    es.close()


def test_sigterm_stops_cleanly(stack: RunningStack) -> None:
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(20) == 0
    text = stack.log_path.read_text()
    assert "socmon stopped" in text and "embedded store stopped" in text
    assert "Traceback" not in text
    m = re.search(r"embedded store started url=\S+ pid=(\d+)", text)
    assert m, text
    assert not Path(f"/proc/{m.group(1)}").exists(), "the embedded store outlived socmon"


def test_demo_province_is_enriched_and_evaluated(tmp_path: Path) -> None:
    """`socmon up --demo`: the sample province in the database drives enrichment (no
    inventory file) and the compliance views (first evaluation at start)."""
    running = start_stack(tmp_path, f"sqlite:///{tmp_path / 'demo.db'}", "--demo")
    stack = next(running)
    try:
        auth = {"Authorization": f"Bearer {stack.token}"}
        systems = httpx.get(f"{stack.api}/api/inventory/systems", headers=auth).json()
        assert systems["count"] == 15
        summary: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            summary = httpx.get(f"{stack.api}/api/compliance/summary", headers=auth).json()
            if summary.get("province", {}).get("systems") == 15:
                break
            time.sleep(0.5)
        assert summary["province"]["systems"] == 15, summary
        assets = httpx.get(
            f"{stack.api}/api/inventory/assets", headers=auth, params={"limit": 1000}
        ).json()["data"]
        web = next(a for a in assets if a["ips"] and "web" in a["name"] and a["systems"])
        send_udp(stack.udp_port, fortigate_line().replace(b"10.10.10.10", web["ips"][0].encode()))
        es = Elasticsearch(stack.store_url(), node_class=CompatibleJsonNode)
        hits: list[dict[str, Any]] = []
        while time.monotonic() < deadline + 30 and not hits:
            hits = es.search(index="logs-*", ignore_unavailable=True)["hits"]["hits"]
            time.sleep(0.3)
        assert hits, stack.log_path.read_text()
        dest = hits[0]["_source"]["socmon"]["destination"]
        assert dest["asset"] == web["name"] and dest["systems"] == web["systems"]
        es.close()
    finally:
        with contextlib.suppress(StopIteration):
            next(running)
