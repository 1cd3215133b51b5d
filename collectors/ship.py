"""The shipper: spool -> store with op_type=create, the `ship` consumer of a spool.

Delivery: at-least-once from the spool, exactly-once in the index (deterministic `_id`,
409 = already stored). The cursor advances only after every record of a batch is created,
found already stored, or written to the dead letters with the store's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import Counter

from socmon.errors import StoreError
from socmon.logging import kv
from socmon.spool import Record, Spool
from socmon.store import Store

log = logging.getLogger("socmon.collectors.ship")

SENT = Counter("socmon_shipper_sent_events_total", "Documents created in the store", ["spool"])
DUPLICATES = Counter(
    "socmon_shipper_duplicate_events_total", "Documents already stored (409)", ["spool"]
)
DEAD = Counter(
    "socmon_shipper_deadletter_events_total", "Documents rejected by the store", ["spool"]
)
ERRORS = Counter(
    "socmon_component_errors_total", "Errors by stage", ["component", "stage", "error_code"]
)


def events_target(store: Store) -> Callable[[dict[str, Any]], str]:
    def target(doc: dict[str, Any]) -> str:
        dataset = doc.get("event", {}).get("dataset") or "generic"
        return store.events_target(str(dataset))

    return target


class Shipper:
    def __init__(
        self,
        spool: Spool,
        store: Store,
        target_for: Callable[[dict[str, Any]], str],
        deadletter_dir: Path,
        *,
        consumer: str = "ship",
        batch: int = 1000,
        max_backoff: float = 10.0,
    ) -> None:
        self.spool = spool
        self.reader = spool.reader(consumer)
        self.store = store
        self.target_for = target_for
        self.deadletter_dir = deadletter_dir
        self.batch = batch
        self.max_backoff = max_backoff
        self.label = spool.path.name
        self._failing = False

    def ship_once(self) -> int:
        """Deliver one batch; returns the records delivered. Raises StoreError to retry later."""
        records = self.reader.read(self.batch)
        if not records:
            return 0
        try:
            self._deliver(records)
        except BaseException:
            self.reader.rewind()
            raise
        self.reader.commit(records[-1].seq)
        return len(records)

    def _deliver(self, records: list[Record]) -> None:
        by_target: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for rec in records:
            doc = orjson.loads(rec.payload)
            doc_id = str(doc.pop("_id", "") or f"{self.spool.instance_id}-{rec.seq}")
            by_target.setdefault(self.target_for(doc), []).append((doc_id, doc))
        for target, docs in by_target.items():
            pending = docs
            delay = 0.2
            while pending:
                result = self.store.bulk_create(target, pending)
                SENT.labels(self.label).inc(result.created)
                DUPLICATES.labels(self.label).inc(result.duplicates)
                if result.rejected:
                    self._dead_letter(
                        target,
                        [(pending[i], status, reason) for i, status, reason in result.rejected],
                    )
                pending = [pending[i] for i in result.retryable]
                if pending:
                    ERRORS.labels("shipper", "sending", "retryable_item").inc()
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 2, self.max_backoff)

    def _dead_letter(
        self, target: str, items: list[tuple[tuple[str, dict[str, Any]], int, str]]
    ) -> None:
        """Keep rejected documents with the reason: a file first (durable), then the index."""
        DEAD.labels(self.label).inc(len(items))
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        letters = [
            (
                doc_id,
                {
                    "@timestamp": now,
                    "error": {"message": reason, "type": f"http_{status}"},
                    "socmon": {"target": target, "doc_id": doc_id},
                    "document": doc,
                },
            )
            for (doc_id, doc), status, reason in items
        ]
        self.deadletter_dir.mkdir(parents=True, exist_ok=True)
        path = self.deadletter_dir / f"{target}.jsonl"
        with open(path, "ab") as f:
            for _, letter in letters:
                f.write(orjson.dumps(letter) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        log.warning(
            "dead letters %s", kv(target=target, count=len(items), first_reason=items[0][2][:200])
        )
        try:
            self.store.bulk_create(self.store.deadletter_target, letters)
        except StoreError as e:
            log.warning("dead-letter index unavailable, kept in file %s", kv(path=path, error=e))

    async def run(self, shutdown: asyncio.Event) -> None:
        delay = 0.2
        while not shutdown.is_set():
            try:
                n = await asyncio.to_thread(self.ship_once)
            except StoreError as e:
                ERRORS.labels("shipper", "sending", "store_unavailable").inc()
                if not self._failing:
                    log.warning(
                        "shipping paused, store unavailable %s", kv(spool=self.label, error=e)
                    )
                    self._failing = True
                await _sleep(shutdown, delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)
                continue
            if self._failing:
                log.info("shipping resumed %s", kv(spool=self.label))
                self._failing = False
            delay = 0.2
            if n == 0:
                await asyncio.to_thread(self.reader.wait, 0.2)


async def _sleep(shutdown: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(shutdown.wait(), timeout=seconds)
