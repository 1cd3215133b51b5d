import os
import signal
import threading
import time
from pathlib import Path

import orjson
import pytest

from collectors.pipeline import Pipeline, RawMessage
from collectors.ship import Shipper, events_target
from socmon.config import Settings
from socmon.embedded import EmbeddedStore
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
