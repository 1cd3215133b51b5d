"""Syslog over UDP with real sockets, a real spool and the real pipeline."""

import asyncio
import os
import socket
from pathlib import Path

import orjson

from collectors.base import CollectorContext
from collectors.health import SourceHealth
from collectors.pipeline import Pipeline
from collectors.syslog.collector import SyslogUdpCollector, SyslogUdpOptions
from detections.silence import LOSS_RULE, source_alerts
from socmon.spool import Spool


async def run_udp(
    spool: Spool, health: SourceHealth, datagrams: list[bytes], tmp_path: Path
) -> SyslogUdpCollector:
    collector = SyslogUdpCollector(
        SyslogUdpOptions(type="syslog_udp", host="127.0.0.1", port=0, timezone="Asia/Ho_Chi_Minh")
    )
    stop = asyncio.Event()
    ctx = CollectorContext(
        out=Pipeline(spool, health), shutdown=stop, state_dir=tmp_path, health=health
    )
    task = asyncio.create_task(collector.run(ctx))
    await asyncio.wait_for(ctx.ready.wait(), 5)
    assert collector.bound_port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", collector.bound_port))
            await asyncio.sleep(0)
    await asyncio.sleep(0.3)
    stop.set()
    await task
    return collector


def test_malformed_datagrams_are_stored_with_reason(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", consumers=["ship"])
    health = SourceHealth()
    datagrams = [
        b"<13>Nov 23 10:00:00 web01 sshd[1]: ok line",
        b"\x00\x01\x02binary\xff",
        b"<13>" + b"A" * 65000,
        b"<13>Nov 23 10:00:00 web01 app: caf\xe9 latin-1",
        b"",
    ]
    asyncio.run(run_udp(spool, health, datagrams, tmp_path))
    docs = [orjson.loads(r.payload) for r in spool.reader("ship").read(100)]
    assert len(docs) == len(datagrams)  # nothing dropped, empty datagram included
    by_original = {d["event"]["original"][:30]: d for d in docs}
    ok = by_original["<13>Nov 23 10:00:00 web01 sshd"]
    assert "tags" not in ok and ok["message"] == "ok line"
    assert ok["@timestamp"].endswith("T03:00:00Z")  # 10:00 in Asia/Ho_Chi_Minh
    failures = [d for d in docs if "_parse_failure" in d.get("tags", [])]
    reasons = sorted(d["error"]["message"].split(" at ")[0] for d in failures)
    assert reasons == ["empty message", "invalid UTF-8", "invalid UTF-8"]
    big = next(d for d in docs if d["event"]["original"].startswith("<13>AAAA"))
    assert len(big["event"]["original"]) == 65004
    rows = health.snapshot()
    assert rows[0]["source"] == "syslog+udp://127.0.0.1" and rows[0]["events"] == 5
    assert rows[0]["parse_failures"] == 3
    spool.close()


def test_spool_full_drops_are_counted_and_alerted(tmp_path: Path) -> None:
    spool = Spool(
        tmp_path / "spool", consumers=["ship"], max_bytes=64 * 1024, segment_bytes=16 * 1024
    )
    health = SourceHealth(host="col1")
    line = b"<13>Nov 23 10:00:00 fw1 kernel: " + b"x" * 400
    asyncio.run(run_udp(spool, health, [line] * 600, tmp_path))
    stored = spool.stats().last_seq
    row = health.snapshot()[0]
    assert 0 < stored < 600
    assert row["events"] == 600 and row["drops"] == 600 - stored  # every datagram accounted for
    alerts = source_alerts([row], now=row["last_seen"], threshold=900)
    assert [a["rule"]["id"] for a in alerts] == [LOSS_RULE]
    assert alerts[0]["socmon"]["dropped"] == 600 - stored
    spool.close()


def test_kernel_receive_buffer_drops_are_counted(tmp_path: Path) -> None:
    """A socket nobody reads overflows: the kernel's drop counter is seen and reported."""
    from collectors.syslog.collector import KernelDrops

    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        rx.bind(("127.0.0.1", 0))
        counter = KernelDrops(os.fstat(rx.fileno()).st_ino)
        for _ in range(2000):
            tx.sendto(b"<13>x " + b"y" * 500, rx.getsockname())
        assert counter.new_drops() > 1000
        assert counter.new_drops() == 0  # only new drops are reported
