"""Syslog over UDP.

Delivery: best-effort. UDP cannot acknowledge, so a datagram lost before it reaches this
socket is invisible; once received it is spooled (at-least-once from there on). When the
spool is full, new datagrams are dropped, counted per sender in source health and in
`socmon_component_discarded_events_total`, and logged once per episode (never blocking
the socket reader).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from typing import ClassVar

from pydantic import Field

from collectors.base import CollectorContext, CollectorOptions, Resource
from collectors.pipeline import RawMessage
from collectors.syslog.parse import source_context
from socmon.errors import SpoolFull
from socmon.logging import kv

log = logging.getLogger("socmon.collectors.syslog")


class SyslogUdpOptions(CollectorOptions):
    host: str = "0.0.0.0"
    port: int = Field(default=5514, ge=0, le=65535)
    batch: int = Field(default=500, ge=1)
    receive_buffer: int = Field(default=8 << 20, ge=65536)


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


class KernelDrops:
    """Datagrams the kernel dropped for one socket (receive buffer full), from /proc/net/udp*.

    The collector cannot see these datagrams, only count them: they are reported as drops of
    the listener in source health, which raises the log-loss alert. Linux only; elsewhere
    (or without /proc) the count stays 0.
    """

    def __init__(self, inode: int) -> None:
        self.inode = str(inode)
        self.seen = self._read()

    def _read(self) -> int:
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                with open(table, encoding="ascii") as f:
                    next(f, None)
                    for line in f:
                        fields = line.split()
                        if len(fields) >= 13 and fields[9] == self.inode:
                            return int(fields[12])
            except (OSError, ValueError):
                continue
        return 0

    def new_drops(self) -> int:
        total = self._read()
        delta, self.seen = max(0, total - self.seen), total
        return delta


class SyslogUdpCollector:
    type_name: ClassVar[str] = "syslog_udp"
    can_acknowledge: ClassVar[bool] = False
    Options: ClassVar[type[SyslogUdpOptions]] = SyslogUdpOptions

    def __init__(self, options: SyslogUdpOptions) -> None:
        self.options = options
        self.context = source_context(options.timezone)
        self.bound_port: int | None = None
        self._dropping = False

    def resources(self) -> list[Resource]:
        return [Resource("udp", self.options.port)]

    async def run(self, ctx: CollectorContext) -> None:
        loop = asyncio.get_running_loop()
        queue: list[tuple[bytes, tuple[str, int], float]] = []
        wake = asyncio.Event()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(queue, wake), local_addr=(self.options.host, self.options.port)
        )
        sock = transport.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.options.receive_buffer)
        self.bound_port = sock.getsockname()[1]
        log.info("syslog udp listening %s", kv(host=self.options.host, port=self.bound_port))
        ctx.ready.set()
        batch = self.options.batch
        kernel = KernelDrops(os.fstat(sock.fileno()).st_ino)
        listener = f"syslog+udp://{self.options.host}:{self.bound_port}"
        next_check = 0.0
        try:
            while not ctx.shutdown.is_set():
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 1.0
                    lost = kernel.new_drops()
                    if lost:
                        ctx.health.drop(listener, self.type_name, lost, "receive_buffer_overflow")
                        log.warning(
                            "syslog udp datagrams dropped by the kernel (receive buffer full) %s",
                            kv(port=self.bound_port, count=lost),
                        )
                if not queue:
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=0.5)
                    except TimeoutError:
                        continue
                chunk = queue[:batch]
                del queue[:batch]
                self._spool(ctx, chunk)
                await asyncio.sleep(0)
        finally:
            transport.close()
            if queue:
                self._spool(ctx, queue)

    def _spool(
        self, ctx: CollectorContext, chunk: list[tuple[bytes, tuple[str, int], float]]
    ) -> None:
        messages = [
            RawMessage(
                source=f"syslog+udp://{addr[0]}",
                data=data,
                received_at=ts,
                sender=f"{addr[0]}:{addr[1]}",
                parser=self.options.parser,
                context=self.context,
                collector=self.type_name,
            )
            for data, addr, ts in chunk
        ]
        try:
            seqs = ctx.out.process(messages, timeout=0)
        except SpoolFull:
            seqs = []
        if seqs:
            if self._dropping:
                log.info("syslog udp accepting again %s", kv(port=self.bound_port))
                self._dropping = False
            return
        per_source: dict[str, int] = {}
        for m in messages:
            per_source[m.source] = per_source.get(m.source, 0) + 1
        for source, n in per_source.items():
            ctx.health.drop(source, self.type_name, n, "spool_full")
        if not self._dropping:
            log.warning(
                "syslog udp dropping, spool full %s", kv(port=self.bound_port, count=len(messages))
            )
            self._dropping = True
