import asyncio
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from collectors.health import SourceHealth, publish_health
from detections.silence import LOSS_RULE, SILENT_RULE, source_alerts, watch_silent_sources
from soc_api.incidents import IncidentService
from socmon.db import Database
from socmon.spool import Spool
from socmon.store import Store


def row(source: str, last_seen: float, drops: int = 0) -> dict[str, object]:
    return {
        "host": "col1",
        "source": source,
        "collector": "syslog_udp",
        "last_seen": last_seen,
        "drops": drops,
    }


def test_silent_and_loss_alerts() -> None:
    now = 10_000.0
    alerts = source_alerts(
        [row("a", now - 5), row("b", now - 1000), row("c", now - 1, drops=3)], now, threshold=900
    )
    kinds = sorted((a["rule"]["id"], a["socmon"]["source"]["name"]) for a in alerts)
    assert kinds == [(LOSS_RULE, "c"), (SILENT_RULE, "b")]
    # Same episode, later check: same ids (no new incident); a new drop count: a new alert.
    again = source_alerts(
        [row("b", now - 1000), row("c", now - 1, drops=3)], now + 60, threshold=900
    )
    assert {a["_id"] for a in again} <= {a["_id"] for a in alerts}
    more = source_alerts([row("c", now - 1, drops=9)], now + 60, threshold=900)
    assert more[0]["_id"] not in {a["_id"] for a in alerts}


def test_silence_alerts_group_into_one_incident_per_source(db: Database) -> None:
    now = 10_000.0
    svc = IncidentService(window=timedelta(hours=1))
    with db.session() as s:
        for drops in (1, 5, 9):
            for a in source_alerts([row("c", now, drops=drops)], now, threshold=900):
                inc = svc.ingest(s, a["_id"], a)
        assert inc.alert_count == 3 and inc.category == "B4"


@pytest.mark.integration
def test_watcher_raises_through_the_alerts_spool(tmp_path: Path, store: Store) -> None:
    health = SourceHealth(host="col1")
    health.record("syslog+udp://192.0.2.9", "syslog_udp", nbytes=10, now=time.time() - 5)
    alerts = Spool(tmp_path / "alerts", consumers=["incident"])

    async def scenario() -> None:
        stop = asyncio.Event()
        stop.set()
        await publish_health(store, health, stop)
        store.refresh(store.sources_target)
        go = asyncio.Event()
        task = asyncio.create_task(watch_silent_sources(store, alerts, 1.0, go, interval=0.1))
        await asyncio.sleep(0.5)
        go.set()
        await task

    asyncio.run(scenario())
    raised = [orjson.loads(r.payload) for r in alerts.reader("incident").read(10)]
    assert [a["rule"]["id"] for a in raised] == [SILENT_RULE]  # raised once, not every check
    assert raised[0]["socmon"]["source"]["name"] == "syslog+udp://192.0.2.9"
    alerts.close()
