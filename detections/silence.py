"""Log loss is a security event: alerts for sources that went silent and for dropped messages.

Reads the source-health documents every collector process publishes
(`socmon-sources-<namespace>`) and raises, through the alerts spool:
- `socmon-source-silent` once per silence episode, when a source seen before has sent
  nothing for longer than the threshold;
- `socmon-log-loss` whenever a source's drop counter grew (UDP datagrams dropped because the
  spool was full).
Alert ids are deterministic (source, episode), so a restart re-raising them creates nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from detections.alerts import make_alert
from socmon.errors import StoreError
from socmon.logging import kv
from socmon.spool import Spool
from socmon.store import Store

log = logging.getLogger("socmon.detections.silence")

SILENT_RULE = "socmon-source-silent"
LOSS_RULE = "socmon-log-loss"
GROUP_BY = ("socmon.source.host", "socmon.source.name")


def _id(*parts: object) -> str:
    return hashlib.blake2b("\x00".join(map(str, parts)).encode(), digest_size=20).hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def source_alerts(
    rows: Iterable[Mapping[str, Any]], now: float, threshold: float
) -> list[dict[str, Any]]:
    """Alerts for the given source-health rows (pure: the caller deduplicates by `_id`)."""
    out: list[dict[str, Any]] = []
    for row in rows:
        host, source = str(row.get("host", "")), str(row.get("source", ""))
        last_seen = float(row.get("last_seen", 0))
        source_info: dict[str, Any] = {
            "host": host,
            "name": source,
            "collector": row.get("collector"),
        }
        fields: dict[str, Any] = {"socmon": {"source": source_info}, "observer": {"hostname": host}}
        if now - last_seen > threshold:
            out.append(
                make_alert(
                    alert_id=_id(SILENT_RULE, host, source, int(last_seen)),
                    rule_id=SILENT_RULE,
                    title=f"Log source silent for more than {int(threshold)} s: {source}",
                    level="medium",
                    tags=["socmon.group.b5", "socmon.log_loss"],
                    group_by=GROUP_BY,
                    timestamp=_iso(now),
                    ruleset="socmon",
                    fields=fields | {"event": {"start": _iso(last_seen)}},
                )
            )
        drops = int(row.get("drops", 0))
        if drops > 0:
            out.append(
                make_alert(
                    alert_id=_id(LOSS_RULE, host, source, drops),
                    rule_id=LOSS_RULE,
                    title=f"Log messages dropped at the collector ({drops} so far): {source}",
                    level="high",
                    tags=["socmon.group.b4", "socmon.log_loss"],
                    group_by=GROUP_BY,
                    timestamp=_iso(now),
                    ruleset="socmon",
                    fields={**fields, "socmon": {"source": source_info, "dropped": drops}},
                )
            )
    return out


def read_sources(store: Store) -> list[dict[str, Any]]:
    resp = store.search(store.sources_target, size=10_000, query={"match_all": {}})
    return [hit["_source"] for hit in resp["hits"]["hits"]]


async def watch_silent_sources(
    store: Store, alerts: Spool, threshold: float, shutdown: asyncio.Event, interval: float = 15.0
) -> None:
    raised: set[str] = set()
    failing = False
    while not shutdown.is_set():
        try:
            rows = await asyncio.to_thread(read_sources, store)
            failing = False
        except StoreError as e:
            if not failing:
                log.warning("source health unreadable %s", kv(error=e))
                failing = True
            rows = []
        fresh = [a for a in source_alerts(rows, time.time(), threshold) if a["_id"] not in raised]
        if fresh:
            await asyncio.to_thread(alerts.append, fresh, lambda doc, _seq: orjson.dumps(doc))
            raised.update(a["_id"] for a in fresh)
            for a in fresh:
                log.warning(
                    "log source alert %s",
                    kv(rule=a["rule"]["id"], source=a["socmon"]["source"]["name"]),
                )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shutdown.wait(), timeout=interval)
