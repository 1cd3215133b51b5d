import contextlib
import os
import signal
import socket
import threading
import time
from pathlib import Path

import orjson
import pytest

from collectors.pipeline import Pipeline, RawMessage
from collectors.ship import Shipper, events_target
from socmon.config import Settings
from socmon.embedded import EmbeddedStore
from socmon.errors import StoreError
from socmon.spool import Spool
from socmon.store import Store

pytestmark = pytest.mark.integration


def lines(n: int, start: int = 0) -> list[RawMessage]:
    return [
        RawMessage(
            source="syslog+udp://192.0.2.1",
            data=f"<13>Nov 23 10:00:00 h app: line {i}".encode(),
            received_at=time.time(),
        )
        for i in range(start, start + n)
    ]


def test_ship_and_replay_store_each_event_once(tmp_path: Path, store: Store) -> None:
    spool = Spool(tmp_path / "spool", consumers=["ship"])
    Pipeline(spool).process(lines(250))
    shipper = Shipper(spool, store, events_target(store), tmp_path / "dead", batch=100)
    while shipper.once():
        pass
    target = store.events_target("syslog")
    store.refresh(target)
    assert store.count(target) == 250
    spool.close()
    # Replay: forget the cursor (as after a crash before the commit) and ship everything again.
    (tmp_path / "spool" / "cursors" / "ship.cursor").unlink()
    spool = Spool(tmp_path / "spool", consumers=["ship"])
    shipper = Shipper(spool, store, events_target(store), tmp_path / "dead", batch=100)
    assert shipper.once() == 100
    while shipper.once():
        pass
    store.refresh(target)
    assert store.count(target) == 250
    spool.close()


def test_rejected_documents_go_to_dead_letters(tmp_path: Path, store: Store) -> None:
    spool = Spool(tmp_path / "spool", consumers=["ship"])
    good = {"_id": "g1", "@timestamp": "2026-01-01T00:00:00Z", "event": {"dataset": "test"}}
    bad = {
        "_id": "b1",
        "@timestamp": "2026-01-01T00:00:00Z",
        "event": {"dataset": "test"},
        "source": {"ip": "not-an-ip"},
    }
    spool.append([good, bad], lambda d, _s: orjson.dumps(d))
    shipper = Shipper(spool, store, events_target(store), tmp_path / "dead")
    assert shipper.once() == 2
    assert shipper.once() == 0  # the cursor moved on: the bad document does not block
    target = store.events_target("test")
    store.refresh(target)
    assert store.count(target) == 1
    letters = (tmp_path / "dead" / f"{target}.jsonl").read_bytes().splitlines()
    assert len(letters) == 1
    letter = orjson.loads(letters[0])
    assert letter["socmon"]["doc_id"] == "b1" and "source.ip" in letter["error"]["message"]
    assert letter["document"]["source"]["ip"] == "not-an-ip"
    store.refresh(store.deadletter_target)
    assert store.count(store.deadletter_target) == 1
    spool.close()


def test_store_stall_loses_nothing_and_doubles_nothing(tmp_path: Path, settings: Settings) -> None:
    """The store process is frozen (SIGSTOP) mid-stream, then thawed: every line lands once."""
    with EmbeddedStore() as server:
        assert server.proc is not None
        store = Store.connect(settings, server.url)
        store.setup()
        spool = Spool(tmp_path / "spool", consumers=["ship"])
        pipe = Pipeline(spool)
        shipper = Shipper(spool, store, events_target(store), tmp_path / "dead", batch=200)
        stop = threading.Event()

        def ship_loop() -> None:
            while not stop.is_set():
                try:
                    if shipper.once() == 0:
                        time.sleep(0.02)
                except Exception:
                    time.sleep(0.1)

        worker = threading.Thread(target=ship_loop)
        worker.start()
        try:
            pipe.process(lines(1000))
            time.sleep(0.2)
            os.kill(server.proc.pid, signal.SIGSTOP)
            pipe.process(lines(1000, start=1000))  # collection goes on while the store is frozen
            time.sleep(1.5)
            os.kill(server.proc.pid, signal.SIGCONT)
            pipe.process(lines(1000, start=2000))
            deadline = time.monotonic() + 60
            while spool.stats().consumers["ship"].depth and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
            stop.set()
            worker.join(60)
        target = store.events_target("syslog")
        store.refresh(target)
        assert store.count(target) == 3000
        hits = store.search(target, size=5000, source=["message"])["hits"]["hits"]
        assert sorted(h["_source"]["message"] for h in hits) == sorted(
            f"line {i}" for i in range(3000)
        )
        spool.close()
        store.close()


class SwitchableProxy:
    """A TCP proxy on loopback that can refuse connections (the store 'down' for socmon)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(64)
        self.up = True
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                client.close()  # RST: connection refused/reset for the client
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()

    def down(self) -> None:
        """Reset every open connection and refuse new ones."""
        self.up = False
        with self.lock:
            for sock in self.conns:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self.conns.clear()

    def close(self) -> None:
        self.listener.close()


def test_store_refusing_connections_loses_nothing(
    tmp_path: Path, osmem: EmbeddedStore, settings: Settings
) -> None:
    port = int(osmem.url.rsplit(":", 1)[1])
    proxy = SwitchableProxy(port)
    store = Store.connect(settings, f"http://127.0.0.1:{proxy.port}")
    store.setup()
    spool = Spool(tmp_path / "spool", consumers=["ship"])
    pipe = Pipeline(spool)
    shipper = Shipper(spool, store, events_target(store), tmp_path / "dead", batch=100)
    errors = 0
    pipe.process(lines(500))
    assert shipper.once() == 100
    proxy.down()
    pipe.process(lines(500, start=500))
    for _ in range(5):  # the store is down: every attempt fails, nothing is committed
        try:
            shipper.once()
        except StoreError:
            errors += 1
    assert errors == 5 and spool.stats().consumers["ship"].depth == 900
    proxy.up = True
    while shipper.once():
        pass
    target = store.events_target("syslog")
    store.refresh(target)
    hits = store.search(target, size=2000, source=["message"])["hits"]["hits"]
    assert sorted(h["_source"]["message"] for h in hits) == sorted(f"line {i}" for i in range(1000))
    spool.close()
    store.close()
    proxy.close()


def test_corrupted_spool_segment_is_reported_and_the_rest_delivered(
    tmp_path: Path, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool", consumers=["ship"], segment_bytes=64 * 1024)
    Pipeline(spool).process(lines(1000))
    spool.close()
    segments = sorted((tmp_path / "spool").glob("*.seg"))
    assert len(segments) >= 3
    damaged = segments[1]
    raw = bytearray(damaged.read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 200] = b"\x00" * 200
    damaged.write_bytes(bytes(raw))

    spool = Spool(tmp_path / "spool", consumers=["ship"], segment_bytes=64 * 1024)
    shipper = Shipper(spool, store, events_target(store), tmp_path / "dead", batch=300)
    with caplog.at_level("WARNING", logger="socmon.spool"):
        while shipper.once():
            pass
    stats = spool.stats()
    assert stats.corrupt_records >= 1
    assert any(
        "corruption" in r.getMessage() and damaged.name in r.getMessage() for r in caplog.records
    )
    target = store.events_target("syslog")
    store.refresh(target)
    hits = store.search(target, size=2000, source=["message"])["hits"]["hits"]
    delivered = {h["_source"]["message"] for h in hits}
    assert len(delivered) == 1000 - stats.corrupt_records  # only the damaged records are missing
    assert "line 0" in delivered and "line 999" in delivered
    spool.close()
