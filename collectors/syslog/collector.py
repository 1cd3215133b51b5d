"""Syslog over UDP.

Delivery: best-effort. UDP cannot acknowledge, so a datagram lost before it reaches this
socket is invisible; once received it is spooled (at-least-once from there on). When the
spool is full, new datagrams are dropped and counted (never blocking the socket reader).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import ClassVar

from collectors.base import DISCARDED, RECEIVED, RECEIVED_BYTES, CollectorContext, Resource
from collectors.pipeline import RawMessage
from socmon.errors import SpoolFull
from socmon.logging import kv

log = logging.getLogger("socmon.collectors.syslog")

MAX_DATAGRAM = 65535


class _Receiver(asyncio.DatagramProtocol):
    def __init__(
        self, queue: list[tuple[bytes, tuple[str, int], float]], wake: asyncio.Event
    ) -> None:
        self.queue = queue
        self.wake = wake

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.append((data, addr, time.time()))
        self.wake.set()

    def error_received(self, exc: Exception) -> None:
        log.warning("syslog udp socket error %s", kv(error=exc))


class SyslogUdpCollector:
    name: ClassVar[str] = "syslog"
    can_acknowledge: ClassVar[bool] = False

    def __init__(
        self, host: str = "0.0.0.0", port: int = 5514, parser: str = "auto", batch: int = 500
    ) -> None:
        self.host = host
        self.port = port
        self.parser = parser
        self.batch = batch
        self.bound_port: int | None = None

    def resources(self) -> list[Resource]:
        return [Resource("udp", self.port)]

    async def run(self, ctx: CollectorContext) -> None:
        loop = asyncio.get_running_loop()
        queue: list[tuple[bytes, tuple[str, int], float]] = []
        wake = asyncio.Event()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(queue, wake), local_addr=(self.host, self.port)
        )
        sock = transport.get_extra_info("socket")
        self.bound_port = sock.getsockname()[1]
        log.info("syslog udp listening %s", kv(host=self.host, port=self.bound_port))
        ctx.ready.set()
        try:
            while not ctx.shutdown.is_set():
                if not queue:
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=0.5)
                    except TimeoutError:
                        continue
                batch = queue[: self.batch]
                del queue[: self.batch]
                self._spool(ctx, batch)
                await asyncio.sleep(0)
        finally:
            transport.close()
            if queue:
                self._spool(ctx, queue)

    def _spool(
        self, ctx: CollectorContext, batch: list[tuple[bytes, tuple[str, int], float]]
    ) -> None:
        messages = []
        for data, addr, ts in batch:
            sender = f"{addr[0]}:{addr[1]}"
            source = f"syslog+udp://{addr[0]}"
            RECEIVED.labels("syslog_udp", source).inc()
            RECEIVED_BYTES.labels("syslog_udp", source).inc(len(data))
            messages.append(
                RawMessage(
                    source=source, data=data, received_at=ts, sender=sender, parser=self.parser
                )
            )
        try:
            seqs = ctx.out.process(messages, timeout=0)
        except SpoolFull:
            seqs = []
        if not seqs:
            DISCARDED.labels("syslog_udp", "false", "spool_full").inc(len(messages))
            log.warning("syslog udp drop %s", kv(reason="spool_full", count=len(messages)))
