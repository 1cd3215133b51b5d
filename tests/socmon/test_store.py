import socket
import time

import pytest

from socmon.config import Settings
from socmon.errors import StoreError
from socmon.store import Store

pytestmark = pytest.mark.integration


def test_setup_is_idempotent_and_types_are_right(store: Store) -> None:
    store.setup()  # a second time changes nothing and does not fail
    assert store.data_streams is False  # osmem-server creates no data streams
    target = store.events_target("fortinet.fortigate")
    result = store.bulk_create(
        target,
        [
            (
                "e1",
                {
                    "@timestamp": "2026-01-01T00:00:00Z",
                    "source": {"ip": "203.0.113.9", "port": 4444},
                    "event": {"action": "deny"},
                },
            )
        ],
    )
    assert result.created == 1
    mapping = store.client.indices.get_mapping(index=target)
    props = next(iter(mapping.values()))["mappings"]["properties"]
    assert props["source"]["properties"]["ip"]["type"] == "ip"
    assert props["source"]["properties"]["port"]["type"] == "long"
    assert props["@timestamp"]["type"] == "date"
    assert props["event"]["properties"]["action"]["type"] == "keyword"
    hits = store.search(target, query={"term": {"source.ip": "203.0.113.0/24"}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["e1"]


def test_create_conflict_and_rejection_are_classified(store: Store) -> None:
    target = store.events_target("test")
    ok = {"@timestamp": "2026-01-01T00:00:00Z", "message": "a"}
    bad = {"@timestamp": "not a date", "message": "b"}
    first = store.bulk_create(target, [("a", ok)])
    again = store.bulk_create(target, [("a", ok), ("b", bad)])
    assert first.created == 1
    assert again.created == 0 and again.duplicates == 1
    assert [(i, status) for i, status, _ in again.rejected] == [(1, 400)]
    assert "@timestamp" in again.rejected[0][2]


def test_unreachable_store_is_a_clear_error(settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError, match=r"unreachable after \d+ attempts"):
        Store.connect(settings, f"http://127.0.0.1:{port}", max_wait=0.5)


def test_event_cap_removes_oldest(store: Store) -> None:
    target = store.events_target("cap")
    docs = [(f"d{i}", {"@timestamp": f"2026-01-01T00:00:{i:02d}Z", "n": i}) for i in range(30)]
    store.bulk_create(target, docs)
    store.refresh(target)
    removed = store.enforce_event_cap(20)
    store.refresh(target)
    assert removed == 10
    left = store.search(target, size=100, sort=[{"@timestamp": "asc"}])["hits"]["hits"]
    assert [h["_source"]["n"] for h in left] == list(range(10, 30))


def test_health(store: Store) -> None:
    h = store.health()
    assert h["status"] == "ok"
    assert h["distribution"] == "opensearch"


def test_retention_deletes_by_arrival_and_reports_the_oldest(store: Store) -> None:
    """Events that arrived more than `days` ago go; an old log that arrived recently stays."""
    target = store.events_target("retention")
    now = 1_800_000_000.0  # 2027-01-15

    def iso(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    day = 86_400
    docs = [
        ("old", {"@timestamp": iso(now - 500 * day), "event": {"ingested": iso(now - 500 * day)}}),
        ("edge", {"@timestamp": iso(now - 100 * day), "event": {"ingested": iso(now - 91 * day)}}),
        ("replayed", {"@timestamp": iso(now - 900 * day), "event": {"ingested": iso(now - day)}}),
    ]
    store.bulk_create(target, docs)
    store.refresh(target)
    assert store.oldest_event() == iso(now - 500 * day).replace("Z", ".000Z")
    assert store.enforce_retention(92, now=now) == 1
    left = {h["_id"] for h in store.search(target, size=10)["hits"]["hits"]}
    assert left == {"edge", "replayed"}
    assert store.enforce_retention(90, now=now) == 1
    assert store.oldest_event({"ids": {"values": ["replayed"]}}) == iso(now - day).replace(
        "Z", ".000Z"
    )
    assert store.enforce_retention(30, now=now + 10 * 365 * day) == 1
    assert store.oldest_event() is None
