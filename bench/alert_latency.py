"""Time from a FortiGate line sent over UDP to its incident in `GET /api/incidents`.

Starts a real `socmon up` (embedded store, SQLite) on free ports, sends lines one at a
time (each from a new source address, so each opens a new incident) and polls the API.

    .venv/bin/python bench/alert_latency.py [--count 40]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import git_rev, machine, percentile, table

LINE = (
    '<189>date=2026-11-23 time=10:00:00 devname="fw-dc" devid="FG100E" logid="0000000013" '
    'type="traffic" subtype="forward" level="notice" vd="root" srcip={src} srcport=60899 '
    'srcintf="wan1" srcintfrole="wan" dstip=10.10.10.10 dstport=22 dstintf="dmz" '
    'dstintfrole="dmz" sessionid=1 proto=6 action="deny" policyid=0 service="SSH"'
)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=40)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="socmon-bench-"))
    api_port, udp_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCMON_")}
    env.update(
        SOCMON_DATA_DIR=str(tmp),
        SOCMON_API_PORT=str(api_port),
        SOCMON_SYSLOG_UDP_PORT=str(udp_port),
    )
    socmon = [sys.executable, "-m", "socmon.cli"]
    token = subprocess.run(
        [*socmon, "admin", "create", "bench"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    started = time.monotonic()
    proc = subprocess.Popen(
        [*socmon, "up"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    api = f"http://127.0.0.1:{api_port}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        while True:
            try:
                if httpx.get(f"{api}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        startup = time.monotonic() - started
        latencies: list[float] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for i in range(args.count):
                t0 = time.monotonic()
                sock.sendto(LINE.format(src=f"203.0.113.{i + 1}").encode(), ("127.0.0.1", udp_port))
                while (
                    httpx.get(f"{api}/api/incidents?limit=1", headers=auth).json()["count"] < i + 1
                ):
                    if time.monotonic() - t0 > 30:
                        raise SystemExit(f"line {i} produced no incident within 30 s")
                    time.sleep(0.01)
                latencies.append(time.monotonic() - t0)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    print(f"machine: {machine()}; commit {git_rev()}")
    print("command: .venv/bin/python bench/alert_latency.py --count", args.count)
    print(
        table(
            ["measure", "socmon", "peer"],
            [
                ["stack start to healthy (s)", f"{startup:.2f}", "n/a"],
                ["UDP send -> incident in API, p50 (s)", f"{percentile(latencies, 50):.3f}", "n/a"],
                ["UDP send -> incident in API, p95 (s)", f"{percentile(latencies, 95):.3f}", "n/a"],
                ["UDP send -> incident in API, max (s)", f"{max(latencies):.3f}", "n/a"],
            ],
        )
    )


if __name__ == "__main__":
    main()
