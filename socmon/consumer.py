"""The shape every spool consumer shares: read a batch, handle it, commit; rewind on failure."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
from typing import ClassVar

from socmon.logging import kv
from socmon.spool import Record, Spool

log = logging.getLogger("socmon.consumer")


class BatchConsumer(abc.ABC):
    """One named consumer of a spool.

    `handle` must finish the whole batch or raise; the cursor moves only after it returns,
    so a crash or an error never skips a record (at-least-once). Errors of the types in
    `retryable` pause the consumer with backoff and jitter, logged once when it stops and
    once when it resumes; any other error propagates to the supervisor.
    """

    component: ClassVar[str] = "consumer"
    retryable: ClassVar[tuple[type[BaseException], ...]] = ()

    def __init__(
        self, spool: Spool, consumer: str, *, batch: int, max_backoff: float = 10.0
    ) -> None:
        self.spool = spool
        self.reader = spool.reader(consumer)
        self.batch = batch
        self.max_backoff = max_backoff
        self._failing = False

    @abc.abstractmethod
    def handle(self, records: list[Record]) -> None:
        """Process one batch completely, or raise."""

    def once(self) -> int:
        """Handle one batch; returns how many records were done (0: nothing to read)."""
        records = self.reader.read(self.batch)
        if not records:
            return 0
        try:
            self.handle(records)
        except BaseException:
            self.reader.rewind()
            raise
        self.reader.commit(records[-1].seq)
        return len(records)

    async def run(self, shutdown: asyncio.Event) -> None:
        delay = 0.2
        while not shutdown.is_set():
            try:
                n = await asyncio.to_thread(self.once)
            except self.retryable as e:
                if not self._failing:
                    log.warning(
                        "%s paused %s", self.component, kv(spool=self.spool.path.name, error=e)
                    )
                    self._failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(shutdown.wait(), timeout=delay * (0.5 + random.random()))
                delay = min(delay * 2, self.max_backoff)
                continue
            if self._failing:
                log.info("%s resumed %s", self.component, kv(spool=self.spool.path.name))
                self._failing = False
            delay = 0.2
            if n == 0:
                await asyncio.to_thread(self.reader.wait, 0.2)
