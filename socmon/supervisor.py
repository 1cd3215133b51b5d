"""Runs a process's long-lived tasks; a task that fails is logged and restarted with backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from socmon.logging import kv

log = logging.getLogger("socmon.supervisor")

TaskFactory = Callable[[asyncio.Event], Awaitable[None]]


class Supervisor:
    def __init__(self) -> None:
        self.shutdown = asyncio.Event()
        self._factories: dict[str, TaskFactory] = {}
        self.restarts: dict[str, int] = {}

    def add(self, name: str, factory: TaskFactory) -> None:
        self._factories[name] = factory

    async def _keep(self, name: str, factory: TaskFactory) -> None:
        delay = 0.5
        while not self.shutdown.is_set():
            try:
                await factory(self.shutdown)
                if not self.shutdown.is_set():
                    log.warning("task ended early, restarting %s", kv(task=name))
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.restarts[name] = self.restarts.get(name, 0) + 1
                log.exception(
                    "task failed %s", kv(task=name, error=e, restarts=self.restarts[name])
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.shutdown.wait(), timeout=delay * (0.5 + random.random())
                )
            delay = min(delay * 2, 30.0)

    async def run(self, grace: float = 10.0) -> None:
        """Run every task until `shutdown` is set, then give them `grace` seconds to finish."""
        tasks = [asyncio.create_task(self._keep(n, f), name=n) for n, f in self._factories.items()]
        await self.shutdown.wait()
        _done, pending = await asyncio.wait(tasks, timeout=grace)
        for t in pending:
            log.warning("task did not stop in time, cancelling %s", kv(task=t.get_name()))
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
