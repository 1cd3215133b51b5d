"""kill -9 of `socmon collect` at random moments while a source keeps sending.

Two sources, one contract (ARCHITECTURE §4):
- a file being appended to: at-least-once with position-based ids, so after ten kills the
  store holds every line exactly once (count == lines written, no duplicates);
- syslog over TCP: every line the collector accepted reaches the store exactly once, with
  no duplicates. Plain syslog/TCP has no acknowledgement, so the lines still in the
  kernel's receive buffer or in the collector's read batch at the instant of a kill -9 are
  lost by any receiver; the test measures that loss and checks that every missing line was
  sent within the second before a kill.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from socmon.config import load_settings
from socmon.embedded import EmbeddedStore
from socmon.store import Store

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

KILLS = 10
SOCMON = [sys.executable, "-m", "socmon.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    def __init__(
        self, tmp: Path, store_url: str, namespace: str, sources: list[dict[str, object]]
    ) -> None:
        self.config = tmp / "collect.yaml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "es_url": store_url,
                    "namespace": namespace,
                    "data_dir": str(tmp / "data"),
                    "sources": sources,
                    "spool_fsync": "interval",
                }
            )
        )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SOCMON_")}
        self.env["SOCMON_CONFIG"] = str(self.config)
        self.log = open(tmp / "collect.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: Callable[[], bool]) -> None:
        self.proc = subprocess.Popen(
            [*SOCMON, "collect"], env=self.env, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 30
        while not ready():
            assert self.proc.poll() is None, "socmon collect exited at start"
            assert time.monotonic() < deadline, "socmon collect not ready in 30 s"
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.log.close()


def drained(
    store: Store, target: str, expected: int | None, quiet: float = 10.0, limit: float = 180.0
) -> int:
    """Wait until the store's count reaches `expected` (unknown: stops growing for `quiet` s)."""
    deadline = time.monotonic() + limit
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        store.refresh(target)
        n = store.count(target)
        if expected is not None and n >= expected:
            return n
        if n != last:
            last, since = n, time.monotonic()
        elif expected is None and n > 0 and time.monotonic() - since > quiet:
            return n
        time.sleep(0.3)
    return last


def seqs_in_store(store: Store, target: str) -> list[int]:
    out: list[int] = []
    resp = store.client.search(
        index=target, scroll="1m", size=5000, source=["message"], query={"match_all": {}}
    )
    while resp["hits"]["hits"]:
        out += [
            int(re.search(r"seq=(\d+)", h["_source"]["message"]).group(1))
            for h in resp["hits"]["hits"]
        ]  # type: ignore[union-attr]
        resp = store.client.scroll(scroll_id=resp["_scroll_id"], scroll="1m")
    return out


@pytest.fixture
def crash_store(osmem: EmbeddedStore, tmp_path: Path) -> Store:
    settings = load_settings(data_dir=tmp_path / "x", namespace=f"crash{random.randrange(10**6)}")
    store = Store.connect(settings, osmem.url)
    store.setup()
    return store


def test_file_source_survives_ten_kills_exactly(
    tmp_path: Path, osmem: EmbeddedStore, crash_store: Store
) -> None:
    log_file = tmp_path / "app.log"
    log_file.touch()
    collector = Collector(
        tmp_path,
        osmem.url,
        crash_store.namespace,
        [{"type": "file", "paths": [str(log_file)], "start_at": "beginning", "parser": "syslog"}],
    )
    state = tmp_path / "data" / "state"
    collector.start(lambda: state.exists())
    written = 0
    stop = threading.Event()

    def writer() -> None:
        nonlocal written
        with open(log_file, "a") as f:
            while not stop.is_set():
                for _ in range(10):
                    f.write(f"<13>Nov 23 10:00:00 web01 app[1]: seq={written}\n")
                    written += 1
                f.flush()
                time.sleep(0.01)

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(KILLS):
            time.sleep(random.uniform(0.3, 1.2))
            collector.kill()
            collector.start(lambda: True)
        time.sleep(1.0)
    finally:
        stop.set()
        t.join()
    target = crash_store.events_target("syslog")
    n = drained(crash_store, target, expected=written)
    collector.stop()
    seqs = seqs_in_store(crash_store, target)
    assert len(seqs) == n == written, f"store has {n} of {written} lines"
    assert sorted(seqs) == list(range(written))  # every line once: nothing lost, nothing doubled


def test_tcp_source_survives_ten_kills(
    tmp_path: Path, osmem: EmbeddedStore, crash_store: Store
) -> None:
    port = free_port()
    collector = Collector(
        tmp_path,
        osmem.url,
        crash_store.namespace,
        [{"type": "syslog_tcp", "host": "127.0.0.1", "port": port, "parser": "syslog"}],
    )

    def listening() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    collector.start(listening)
    sent_at: dict[int, float] = {}
    stop = threading.Event()

    def sender() -> None:
        seq = 0
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    while not stop.is_set():
                        chunk = b"".join(
                            f"<13>Nov 23 10:00:00 fw1 app: seq={seq + i}\n".encode()
                            for i in range(10)
                        )
                        s.sendall(chunk)
                        now = time.monotonic()
                        for i in range(10):
                            sent_at[seq + i] = now
                        seq += 10
                        time.sleep(0.01)
            except OSError:
                time.sleep(0.05)  # the collector is down: reconnect and go on with the next line

    t = threading.Thread(target=sender)
    t.start()
    kills: list[float] = []
    try:
        for _ in range(KILLS):
            time.sleep(random.uniform(0.3, 1.2))
            kills.append(time.monotonic())
            collector.kill()
            collector.start(listening)
        time.sleep(1.0)
    finally:
        stop.set()
        t.join()
    target = crash_store.events_target("syslog")
    drained(crash_store, target, expected=None)
    collector.stop()
    seqs = seqs_in_store(crash_store, target)
    assert len(seqs) == len(set(seqs)), "a line was stored twice"
    missing = sorted(set(sent_at) - set(seqs))
    # A line is in flight at a kill if it was written to the socket in the second before it,
    # or just after it, before the sender saw the connection reset.
    unexplained = [s for s in missing if not any(abs(k - sent_at[s]) <= 1.0 for k in kills)]
    print(
        f"tcp: {len(sent_at)} sent, {len(seqs)} stored, {len(missing)} lost in flight at {KILLS} kills"
    )
    assert not unexplained, f"lines lost away from any kill: {unexplained[:10]}"
    assert len(missing) < 0.25 * len(
        sent_at
    )  # sanity bound; the per-kill window above is the real check
