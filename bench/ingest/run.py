"""Ingest benchmark: FortiGate-style lines over UDP and TCP into the spool and the store.

Measures, in one run on this machine:
1. parse + enrich + spool on one core (in process): lines/s;
2. `socmon collect` (UDP and TCP sources, shipping to a real osmem-server) at rising send
   rates: events/s into the spool and into the store, drops, lag p50/p99 to the store,
   collector CPU and peak RSS; beside it the limit: a bare receive-and-append loop (no
   parsing) on the same socket type and data;
3. the shipper against a raw `elasticsearch.helpers.bulk` loop into the same store.

    .venv/bin/python bench/ingest/run.py [--seconds 5] [--rates 2000,5000,10000,20000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import yaml
from elasticsearch import helpers

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import git_rev, machine, percentile, table  # noqa: E402

from collectors.pipeline import Pipeline, RawMessage  # noqa: E402
from collectors.ship import Shipper, events_target  # noqa: E402
from socmon.config import load_settings  # noqa: E402
from socmon.embedded import EmbeddedStore  # noqa: E402
from socmon.errors import StoreError  # noqa: E402
from socmon.spool import Spool  # noqa: E402
from socmon.store import Store  # noqa: E402

LINE = (
    '<189>date=2026-11-23 time=10:00:00 devname="fw-dc1" devid="FG100E4Q17000001" logid="0000000013" '
    'type="traffic" subtype="forward" level="notice" vd="root" eventtime=1763892000000000000 '
    'srcip=203.0.113.{a} srcport={port} srcintf="wan1" srcintfrole="wan" dstip=10.10.{b}.{c} '
    'dstport=443 dstintf="dmz" dstintfrole="dmz" sessionid={sent_us} proto=6 action="accept" '
    'policyid=12 policytype="policy" service="HTTPS" trandisp="noop" duration=3 sentbyte=1520 '
    'rcvdbyte=8804 sentpkt=12 rcvdpkt=10 appcat="unscanned"'
)

BASELINE = r"""
import socket, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from socmon.spool import Spool
kind, port, spool_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
spool = Spool(spool_dir, consumers=["ship"], max_bytes=8 << 30)
enc = lambda b, _s: b
if kind == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind(("127.0.0.1", port))
    print("ready", flush=True)
    while True:
        batch = [s.recv(65535)]
        s.setblocking(False)
        try:
            while len(batch) < 500:
                batch.append(s.recv(65535))
        except BlockingIOError:
            pass
        s.setblocking(True)
        spool.append(batch, enc)
else:
    srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port)); srv.listen(8)
    print("ready", flush=True)
    conn, _ = srv.accept()
    buf = b""
    while data := conn.recv(1 << 20):
        buf += data
        *lines, buf = buf.split(b"\n")
        if lines:
            spool.append(lines, enc)
"""


def make_line(i: int) -> bytes:
    return LINE.format(
        a=i % 250 + 1,
        port=1024 + i % 60000,
        b=i % 20,
        c=i % 250 + 1,
        sent_us=int(time.time() * 1e6),
    ).encode()


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS bytes) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    return cpu, rss


def send(kind: str, port: int, rate: int, seconds: float) -> tuple[int, list[float]]:
    """Send at `rate` lines/s for `seconds`; returns (lines sent, send times by line)."""
    times: list[float] = []
    total = int(rate * seconds)
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    if kind == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out = lambda b: sock.sendto(b, ("127.0.0.1", port))  # noqa: E731
    else:
        sock = socket.create_connection(("127.0.0.1", port))
        out = sock.sendall
    start = time.monotonic()
    i = 0
    while i < total:
        n = min(per_tick, total - i)
        if kind == "udp":
            for j in range(n):
                out(make_line(i + j))
        else:
            out(b"".join(make_line(i + j) + b"\n" for j in range(n)))
        now = time.time()
        times += [now] * n
        i += n
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    sock.close()
    return total, times


def bench_pipeline(tmp: Path) -> list[list[object]]:
    spool = Spool(tmp / "pipe", consumers=["ship"], max_bytes=8 << 30)
    pipe = Pipeline(spool)
    n = 100_000
    msgs = [
        RawMessage(
            source="syslog+udp://192.0.2.1",
            data=make_line(i),
            received_at=time.time(),
            sender="192.0.2.1:514",
            collector="bench",
        )
        for i in range(n)
    ]
    best = 0.0
    for _ in range(3):
        t = time.process_time()
        for i in range(0, n, 500):
            pipe.process(msgs[i : i + 500])
        best = max(best, n / (time.process_time() - t))
    spool.close()
    return [
        ["parse+enrich+spool, FortiGate, 1 core (lines/s)", f"{best:,.0f}", "—", "goal ≥ 20,000"]
    ]


def run_collector(
    tmp: Path, store: Store, kind: str, rate: int, seconds: float
) -> dict[str, float]:
    port = free_port(kind)
    data = tmp / f"{kind}-{rate}"
    cfg = data / "collect.yaml"
    data.mkdir()
    source = {"type": f"syslog_{kind}", "host": "127.0.0.1", "port": port, "parser": "fortigate"}
    cfg.write_text(
        yaml.safe_dump(
            {
                "es_url": store.url,
                "namespace": f"b{kind}{rate}",
                "data_dir": str(data),
                "sources": [source],
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCMON_")} | {
        "SOCMON_CONFIG": str(cfg)
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "socmon.cli", "collect"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    target = f"logs-fortinet.fortigate-b{kind}{rate}"
    try:
        wait_port(kind, port, proc)
        cpu0, _ = proc_stats(proc.pid)
        peak = [0]
        polls: list[tuple[float, int]] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], proc_stats(proc.pid)[1])
                with contextlib.suppress(StoreError):
                    polls.append((time.time(), store.count(target)))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.monotonic()
        total, times = send(kind, port, rate, seconds)
        send_secs = time.monotonic() - t0
        deadline = (
            time.monotonic() + 30
        )  # the embedded store is the slow part: sample it, do not wait it out
        while time.monotonic() < deadline and (not polls or polls[-1][1] < total):
            time.sleep(0.5)
            if len(polls) > 8 and polls[-1][1] == polls[-8][1] and polls[-1][1] > 0:
                break
        done.set()
        sampler.join()
        cpu1, _ = proc_stats(proc.pid)
        stored = polls[-1][1] if polls else 0
        lags = [t - times[c - 1] for t, c in polls if 0 < c <= len(times)]
        first = next((t for t, c in polls if c > 0), None)
        store_secs = (polls[-1][0] - first) if first else float("nan")
        result = {
            "sent": total,
            "send_rate": total / send_secs,
            "stored": stored,
            "store_rate": stored / store_secs if store_secs and store_secs > 0 else float("nan"),
            "lag_p50": percentile(lags, 50),
            "lag_p99": percentile(lags, 99),
            "cpu": (cpu1 - cpu0) / send_secs,
            "rss_mb": peak[0] / 1e6,
        }
    finally:
        proc.terminate()
        proc.wait(30)
        result_health = read_health(store, f"socmon-sources-b{kind}{rate}")
    return result | result_health


def read_health(store: Store, index: str) -> dict[str, float]:
    """Events accepted and dropped by the collector, from its last published source health."""
    store.refresh(index)
    hits = store.search(index, query={"match_all": {}})["hits"]["hits"]
    events = sum(h["_source"]["events"] for h in hits)
    drops = sum(h["_source"]["drops"] for h in hits)
    return {"received": events, "drops": drops, "spooled": events - drops}


def run_baseline(tmp: Path, kind: str, rate: int, seconds: float) -> dict[str, float]:
    port = free_port(kind)
    spool_dir = tmp / f"base-{kind}-{rate}"
    proc = subprocess.Popen(
        [sys.executable, "-c", BASELINE, kind, str(port), str(spool_dir), str(ROOT)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    total, _ = send(kind, port, rate, seconds)
    time.sleep(1.0)
    proc.terminate()
    proc.wait(10)
    spool = Spool(spool_dir, consumers=["ship"])
    got = spool.stats().last_seq
    spool.close()
    return {"sent": total, "spooled": got}


def bench_shipper(tmp: Path, store: Store) -> list[list[object]]:
    n = 20_000
    spool = Spool(tmp / "ship", consumers=["ship"], max_bytes=8 << 30)
    Pipeline(spool).process(
        [
            RawMessage(
                source="syslog+udp://192.0.2.1",
                data=make_line(i),
                received_at=time.time(),
                collector="bench",
            )
            for i in range(n)
        ]
    )
    docs = [orjson.loads(r.payload) for r in spool.reader("ship").read(n)]
    spool.reader("ship").rewind()
    shipper = Shipper(spool, store, events_target(store), tmp / "dead", batch=1000)
    t = time.monotonic()
    while shipper.once():
        pass
    ship_rate = n / (time.monotonic() - t)
    actions = (
        {"_op_type": "create", "_index": "logs-rawbulk-bench", "_id": d.pop("_id"), "_source": d}
        for d in docs
    )
    t = time.monotonic()
    helpers.bulk(store.client, actions, chunk_size=1000)
    raw_rate = n / (time.monotonic() - t)
    spool.close()
    return [
        [
            "shipper into osmem (docs/s)",
            f"{ship_rate:,.0f}",
            f"raw helpers.bulk {raw_rate:,.0f}",
            f"{ship_rate / raw_rate:.0%} of raw (goal ≥ 80%)",
        ]
    ]


def free_port(kind: str) -> int:
    with socket.socket(
        socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    ) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(kind: str, port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "collector exited"
        if kind == "tcp":
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                pass
        else:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    time.sleep(0.5)  # bound by the collector: give it a moment to start reading
                    return
        time.sleep(0.1)
    raise SystemExit("collector did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rates", default="2000,5000,10000,20000")
    ap.add_argument("--kinds", default="udp,tcp")
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="socmon-ingest-"))
    rows = bench_pipeline(tmp)
    with EmbeddedStore() as server:
        store = Store.connect(load_settings(data_dir=tmp / "x", namespace="bench"), server.url)
        store.setup()
        rows += bench_shipper(tmp, store)
        sockets: list[list[object]] = []
        for kind in args.kinds.split(","):
            for rate in rates:
                r = run_collector(tmp, store, kind, rate, args.seconds)
                b = run_baseline(tmp, kind, rate, args.seconds)
                sockets.append(
                    [
                        kind,
                        f"{rate:,}",
                        f"{r['sent']:,.0f}",
                        f"{r['spooled']:,.0f} ({r['drops']:,.0f} dropped)",
                        f"{r['stored']:,.0f}",
                        f"{r['store_rate']:,.0f}",
                        f"{r['lag_p50']:.2f} / {r['lag_p99']:.2f}",
                        f"{r['cpu']:.0%}",
                        f"{r['rss_mb']:.0f}",
                        f"{b['spooled']:,} of {b['sent']:,}",
                    ]
                )
                print(json.dumps({"kind": kind, "rate": rate, **r, "baseline": b}), file=sys.stderr)
    print(f"machine: {machine()}; commit {git_rev()}")
    print(
        f"command: .venv/bin/python bench/ingest/run.py --seconds {args.seconds:g} --rates {args.rates} --kinds {args.kinds}"
    )
    print(table(["measure", "socmon", "peer / limit", "note"], rows))
    print()
    print(
        table(
            [
                "socket",
                "rate sent/s",
                "sent",
                "into spool",
                "in store",
                "store docs/s",
                "lag p50/p99 s",
                "collector CPU",
                "peak RSS MB",
                "bare recv+append loop: spooled",
            ],
            sockets,
        )
    )


if __name__ == "__main__":
    main()
