"""Syslog over TCP and TLS: real sockets on 127.0.0.1, a real spool and pipeline, no mocks."""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec

import orjson
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from collectors.base import CollectorContext
from collectors.health import SourceHealth
from collectors.pipeline import Pipeline
from collectors.syslog.tcp import (
    SyslogTcpCollector,
    SyslogTcpOptions,
    SyslogTlsCollector,
    SyslogTlsOptions,
    tls_context,
)
from socmon.errors import ConfigError, SpoolError
from socmon.spool import Spool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

HOST = "127.0.0.1"
P = ParamSpec("P")


def run_async(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async test body with asyncio.run (the fixtures are those of the body)."""

    @functools.wraps(test)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


def fgt(i: int, conn: int = 0) -> bytes:
    return (
        f'<189>date=2024-05-01 time=12:00:{i % 60:02d} devname="FGT-DC1" devid="FG100E" '
        f'logid="0000000013" type="traffic" subtype="forward" level="notice" vd="root" '
        f"srcip=10.0.{conn}.{i % 250} srcport={1024 + i} dstip=203.0.113.9 dstport=443 "
        f'sessionid={conn * 1_000_000 + i} proto=6 action="accept" policyid=1 service="HTTPS"'
    ).encode()


def tcp_collector(**options: Any) -> SyslogTcpCollector:
    return SyslogTcpCollector(SyslogTcpOptions(type="syslog_tcp", host=HOST, port=0, **options))


@dataclass
class Running:
    ctx: CollectorContext
    port: int
    spool: Spool

    async def wait_records(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.spool.stats().last_seq < n:
            assert time.monotonic() < deadline, f"{self.spool.stats().last_seq} of {n} records"
            await asyncio.sleep(0.01)


@asynccontextmanager
async def running(
    collector: SyslogTcpCollector, spool: Spool, tmp_path: Path
) -> AsyncIterator[Running]:
    health = SourceHealth()
    ctx = CollectorContext(
        out=Pipeline(spool, health),
        shutdown=asyncio.Event(),
        state_dir=tmp_path / "state",
        health=health,
    )
    task = asyncio.create_task(collector.run(ctx))
    await asyncio.wait_for(ctx.ready.wait(), 5)
    assert collector.bound_port
    try:
        yield Running(ctx, collector.bound_port, spool)
    finally:
        ctx.shutdown.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
def spool(tmp_path: Path) -> Any:
    with Spool(tmp_path / "spool", consumers=["ship"]) as s:
        yield s


def docs(spool: Spool) -> list[dict[str, Any]]:
    reader = spool.reader("ship")
    out: list[dict[str, Any]] = []
    while batch := reader.read(10_000):
        out += [orjson.loads(r.payload) for r in batch]
    return out


def originals(spool: Spool) -> list[str]:
    return [d["event"]["original"] for d in docs(spool)]


def send(port: int, data: bytes, *, chunk: int | None = None, pause: float = 0.0) -> str:
    """Send `data` on a new connection and close it; returns the client's "ip:port"."""
    with socket.create_connection((HOST, port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if chunk is None:
            s.sendall(data)
        else:
            for i in range(0, len(data), chunk):
                s.sendall(data[i : i + chunk])
                if pause:
                    time.sleep(pause)
        ip, cport = s.getsockname()[:2]
        return f"{ip}:{cport}"


def closed_by_peer(s: socket.socket) -> bool:
    """Whether the other side closes `s` (FIN or RST) within 5 s."""
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def errors(collector: str, code: str) -> float:
    value = REGISTRY.get_sample_value(
        "socmon_syslog_tcp_errors_total",
        {"collector": collector, "stage": "receiving", "error_code": code},
    )
    return value or 0.0


# ---------------------------------------------------------------------- framing on the wire


@run_async
async def test_newline_framing_lf_crlf_nul_keeps_the_sender(spool: Spool, tmp_path: Path) -> None:
    async with running(tcp_collector(), spool, tmp_path) as r:
        sender = await asyncio.to_thread(
            send, r.port, b"<13>Jan  1 00:00:00 h app: one\n<13>two\r\n" + fgt(3) + b"\x00"
        )
        await r.wait_records(3)
        stored = docs(spool)
        health = {row["source"]: row for row in r.ctx.health.snapshot()}
    assert [d["event"]["original"] for d in stored] == [
        "<13>Jan  1 00:00:00 h app: one",
        "<13>two",
        fgt(3).decode(),
    ]
    assert {d["log"]["source"]["address"] for d in stored} == {sender}
    assert stored[2]["event"]["dataset"] == "fortinet.fortigate"
    row = health["syslog+tcp://127.0.0.1"]
    assert (row["events"], row["collector"], row["drops"]) == (3, "syslog_tcp", 0)


@run_async
async def test_octet_and_newline_framing_on_separate_connections(
    spool: Spool, tmp_path: Path
) -> None:
    octet = [fgt(i, 1) for i in range(50)]
    newline = [fgt(i, 2) for i in range(50)]
    async with running(tcp_collector(), spool, tmp_path) as r:
        await asyncio.gather(
            asyncio.to_thread(send, r.port, b"".join(b"%d %s" % (len(m), m) for m in octet)),
            asyncio.to_thread(send, r.port, b"".join(m + b"\n" for m in newline)),
        )
        await r.wait_records(100)
    stored = originals(spool)
    assert sorted(stored) == sorted(m.decode() for m in octet + newline)
    # order within each connection is kept
    assert [s for s in stored if "10.0.1." in s] == [m.decode() for m in octet]


@run_async
async def test_message_split_across_many_segments(spool: Spool, tmp_path: Path) -> None:
    msg = fgt(7)
    async with running(tcp_collector(), spool, tmp_path) as r:
        await asyncio.to_thread(send, r.port, msg + b"\n", chunk=1, pause=0.0005)
        await asyncio.to_thread(send, r.port, b"%d %s" % (len(msg), msg), chunk=1, pause=0.0005)
        await r.wait_records(2)
    assert originals(spool) == [msg.decode()] * 2


@run_async
async def test_oversized_line_is_cut_kept_and_counted(
    spool: Spool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = errors("syslog_tcp", "oversized")
    big = b"<13>" + b"A" * 70_000
    async with running(tcp_collector(), spool, tmp_path) as r:
        with caplog.at_level(logging.WARNING, logger="socmon.collectors.syslog"):
            await asyncio.to_thread(send, r.port, big + b"\n<13>after\n" + big + b"\n")
            await r.wait_records(3)
    stored = originals(spool)
    assert stored == [big[: 64 * 1024].decode(), "<13>after", big[: 64 * 1024].decode()]
    assert errors("syslog_tcp", "oversized") == before + 2
    warnings = [r.getMessage() for r in caplog.records if "framing problem" in r.getMessage()]
    assert len(warnings) == 1  # once per connection and kind
    assert "message of 70004 bytes cut to 65536" in warnings[0]


@run_async
async def test_garbage_length_prefix_resynchronises(spool: Spool, tmp_path: Path) -> None:
    before = errors("syslog_tcp", "bad_length")
    async with running(tcp_collector(framing="octet"), spool, tmp_path) as r:
        await asyncio.to_thread(send, r.port, b"9 <13>first12x<13>hello\n<13>world\n")
        await r.wait_records(3)
    assert originals(spool) == ["<13>first", "12x<13>hello", "<13>world"]
    assert errors("syslog_tcp", "bad_length") == before + 1


@run_async
async def test_truncated_frame_at_close_is_delivered(spool: Spool, tmp_path: Path) -> None:
    before = errors("syslog_tcp", "truncated")
    async with running(tcp_collector(), spool, tmp_path) as r:
        await asyncio.to_thread(send, r.port, b"9 <13>whole50 <13>only part")
        await r.wait_records(2)
    whole, part = docs(spool)
    assert [whole["event"]["original"], part["event"]["original"]] == ["<13>whole", "<13>only part"]
    assert errors("syslog_tcp", "truncated") == before + 1
    assert "_framing" not in whole.get("tags", [])
    assert "_framing" in part["tags"] and "truncated frame" in part["error"]["message"]


@run_async
async def test_invalid_utf8_is_stored_as_parse_failure(spool: Spool, tmp_path: Path) -> None:
    async with running(tcp_collector(), spool, tmp_path) as r:
        await asyncio.to_thread(send, r.port, b"<13>bad \xff\xfe bytes\n<13>fine\n")
        await r.wait_records(2)
    bad, fine = docs(spool)
    assert "_parse_failure" in bad["tags"]
    assert "invalid UTF-8" in bad["error"]["message"]
    assert bad["event"]["original"] == "<13>bad \\xff\\xfe bytes"
    assert "_parse_failure" not in fine.get("tags", [])


# ---------------------------------------------------------------------- connections


@run_async
async def test_many_concurrent_connections_every_line_exactly_once(
    spool: Spool, tmp_path: Path
) -> None:
    conns, lines = 20, 500

    def line(c: int, i: int) -> bytes:
        return f"<13>Jan  1 00:00:00 host{c} app[{c}]: connection {c} line {i}".encode()

    payloads = [b"".join(line(c, i) + b"\n" for i in range(lines)) for c in range(conns)]
    collector = tcp_collector()
    async with running(collector, spool, tmp_path) as r:
        await asyncio.gather(*(asyncio.to_thread(send, r.port, p, chunk=8192) for p in payloads))
        await r.wait_records(conns * lines, timeout=20)
    stored = originals(spool)
    expected = {line(c, i).decode() for c in range(conns) for i in range(lines)}
    assert len(stored) == conns * lines
    assert set(stored) == expected
    assert collector.accepted == conns and collector.connections == 0


@run_async
async def test_max_connections_refuses_the_extra_connection(spool: Spool, tmp_path: Path) -> None:
    collector = tcp_collector(max_connections=2)
    async with running(collector, spool, tmp_path) as r:
        held = [socket.create_connection((HOST, r.port)) for _ in range(2)]
        try:
            while collector.connections < 2:
                await asyncio.sleep(0.01)
            extra = socket.create_connection((HOST, r.port))
            extra.settimeout(5)
            assert await asyncio.to_thread(closed_by_peer, extra)
            extra.close()
            for s in held:
                s.sendall(b"<13>still served\n")
            await r.wait_records(2)
        finally:
            for s in held:
                s.close()
    assert collector.refused == 1
    assert originals(spool) == ["<13>still served"] * 2


@run_async
async def test_idle_connection_is_closed_and_its_partial_message_kept(
    spool: Spool, tmp_path: Path
) -> None:
    async with running(tcp_collector(idle_timeout=0.3), spool, tmp_path) as r:
        with socket.create_connection((HOST, r.port)) as s:
            s.sendall(b"<13>no trailer yet")
            assert await asyncio.to_thread(closed_by_peer, s)
        await r.wait_records(1)
    assert originals(spool) == ["<13>no trailer yet"]


@run_async
async def test_shutdown_spools_what_was_read(spool: Spool, tmp_path: Path) -> None:
    s = None
    async with running(tcp_collector(), spool, tmp_path) as r:
        s = socket.create_connection((HOST, r.port))
        s.sendall(b"<13>complete\n<13>partial")
        await r.wait_records(1)
        await asyncio.sleep(0.1)  # the partial message has reached the collector
    s.close()
    assert originals(spool) == ["<13>complete", "<13>partial"]


# ---------------------------------------------------------------------- backpressure


@run_async
async def test_backpressure_stalls_the_sender_and_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A full spool stops reading: the sender's sendall blocks until a consumer commits."""
    pad = "x" * 150
    lines = [
        f"<13>Jan  1 00:00:00 web01 app[1]: line {i:06d} {pad}\n".encode() for i in range(48_000)
    ]
    # 9.6 MB: more than the spool cap plus every buffer on the way (loopback receive buffers
    # autotune to several MB, so a smaller payload can fit in them and never stall).
    payload = b"".join(lines)
    progress = {"sent": 0}
    done = threading.Event()

    def sender(port: int) -> None:
        with socket.create_connection((HOST, port)) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
            for i in range(0, len(payload), 16 << 10):
                s.sendall(payload[i : i + (16 << 10)])
                progress["sent"] = min(len(payload), i + (16 << 10))
        done.set()

    cap = 512 << 10
    with (
        Spool(
            tmp_path / "spool", consumers=["ship"], max_bytes=cap, segment_bytes=64 << 10
        ) as spool,
        caplog.at_level(logging.INFO, logger="socmon.collectors.syslog"),
    ):
        async with running(tcp_collector(batch=100), spool, tmp_path) as r:
            thread = threading.Thread(target=sender, args=(r.port,), daemon=True)
            thread.start()
            # The spool fills up, then nothing moves: the sender is blocked in sendall.
            deadline = time.monotonic() + 60
            while True:
                before = (spool.stats().last_seq, progress["sent"])
                await asyncio.sleep(0.3)
                full = spool.stats().bytes > cap // 2
                if full and (spool.stats().last_seq, progress["sent"]) == before:
                    break
                assert time.monotonic() < deadline, "the spool never filled"
            thread.join(timeout=1.0)  # (also: the blocked batch is reported after 1 s)
            assert thread.is_alive() and not done.is_set(), "the sender was not stalled"
            assert progress["sent"] < len(payload)
            stalled_at = spool.stats().last_seq
            assert spool.stats().bytes > cap // 2

            # A consumer reads and commits: the rest flows (generous bound: a loaded CI core
            # parses a few thousand lines per second).
            reader = spool.reader("ship")
            seen: list[str] = []
            deadline = time.monotonic() + 90
            while len(seen) < len(lines):
                batch = await asyncio.to_thread(reader.read, 2000)
                if batch:
                    seen += [orjson.loads(rec.payload)["event"]["original"] for rec in batch]
                    await asyncio.to_thread(reader.commit, batch[-1].seq)
                else:
                    await asyncio.sleep(0.01)
                assert time.monotonic() < deadline, f"{len(seen)} of {len(lines)} delivered"
            thread.join(timeout=5)
            assert done.is_set()
    assert 0 < stalled_at < len(lines)
    assert seen == [line[:-1].decode() for line in lines]  # every line, once, in order
    assert any("backpressure: reading paused" in m.getMessage() for m in caplog.records)


@run_async
async def test_a_failed_spool_stops_the_collector_and_counts_the_lost_batch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path / "spool", consumers=["ship"], max_bytes=64 << 10)
    health = SourceHealth()
    ctx = CollectorContext(
        out=Pipeline(spool, health), shutdown=asyncio.Event(), state_dir=tmp_path, health=health
    )
    collector = tcp_collector(batch=20)
    task = asyncio.create_task(collector.run(ctx))
    await asyncio.wait_for(ctx.ready.wait(), 5)
    assert collector.bound_port
    with socket.create_connection((HOST, collector.bound_port)) as s:
        s.sendall(b"".join(fgt(i) + b"\n" for i in range(500)))  # more than the spool holds
        while spool.stats().bytes < (48 << 10):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a batch is now blocked waiting for space
        stored = spool.stats().last_seq
        spool.close()  # e.g. the disk failed: blocked and later appends raise SpoolError
        with pytest.raises(SpoolError, match="closed"):
            await asyncio.wait_for(task, 10)
    drops = health.snapshot()[0]["drops"]
    assert drops >= 1  # never silently: counted per source ...
    assert stored + drops <= 500
    lost = [r.getMessage() for r in caplog.records if "not spooled" in r.getMessage()]
    assert lost and "reason=spool_error" in lost[0]  # ... and logged


@run_async
async def test_drop_newest_spool_drops_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(
        tmp_path / "spool", consumers=["ship"], max_bytes=16 << 10, when_full="drop_newest"
    ) as spool:
        async with running(tcp_collector(batch=5), spool, tmp_path) as r:
            await asyncio.to_thread(send, r.port, b"".join(fgt(i) + b"\n" for i in range(200)))
            deadline = time.monotonic() + 10
            while True:
                rows = r.ctx.health.snapshot()
                if rows and rows[0]["events"] >= 200:
                    row = rows[0]
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
        assert row["drops"] > 0
        assert row["drops"] + spool.stats().last_seq == 200
    lost = [m.getMessage() for m in caplog.records if "not spooled" in m.getMessage()]
    assert len(lost) == 1 and "reason=spool_full" in lost[0]  # logged once, counted always


# ---------------------------------------------------------------------- TLS


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    self_signed_cert: Path
    self_signed_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1")
    san = ("-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    _openssl("req", "-x509", *ec, *san, "-subj", "/CN=localhost",
             "-keyout", "self.key", "-out", "self.crt", cwd=d)  # fmt: skip
    _openssl("req", "-x509", *ec, "-subj", "/CN=socmon test CA",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "localhost"), ("client", "fw1.example")):
        _openssl("req", "-new", *ec[:5], "-subj", f"/CN={cn}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "1", "-extfile", f"{name}.ext",
                 "-out", f"{name}.crt", cwd=d)  # fmt: skip
    return Pki(
        d / "ca.crt",
        d / "server.crt",
        d / "server.key",
        d / "client.crt",
        d / "client.key",
        d / "self.crt",
        d / "self.key",
    )


def tls_send(port: int, data: bytes, context: ssl.SSLContext) -> None:
    """Send `data` over TLS on a new connection and close it."""
    with (
        socket.create_connection((HOST, port)) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as s,
    ):
        s.sendall(data)


def tls_refused(port: int, context: ssl.SSLContext) -> bool:
    """Whether the server refuses this client: with TLS 1.3 the client only learns it when
    reading after the handshake (the alert, or the connection closed)."""
    with socket.create_connection((HOST, port)) as raw:
        raw.settimeout(5)
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(b"<13>from a client the server must refuse\n")
                return s.recv(1) == b""
        except (ssl.SSLError, ConnectionError):
            return True


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


@run_async
async def test_tls_with_a_self_signed_certificate(pki: Pki, spool: Spool, tmp_path: Path) -> None:
    collector = SyslogTlsCollector(
        SyslogTlsOptions(
            type="syslog_tls",
            host=HOST,
            port=0,
            certfile=pki.self_signed_cert,
            keyfile=pki.self_signed_key,
        )
    )
    msgs = [fgt(i) for i in range(20)]
    async with running(collector, spool, tmp_path) as r:
        ctx = client_context(pki.self_signed_cert)
        await asyncio.to_thread(
            tls_send, r.port, b"".join(b"%d %s" % (len(m), m) for m in msgs), ctx
        )
        await asyncio.to_thread(tls_send, r.port, b"<13>newline framed\n", ctx)
        await r.wait_records(21)
        health = {row["source"] for row in r.ctx.health.snapshot()}
    stored = originals(spool)
    assert sorted(stored) == sorted([m.decode() for m in msgs] + ["<13>newline framed"])
    assert health == {"syslog+tls://127.0.0.1"}


@run_async
async def test_tls_client_certificate_required(
    pki: Pki, spool: Spool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    collector = SyslogTlsCollector(
        SyslogTlsOptions(
            type="syslog_tls",
            host=HOST,
            port=0,
            certfile=pki.server_cert,
            keyfile=pki.server_key,
            client_ca=pki.ca,
        )
    )
    before = errors("syslog_tls", "tls_handshake")
    async with running(collector, spool, tmp_path) as r:
        with caplog.at_level(logging.WARNING, logger="socmon.collectors.syslog"):
            # Without a certificate, and with one the CA did not sign: refused.
            assert await asyncio.to_thread(tls_refused, r.port, client_context(pki.ca))
            stranger = client_context(pki.ca, pki.self_signed_cert, pki.self_signed_key)
            assert await asyncio.to_thread(tls_refused, r.port, stranger)
            # With the CA-signed certificate: accepted.
            good = client_context(pki.ca, pki.client_cert, pki.client_key)
            await asyncio.to_thread(tls_send, r.port, b"<13>from fw1\n", good)
            await r.wait_records(1)
            while collector.refused < 2:
                await asyncio.sleep(0.01)
    assert originals(spool) == ["<13>from fw1"]
    assert errors("syslog_tls", "tls_handshake") == before + 2
    # logged once per sender (both came from 127.0.0.1), counted every time
    assert sum("TLS handshake failed" in rec.getMessage() for rec in caplog.records) == 1


def test_tls_options(pki: Pki, tmp_path: Path) -> None:
    opts = SyslogTlsOptions(type="syslog_tls", certfile=pki.server_cert, keyfile=pki.server_key)
    assert opts.port == 6514 and SyslogTcpOptions(type="syslog_tcp").port == 5514
    context = tls_context(opts)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    with_ca = opts.model_copy(update={"client_ca": pki.ca})
    assert tls_context(with_ca).verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(ValidationError):
        SyslogTlsOptions.model_validate({"type": "syslog_tls"})  # certfile, keyfile required
    with pytest.raises(ConfigError, match="cannot load the TLS certificate"):
        SyslogTlsCollector(
            SyslogTlsOptions(type="syslog_tls", certfile=tmp_path / "no.crt", keyfile=pki.ca)
        )
    with pytest.raises(ValidationError):
        SyslogTcpOptions.model_validate({"type": "syslog_tcp", "framing": "xml"})
