"""The shipper: spool -> store with op_type=create, the `ship` consumer of a spool.

Delivery: at-least-once from the spool, exactly-once in the index (deterministic `_id`,
409 = already stored). The cursor advances only after every record of a batch is created,
found already stored, or written to the dead letters with the store's reason.
"""

from __future__ import annotations

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

from socmon.consumer import BatchConsumer
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


class Shipper(BatchConsumer):
    component = "shipper"
    retryable = (StoreError,)

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
        super().__init__(spool, consumer, batch=batch, max_backoff=max_backoff)
        self.store = store
        self.target_for = target_for
        self.deadletter_dir = deadletter_dir
        self.label = spool.path.name

    def handle(self, records: list[Record]) -> None:
        """Deliver one batch; raises StoreError (retryable) when the store is unavailable."""
        try:
            self._deliver(records)
        except StoreError:
            ERRORS.labels("shipper", "sending", "store_unavailable").inc()
            raise

    def _deliver(self, records: list[Record]) -> None:
        by_target: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        # ECS event.ingested: when the document reached the central store. The incident
        # service's alert puller keeps its watermark on it, so late shippers are not skipped.
        ingested = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        for rec in records:
            doc = orjson.loads(rec.payload)
            doc_id = str(doc.pop("_id", "") or f"{self.spool.instance_id}-{rec.seq}")
            event = doc.setdefault("event", {})
            if isinstance(event, dict):
                event["ingested"] = ingested
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
