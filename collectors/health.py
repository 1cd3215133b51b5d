"""Source health: per source (sender, file, channel) counts, rates and last-seen times.

Every collector process keeps one `SourceHealth`; the pipeline records each message, the
collectors record drops. `snapshot()` is what `/api/sources` shows and what a collector
process publishes to the store (`socmon-sources-<namespace>`), so a central `socmon up`
sees the sources of every `socmon collect` host.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Gauge

from socmon.errors import StoreError
from socmon.logging import kv
from socmon.store import Store

log = logging.getLogger("socmon.collectors.health")

EVENTS = Counter("socmon_source_events_total", "Events received per source", ["source"])
BYTES = Counter("socmon_source_bytes_total", "Bytes received per source", ["source"])
PARSE_FAILURES = Counter(
    "socmon_source_parse_failures_total", "Events stored with _parse_failure", ["source"]
)
DISCARDED = Counter(
    "socmon_component_discarded_events_total",
    "Events discarded, with the reason",
    ["component", "intentional", "reason"],
)
LAST_SEEN = Gauge(
    "socmon_source_last_seen_seconds", "Unix time of the last event per source", ["source"]
)

_RATE_WINDOW = 60.0


@dataclass
class SourceState:
    source: str
    collector: str
    first_seen: float
    last_seen: float
    events: int = 0
    bytes: int = 0
    parse_failures: int = 0
    drops: int = 0
    # events per second over the last minute: per-second buckets (second -> count)
    _buckets: dict[int, int] = field(default_factory=dict, repr=False)

    def eps(self, now: float) -> float:
        cutoff = int(now - _RATE_WINDOW)
        return sum(n for sec, n in self._buckets.items() if sec > cutoff) / _RATE_WINDOW

    def public(self, now: float) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        out["eps"] = round(self.eps(now), 3)
        return out


class SourceHealth:
    """Thread-safe counters per source."""

    def __init__(self, host: str = "") -> None:
        self.host = host
        self._lock = threading.Lock()
        self._sources: dict[str, SourceState] = {}

    def _state(self, source: str, collector: str, now: float) -> SourceState:
        state = self._sources.get(source)
        if state is None:
            state = SourceState(source=source, collector=collector, first_seen=now, last_seen=now)
            self._sources[source] = state
        return state

    def record(
        self,
        source: str,
        collector: str,
        *,
        nbytes: int,
        events: int = 1,
        parse_failures: int = 0,
        now: float | None = None,
    ) -> None:
        """Count `events` messages (`nbytes` in all) from `source`, `parse_failures` unparsed."""
        now = time.time() if now is None else now
        with self._lock:
            st = self._state(source, collector, now)
            st.events += events
            st.bytes += nbytes
            st.parse_failures += parse_failures
            st.last_seen = max(st.last_seen, now)
            sec = int(now)
            st._buckets[sec] = st._buckets.get(sec, 0) + events
            if len(st._buckets) > 2 * _RATE_WINDOW:
                cutoff = sec - int(_RATE_WINDOW)
                st._buckets = {s: n for s, n in st._buckets.items() if s > cutoff}
        EVENTS.labels(source).inc(events)
        BYTES.labels(source).inc(nbytes)
        LAST_SEEN.labels(source).set(now)
        if parse_failures:
            PARSE_FAILURES.labels(source).inc(parse_failures)

    def drop(
        self, source: str, collector: str, count: int, reason: str, *, now: float | None = None
    ) -> None:
        now = time.time() if now is None else now
        with self._lock:
            self._state(source, collector, now).drops += count
        DISCARDED.labels(collector, "false", reason).inc(count)

    def snapshot(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        with self._lock:
            rows = [st.public(now) for st in self._sources.values()]
        for row in rows:
            row["host"] = self.host
        return sorted(rows, key=lambda r: r["source"])


def health_doc_id(host: str, source: str) -> str:
    return hashlib.blake2b(f"{host}\x00{source}".encode(), digest_size=16).hexdigest()


async def publish_health(
    store: Store, health: SourceHealth, shutdown: asyncio.Event, interval: float = 5.0
) -> None:
    """Publish this process's source health to the store every `interval` seconds (and at stop).

    Best-effort: an unavailable store is logged once and retried at the next interval; the
    counters live on in memory meanwhile.
    """
    failing = False
    while True:
        stopping = shutdown.is_set()
        now = time.time()
        rows = health.snapshot(now)
        stamp = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
        docs = [(health_doc_id(r["host"], r["source"]), {**r, "@timestamp": stamp}) for r in rows]
        try:
            await asyncio.to_thread(store.upsert, store.sources_target, docs)
            if failing:
                log.info("source health published again")
                failing = False
        except StoreError as e:
            if not failing:
                log.warning("source health not published %s", kv(error=e))
                failing = True
        if stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(shutdown.wait(), timeout=interval)
