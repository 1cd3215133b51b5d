"""`socmon api --workers 2`: the API alone in two processes over the stack's database and
store; the login limit holds across them (failures counted in the database)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from socmon.embedded import EmbeddedStore

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SOCMON = [sys.executable, "-m", "socmon.cli"]


def test_two_api_processes_share_the_database_and_the_login_limit(
    tmp_path: Path, osmem: EmbeddedStore
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCMON_")}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env.update(
        SOCMON_DATA_DIR=str(tmp_path / "data"),
        SOCMON_ES_URL=osmem.url,
        SOCMON_NAMESPACE="apiworkers",
        SOCMON_API_HOST="127.0.0.1",
    )
    made = subprocess.run(
        [*SOCMON, "admin", "create", "boss", "--password-stdin"],
        input="a long console password\n",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    token = made.stdout.strip()
    log = open(tmp_path / "api.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [*SOCMON, "api", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(f"{api}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail((tmp_path / "api.log").read_text())
        me = httpx.get(f"{api}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["name"] == "boss"
        # Fresh connections spread over both processes; the sixth attempt is refused by
        # whichever process gets it, the right password included.
        codes = []
        for _ in range(5):
            with httpx.Client() as c:
                r = c.post(f"{api}/api/login", json={"username": "boss", "password": "wrong one"})
                codes.append(r.status_code)
        assert codes == [401] * 5
        for _ in range(4):
            with httpx.Client() as c:
                r = c.post(
                    f"{api}/api/login",
                    json={"username": "boss", "password": "a long console password"},
                )
                assert r.status_code == 429, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
