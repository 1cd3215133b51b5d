import asyncio

import pytest

from collectors.health import SourceHealth, publish_health
from socmon.store import Store


def test_counts_rates_and_drops() -> None:
    h = SourceHealth(host="col1")
    for i in range(120):
        h.record("syslog+udp://10.0.0.1", "syslog_udp", nbytes=100, now=1000.0 + i / 2)
    h.record("syslog+udp://10.0.0.1", "syslog_udp", nbytes=50, parse_failures=1, now=1060.0)
    h.drop("syslog+udp://10.0.0.2", "syslog_udp", 7, "spool_full", now=1060.0)
    rows = {r["source"]: r for r in h.snapshot(now=1060.0)}
    a = rows["syslog+udp://10.0.0.1"]
    assert (a["events"], a["bytes"], a["parse_failures"], a["drops"]) == (121, 12050, 1, 0)
    assert a["first_seen"] == 1000.0 and a["last_seen"] == 1060.0
    assert a["eps"] == pytest.approx(2.0, abs=0.05)  # 2 per second over the last minute
    assert a["host"] == "col1" and a["collector"] == "syslog_udp"
    assert rows["syslog+udp://10.0.0.2"]["drops"] == 7
    assert h.snapshot(now=1200.0)[0]["eps"] == 0.0


@pytest.mark.integration
def test_published_to_the_store(store: Store) -> None:
    h = SourceHealth(host="col1")
    h.record("file:///var/log/auth.log", "file", nbytes=10)
    stop = asyncio.Event()
    stop.set()  # publish once and return
    asyncio.run(publish_health(store, h, stop))
    store.refresh(store.sources_target)
    hits = store.search(store.sources_target, query={"match_all": {}})["hits"]["hits"]
    assert [h["_source"]["source"] for h in hits] == ["file:///var/log/auth.log"]
    asyncio.run(publish_health(store, h, stop))  # replaced, not added
    store.refresh(store.sources_target)
    assert store.count(store.sources_target) == 1
