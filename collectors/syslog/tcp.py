"""Syslog over TCP (RFC 6587) and over TLS (RFC 5425).

Both collectors read each connection with asyncio streams, cut the byte stream into messages
with `collectors.syslog.framing.FrameDecoder` (octet counting or newline framing, detected per
connection) and hand batches to the pipeline from a worker thread. While the spool is full
(``when_full="block"``) a connection stops reading, so TCP flow control slows the sender down
instead of anything being dropped. See `SyslogTcpCollector` for the delivery guarantee and
what a kill -9 loses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from prometheus_client import Counter, Gauge
from pydantic import Field

from collectors.base import CollectorContext, CollectorOptions, Resource
from collectors.pipeline import RawMessage
from collectors.syslog.framing import DEFAULT_MAX_MESSAGE_BYTES, Frame, FrameDecoder, Framing
from collectors.syslog.parse import source_context
from socmon.errors import ConfigError, Location, SpoolError, SpoolFull
from socmon.logging import kv

__all__ = [
    "SyslogTcpCollector",
    "SyslogTcpOptions",
    "SyslogTlsCollector",
    "SyslogTlsOptions",
    "tls_context",
]

log = logging.getLogger("socmon.collectors.syslog")

#: Bytes asked of the stream per read.
READ_SIZE = 64 << 10
#: StreamReader limit: the transport stops reading once twice this much is buffered.
STREAM_LIMIT = 64 << 10
#: A batch is handed to the pipeline after this many seconds even when not full.
BATCH_DELAY = 0.05
#: At shutdown, connections get this long to spool what they have read.
SHUTDOWN_GRACE = 5.0
TLS_HANDSHAKE_TIMEOUT = 10.0
#: A batch that takes this long to spool starts a reported backpressure episode, which ends
#: after SLOW_EPISODE_END seconds without one.
SLOW_BATCH = 1.0
SLOW_EPISODE_END = 60.0
#: Distinct (sender, error) pairs remembered for logging errors once.
MAX_WARNED = 4096
#: Worker threads per collector that run the pipeline (parse + spool append).
WORKERS = 4

CONNECTIONS = Counter(
    "socmon_syslog_tcp_connections_total",
    "Connections accepted by the syslog TCP/TLS collectors",
    ["collector"],
)
OPEN_CONNECTIONS = Gauge(
    "socmon_syslog_tcp_open_connections",
    "Connections open now in the syslog TCP/TLS collectors",
    ["collector"],
)
ERRORS = Counter(
    "socmon_syslog_tcp_errors_total",
    "Errors of the syslog TCP/TLS collectors (framing problems, refused connections, ...)",
    ["collector", "stage", "error_code"],
)


class SyslogTcpOptions(CollectorOptions):
    host: str = "0.0.0.0"
    port: int = Field(default=5514, ge=0, le=65535)  # 0: an ephemeral port (tests)
    framing: Framing = "auto"
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, ge=256, le=16 << 20)
    max_connections: int = Field(default=512, ge=1)
    idle_timeout: float | None = Field(default=900.0, gt=0)  # seconds; None: never close
    batch: int = Field(default=500, ge=1)


class SyslogTlsOptions(SyslogTcpOptions):
    port: int = Field(default=6514, ge=0, le=65535)
    certfile: Path
    keyfile: Path
    client_ca: Path | None = None  # set: clients must present a certificate signed by it


def tls_context(options: SyslogTlsOptions) -> ssl.SSLContext:
    """The server TLS context: TLS 1.2 or later, client certificates required with client_ca."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(options.certfile, options.keyfile)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            f"cannot load the TLS certificate {options.certfile} with key {options.keyfile}: {e}",
            Location(options.certfile),
        ) from e
    if options.client_ca is not None:
        try:
            context.load_verify_locations(cafile=options.client_ca)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(
                f"cannot load the client CA {options.client_ca}: {e}", Location(options.client_ca)
            ) from e
        context.verify_mode = ssl.CERT_REQUIRED
    return context


@dataclass
class _Connection:
    """One client connection's identity and counters."""

    ip: str
    sender: str  # "ip:port"
    source: str  # "syslog+tcp://ip"
    writer: asyncio.StreamWriter
    messages: int = 0


class SyslogTcpCollector:
    """Syslog over TCP, RFC 6587 framing (octet counting or LF/CRLF/NUL trailers).

    Delivery: at-least-once from the socket on, with backpressure. Every message read from a
    connection is handed to the pipeline (``ctx.out.process(batch, timeout=None)`` in a worker
    thread) in batches per connection of up to ``batch`` messages or 50 ms, in the order
    received. While a batch waits for spool space (``when_full="block"``) that connection is
    not read: the stream buffer (at most 128 KiB) and then the kernel's socket buffers fill,
    the TCP window closes and the sender's writes block. Nothing is dropped for a full spool.
    A message larger than ``max_message_bytes`` is cut to that size and still delivered; a
    bad length prefix or a connection closing inside a frame still delivers the bytes (see
    `collectors.syslog.framing`). Each such problem is counted in
    ``socmon_syslog_tcp_errors_total{error_code}`` and logged once per sender and kind; the
    stored event itself does not carry the reason (``RawMessage`` has no field for it).
    Messages that cannot be spooled at all (spool I/O error, ``when_full="drop_newest"``) are
    counted per source in source health and logged; never dropped silently.

    What is lost at a kill -9: syslog over TCP has no application-level acknowledgement, so a
    sender considers a message sent once its own kernel has accepted it, and the receiver
    cannot ask for it again. At a kill -9 of this process everything not yet appended to the
    spool is lost: the bytes in this host's socket receive buffer (on Linux up to
    ``net.ipv4.tcp_rmem`` max per connection, several MiB), the stream buffer (at most
    128 KiB; for TLS also the TLS buffers), a partly received message, and the batch being
    collected or being parsed and appended (at most ``batch`` messages or 50 ms of traffic
    per connection). Everything ``append`` returned for survives (the page cache outlives the
    process; an OS crash can lose the spool's last fsync interval). At a normal shutdown,
    reading stops and every connection is closed; what was already read is spooled (a
    partial message as a ``truncated`` frame), waiting up to 5 s for spool space, after which
    the rest is counted as lost; unread bytes in the socket buffers are lost as at a kill.

    ``can_acknowledge`` is False for that reason: TCP cannot acknowledge a message to a syslog
    sender, only slow it down.
    """

    type_name: ClassVar[str] = "syslog_tcp"
    can_acknowledge: ClassVar[bool] = False
    Options: ClassVar[type[SyslogTcpOptions]] = SyslogTcpOptions
    scheme: ClassVar[str] = "syslog+tcp"

    def __init__(self, options: SyslogTcpOptions) -> None:
        self.options = options
        self.context = source_context(options.timezone)
        self.bound_port: int | None = None
        self.connections = 0  # open now
        self.accepted = 0  # since start
        self.refused = 0  # over max_connections, or a failed TLS handshake
        self._ssl: ssl.SSLContext | None = None
        self._refusing = False
        self._slow_since: float | None = None  # monotonic start of a backpressure episode
        self._slow_last = 0.0
        self._slow_batches = 0
        self._losing: dict[str, int] = {}  # reason -> messages not spooled in this episode
        self._lock = threading.Lock()  # for the two above, used from the worker threads
        self._failure: SpoolError | None = None
        self._stop: asyncio.Event | None = None
        self._warned: set[tuple[str, str]] = set()  # (sender ip, error code) already logged

    def resources(self) -> list[Resource]:
        return [Resource("tcp", self.options.port)]

    # ------------------------------------------------------------------ listening

    async def run(self, ctx: CollectorContext) -> None:
        loop = asyncio.get_running_loop()
        self._stop = stop = asyncio.Event()
        self._failure = None
        # Our own pool, not asyncio's default executor: a worker blocked on a full spool at
        # shutdown must not keep asyncio.run() from returning (the spool's close() frees it).
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=WORKERS, thread_name_prefix=f"socmon-{self.type_name}"
        )
        tasks: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

        def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # Runs inside connection_made, before the first read: for TLS, pause reading so
            # that the ClientHello stays in the socket for the TLS upgrade in _serve.
            transport = writer.transport
            if self._ssl is not None and isinstance(transport, asyncio.ReadTransport):
                transport.pause_reading()
            if len(tasks) >= self.options.max_connections:
                self._refuse(writer, len(tasks))
                return
            if self._refusing:
                self._refusing = False
                log.info(
                    "%s accepting connections again %s", self.type_name, kv(port=self.bound_port)
                )
            task = loop.create_task(self._serve(reader, writer, ctx, executor))
            tasks[task] = writer
            task.add_done_callback(lambda t: tasks.pop(t, None))

        server = await asyncio.start_server(
            accepted, self.options.host, self.options.port, limit=STREAM_LIMIT
        )
        try:
            self.bound_port = int(server.sockets[0].getsockname()[1])
            log.info(
                "%s listening %s",
                self.type_name,
                kv(host=self.options.host, port=self.bound_port, framing=self.options.framing),
            )
            ctx.ready.set()
            waiters = [
                asyncio.create_task(ctx.shutdown.wait()),
                asyncio.create_task(stop.wait()),
            ]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
        finally:
            server.close()
            await self._close_connections(tasks)
            executor.shutdown(wait=False, cancel_futures=True)
            log.info("%s stopped %s", self.type_name, kv(port=self.bound_port))
        if self._failure is not None:
            raise self._failure

    async def _close_connections(
        self, tasks: dict[asyncio.Task[None], asyncio.StreamWriter]
    ) -> None:
        """Stop reading every connection; give them SHUTDOWN_GRACE to spool what they read."""
        for writer in list(tasks.values()):
            # abort(): the stream sees EOF after what it has buffered; no TLS shutdown wait.
            writer.transport.abort()
        if not tasks:
            return
        _done, pending = await asyncio.wait(list(tasks), timeout=SHUTDOWN_GRACE)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _refuse(self, writer: asyncio.StreamWriter, open_now: int) -> None:
        self.refused += 1
        ERRORS.labels(self.type_name, "receiving", "too_many_connections").inc()
        peer = _peer(writer)
        writer.transport.abort()
        if not self._refusing:
            self._refusing = True
            log.warning(
                "%s refusing connections, max_connections reached %s",
                self.type_name,
                kv(port=self.bound_port, open=open_now, peer=peer[0]),
            )

    # ------------------------------------------------------------------ one connection

    async def _serve(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        ctx: CollectorContext,
        executor: concurrent.futures.ThreadPoolExecutor,
    ) -> None:
        ip, port = _peer(writer)
        conn = _Connection(ip, f"{ip}:{port}", f"{self.scheme}://{ip}", writer)
        self.connections += 1
        self.accepted += 1
        CONNECTIONS.labels(self.type_name).inc()
        OPEN_CONNECTIONS.labels(self.type_name).inc()
        log.debug("%s connection opened %s", self.type_name, kv(peer=conn.sender))
        why = "closed by the peer"
        try:
            if self._ssl is not None and not await self._handshake(conn, self._ssl):
                why = "TLS handshake failed"
                return
            why = await self._read(reader, conn, ctx, executor)
        except SpoolError as e:  # reported by _spool; run() stops the collector with it
            why = f"spool failed: {e}"
        except Exception as e:  # a bug must not end the other connections
            why = f"internal error: {type(e).__name__}: {e}"
            ERRORS.labels(self.type_name, "receiving", "internal").inc()
            log.exception("%s connection failed %s", self.type_name, kv(peer=conn.sender, error=e))
        finally:
            writer.transport.abort()
            self.connections -= 1
            OPEN_CONNECTIONS.labels(self.type_name).dec()
            log.debug(
                "%s connection closed %s",
                self.type_name,
                kv(peer=conn.sender, messages=conn.messages, reason=why),
            )

    async def _handshake(self, conn: _Connection, context: ssl.SSLContext) -> bool:
        try:
            await conn.writer.start_tls(context, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        except (OSError, ssl.SSLError, TimeoutError) as e:
            self.refused += 1
            ERRORS.labels(self.type_name, "receiving", "tls_handshake").inc()
            if self._first(conn.ip, "tls_handshake"):
                log.warning(
                    "%s TLS handshake failed (logged once per sender) %s",
                    self.type_name,
                    kv(peer=conn.sender, error=str(e) or type(e).__name__),
                )
            return False
        if (conn.ip, "tls_handshake") in self._warned:
            self._warned.discard((conn.ip, "tls_handshake"))
            log.info("%s TLS handshake succeeded again %s", self.type_name, kv(peer=conn.sender))
        return True

    def _first(self, ip: str, code: str) -> bool:
        """True the first time (sender ip, error code) is seen: errors are logged once."""
        key = (ip, code)
        if key in self._warned:
            return False
        if len(self._warned) >= MAX_WARNED:  # bounded: forget, and log again
            self._warned.clear()
        self._warned.add(key)
        return True

    async def _read(
        self,
        reader: asyncio.StreamReader,
        conn: _Connection,
        ctx: CollectorContext,
        executor: concurrent.futures.ThreadPoolExecutor,
    ) -> str:
        """Read, decode and spool until the connection ends; returns why it ended."""
        loop = asyncio.get_running_loop()
        decoder = FrameDecoder(self.options.framing, self.options.max_message_bytes)
        idle = self.options.idle_timeout
        batch = self.options.batch
        pending: list[RawMessage] = []
        flush_at = 0.0  # loop time by which pending must be handed over
        last_data = loop.time()
        why = "closed by the peer"
        try:
            while True:
                now = loop.time()
                if pending and now >= flush_at:
                    await self._flush(pending, conn, ctx, executor)
                    last_data = max(last_data, loop.time())  # not idle while we did not read
                    continue
                due = [] if idle is None else [last_data + idle]
                if pending:
                    due.append(flush_at)
                try:
                    async with asyncio.timeout_at(min(due) if due else None):
                        data = await reader.read(READ_SIZE)
                except TimeoutError:
                    if idle is not None and loop.time() >= last_data + idle:
                        why = f"idle for {idle:g}s"
                        break
                    continue
                except OSError as e:  # reset by the peer, TLS error in the stream
                    why = f"connection error: {str(e) or type(e).__name__}"
                    ERRORS.labels(self.type_name, "receiving", "connection_error").inc()
                    if self._first(conn.ip, "connection_error"):
                        log.warning(
                            "%s connection error (logged once per sender) %s",
                            self.type_name,
                            kv(peer=conn.sender, error=why),
                        )
                    break
                if not data:
                    if ctx.shutdown.is_set() or (self._stop is not None and self._stop.is_set()):
                        why = "collector stopping"
                    break
                last_data = loop.time()
                frames = decoder.feed(data)
                if frames:
                    if not pending:
                        flush_at = last_data + BATCH_DELAY
                    self._collect(frames, conn, pending)
                    if len(pending) >= batch:
                        await self._flush(pending, conn, ctx, executor)
                        last_data = loop.time()
            self._collect(decoder.close(why), conn, pending)
            if pending:
                await self._flush(pending, conn, ctx, executor)
        except asyncio.CancelledError:  # shutdown grace over
            if pending:
                self._lost(ctx, pending, "shutdown", "collector stopped before spooling")
            raise
        return why

    def _collect(self, frames: list[Frame], conn: _Connection, pending: list[RawMessage]) -> None:
        received_at = time.time()
        source, sender, collector = conn.source, conn.sender, self.type_name
        parser, context = self.options.parser, self.context
        for frame in frames:
            if frame.issues:
                self._report(frame, conn)
            pending.append(
                RawMessage(
                    source=source,
                    data=frame.data,
                    received_at=received_at,
                    sender=sender,
                    parser=parser,
                    context=context,
                    collector=collector,
                    notes=tuple(i.detail for i in frame.issues),
                )
            )
        conn.messages += len(frames)

    def _report(self, frame: Frame, conn: _Connection) -> None:
        for issue in frame.issues:
            ERRORS.labels(self.type_name, "receiving", issue.code).inc()
            if self._first(conn.ip, issue.code):
                log.warning(
                    "%s framing problem, message kept (logged once per sender and kind) %s",
                    self.type_name,
                    kv(peer=conn.sender, error_code=issue.code, error=issue.detail),
                )

    # ------------------------------------------------------------------ spooling

    async def _flush(
        self,
        pending: list[RawMessage],
        conn: _Connection,
        ctx: CollectorContext,
        executor: concurrent.futures.ThreadPoolExecutor,
    ) -> None:
        """Hand `pending` to the pipeline in a worker thread; this connection is not read
        meanwhile (backpressure)."""
        batch = pending.copy()
        pending.clear()
        future = executor.submit(self._spool, ctx, batch)
        try:
            await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            # Shutdown grace over while the batch waited for a worker: it was never appended.
            # (A batch already being appended finishes or fails in its thread, which reports.)
            if future.cancelled():
                self._lost(ctx, batch, "shutdown", "collector stopped before spooling")
            raise
        except SpoolError as e:  # the spool stopped (I/O error) or was closed: stop too
            if self._failure is None:
                self._failure = e
            if self._stop is not None:
                self._stop.set()
            raise

    def _spool(self, ctx: CollectorContext, messages: list[RawMessage]) -> None:
        """Runs in a worker thread: blocks while the spool is full (backpressure)."""
        size = self.options.batch
        for start in range(0, len(messages), size):
            started = time.monotonic()
            try:
                self._append(ctx, messages[start : start + size])
            except SpoolError as e:
                self._lost(ctx, messages[start:], "spool_error", str(e))
                raise
            except Exception as e:  # a bug: still count and log what is lost
                self._lost(ctx, messages[start:], "internal", f"{type(e).__name__}: {e}")
                raise
            self._waited(time.monotonic() - started)

    def _waited(self, took: float) -> None:
        """Report backpressure once per episode, and once when it has been over for a while.

        A batch that takes SLOW_BATCH seconds or more means the connection was not read that
        long: the spool is full, or parsing is slower than the senders.
        """
        now = time.monotonic()
        with self._lock:
            if took >= SLOW_BATCH:
                self._slow_batches += 1
                if self._slow_since is None:
                    self._slow_since = now
                    log.warning(
                        "%s backpressure: reading paused while the pipeline spools a batch "
                        "(spool full, or parsing slower than the senders) %s",
                        self.type_name,
                        kv(port=self.bound_port, took_s=round(took, 1)),
                    )
                self._slow_last = now
            elif self._slow_since is not None and now - self._slow_last >= SLOW_EPISODE_END:
                log.info(
                    "%s backpressure over %s",
                    self.type_name,
                    kv(
                        port=self.bound_port,
                        lasted_s=round(self._slow_last - self._slow_since, 1),
                        slow_batches=self._slow_batches,
                    ),
                )
                self._slow_since = None
                self._slow_batches = 0

    def _append(self, ctx: CollectorContext, batch: list[RawMessage]) -> None:
        try:
            seqs = ctx.out.process(batch, timeout=None)
        except SpoolFull as e:
            # With timeout=None only raised for a batch larger than the spool's max_bytes:
            # split it. (The pipeline counts the retried messages in source health again.)
            if len(batch) > 1:
                mid = len(batch) // 2
                self._append(ctx, batch[:mid])
                self._append(ctx, batch[mid:])
                return
            self._lost(ctx, batch, "larger_than_spool", str(e))
            return
        if not seqs:  # a spool with when_full="drop_newest" dropped the batch
            self._lost(ctx, batch, "spool_full", "the spool is full (when_full=drop_newest)")
        elif self._losing:
            with self._lock:
                lost, self._losing = self._losing, {}
            if lost:
                log.info("%s spooling again %s", self.type_name, kv(lost=lost))

    def _lost(
        self, ctx: CollectorContext, batch: list[RawMessage], reason: str, error: str
    ) -> None:
        """Count and log messages that could not be spooled (never silently)."""
        per_source: dict[str, int] = {}
        for m in batch:
            per_source[m.source] = per_source.get(m.source, 0) + 1
        for source, n in per_source.items():
            ctx.health.drop(source, self.type_name, n, reason)
        ERRORS.labels(self.type_name, "processing", reason).inc()
        with self._lock:
            first = reason not in self._losing
            self._losing[reason] = self._losing.get(reason, 0) + len(batch)
        if first:
            log.error(
                "%s messages not spooled (logged once until spooling works again) %s",
                self.type_name,
                kv(count=len(batch), reason=reason, error=error),
            )


class SyslogTlsCollector(SyslogTcpCollector):
    """Syslog over TLS (RFC 5425): TLS 1.2 or later, client certificates required when
    ``client_ca`` is set; framing as for TCP (RFC 5425 prescribes octet counting; ``auto``
    also accepts newline framing).

    Delivery: at-least-once from the socket on, with backpressure, exactly as
    `SyslogTcpCollector` (a connection is not read while the spool is full). At a kill -9,
    what TCP acknowledged but was not yet appended to the spool is lost: this host's socket
    receive buffer, the stream and TLS buffers, a partial message and the batch in progress
    (at most ``batch`` messages or 50 ms per connection). A client that fails the handshake
    is refused, counted (``error_code="tls_handshake"``) and logged once per sender address.
    """

    type_name: ClassVar[str] = "syslog_tls"
    can_acknowledge: ClassVar[bool] = False
    Options: ClassVar[type[SyslogTlsOptions]] = SyslogTlsOptions
    scheme: ClassVar[str] = "syslog+tls"

    def __init__(self, options: SyslogTlsOptions) -> None:
        super().__init__(options)
        self._ssl = tls_context(options)


def _peer(writer: asyncio.StreamWriter) -> tuple[str, int]:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return str(peer[0]), int(peer[1])
    return "unknown", 0
