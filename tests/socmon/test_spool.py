"""The spool keeps every accepted event through restarts, crashes, damage and a full disk cap."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

import socmon
from socmon.errors import SpoolError, SpoolFull
from socmon.spool import HEADER_SIZE, Record, Spool

REPO_ROOT = Path(socmon.__file__).resolve().parent.parent
PAYLOAD = 100  # bytes per test payload
FRAME = HEADER_SIZE + PAYLOAD


def payload_of(seq: int) -> bytes:
    return f"event-{seq}".encode().ljust(PAYLOAD, b".")


def by_seq(_item: object, seq: int) -> bytes:
    return payload_of(seq)


def fill(spool: Spool, n: int) -> list[int]:
    return spool.append([None] * n, by_seq)


def read_all(spool: Spool, consumer: str) -> list[Record]:
    reader = spool.reader(consumer)
    out: list[Record] = []
    while batch := reader.read(max_records=7):
        out.extend(batch)
    return out


def segment_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.glob("*.seg"))


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def spool(spool_dir: Path) -> Iterator[Spool]:
    with Spool(spool_dir, consumers=["ship", "detect"], fsync="never") as sp:
        yield sp


# ---------------------------------------------------------------- basics


def test_append_read_commit_roundtrip(spool: Spool) -> None:
    seen: list[tuple[str, int]] = []

    def encode(item: str, seq: int) -> bytes:
        seen.append((item, seq))
        return f"{item}:{seq}".encode()

    before = time.time()
    assert spool.append(["a", "b", "c"], encode) == [1, 2, 3]
    assert spool.append(["d"], encode) == [4]
    assert seen == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]

    reader = spool.reader("ship")
    records = reader.read()
    assert [(r.seq, r.payload) for r in records] == [
        (1, b"a:1"),
        (2, b"b:2"),
        (3, b"c:3"),
        (4, b"d:4"),
    ]
    assert all(before <= r.appended_at <= time.time() for r in records)
    assert reader.read() == []

    assert spool.stats().consumers["ship"].depth == 4
    reader.commit(4)
    assert reader.committed == 4
    stats = spool.stats()
    assert stats.last_seq == 4
    assert stats.consumers["ship"].committed == 4
    assert stats.consumers["ship"].depth == 0
    assert stats.consumers["ship"].oldest_unconsumed_age == 0.0
    assert stats.consumers["detect"].depth == 4
    time.sleep(0.1)
    age = spool.stats().consumers["detect"].oldest_unconsumed_age
    assert time.time() - records[0].appended_at >= age >= 0.1


def test_consumers_are_independent(spool: Spool) -> None:
    fill(spool, 10)
    ship, detect = spool.reader("ship"), spool.reader("detect")
    assert [r.seq for r in ship.read(max_records=6)] == [1, 2, 3, 4, 5, 6]
    ship.commit(6)
    assert [r.seq for r in detect.read(max_records=3)] == [1, 2, 3]
    assert [r.seq for r in ship.read()] == [7, 8, 9, 10]
    assert [r.seq for r in detect.read()] == list(range(4, 11))
    assert spool.stats().consumers["detect"].committed == 0


def test_rewind_redelivers_after_the_committed_cursor(spool: Spool) -> None:
    fill(spool, 10)
    reader = spool.reader("ship")
    assert len(reader.read(max_records=8)) == 8
    reader.commit(3)
    reader.rewind()  # e.g. the bulk request failed
    assert [r.seq for r in reader.read()] == list(range(4, 11))
    reader.rewind()
    assert [r.seq for r in reader.read(max_records=2)] == [4, 5]


def test_read_limits_and_never_blocks(spool: Spool) -> None:
    reader = spool.reader("ship")
    assert reader.read() == []
    fill(spool, 5)
    assert [r.seq for r in reader.read(max_bytes=2 * PAYLOAD + 50)] == [1, 2]
    assert [r.seq for r in reader.read(max_bytes=1)] == [3]  # at least one record
    assert [r.seq for r in reader.read(max_records=1)] == [4]


def test_commit_rules(spool: Spool) -> None:
    fill(spool, 5)
    reader = spool.reader("ship")
    reader.read(max_records=2)
    with pytest.raises(SpoolError, match="cannot commit"):
        reader.commit(3)  # would skip a record this consumer never saw
    reader.commit(2)
    reader.commit(1)  # older: no-op
    assert reader.committed == 2


def test_unknown_consumer_and_bad_arguments(spool: Spool, tmp_path: Path) -> None:
    with pytest.raises(SpoolError, match="unknown spool consumer"):
        spool.reader("nobody")
    with pytest.raises(SpoolError):
        Spool(tmp_path / "x", consumers=[])
    with pytest.raises(SpoolError):
        Spool(tmp_path / "y", consumers=["../evil"])
    with pytest.raises(SpoolError, match="not bytes"):
        spool.append(["x"], lambda item, seq: item)  # type: ignore[arg-type,return-value]
    assert spool.stats().last_seq == 0


def test_wait_wakes_on_append(spool: Spool) -> None:
    reader = spool.reader("detect")
    assert reader.wait(0.05) is False
    timer = threading.Timer(0.1, fill, args=(spool, 1))
    started = time.monotonic()
    timer.start()
    try:
        assert reader.wait(5.0) is True
        assert time.monotonic() - started < 2.0  # woken by the append, not by the timeout
    finally:
        timer.join()
    assert [r.seq for r in reader.read()] == [1]
    assert reader.wait(0.01) is False


def test_close_is_idempotent_and_final(spool_dir: Path) -> None:
    sp = Spool(spool_dir, consumers=["ship"])
    fill(sp, 3)
    sp.close()
    sp.close()
    with pytest.raises(SpoolError, match="closed"):
        fill(sp, 1)
    assert sp.stats().synced_seq == 3


def test_one_process_per_directory(spool: Spool, spool_dir: Path) -> None:
    with pytest.raises(SpoolError, match="in use"):
        Spool(spool_dir, consumers=["ship"])


# ---------------------------------------------------------------- durability and restarts


def test_restart_continues_seqs_and_cursors(spool_dir: Path) -> None:
    with Spool(spool_dir, consumers=["ship", "detect"]) as sp:
        instance_id = sp.instance_id
        assert re.fullmatch(r"[0-9a-f]{32}", instance_id)
        fill(sp, 10)
        ship = sp.reader("ship")
        ship.read(max_records=6)
        ship.commit(6)

    with Spool(spool_dir, consumers=["ship", "detect"]) as sp:
        assert sp.instance_id == instance_id
        assert sp.stats().last_seq == 10
        assert fill(sp, 2) == [11, 12]
        assert sp.reader("ship").committed == 6
        assert [r.seq for r in read_all(sp, "ship")] == list(range(7, 13))
        records = read_all(sp, "detect")
        assert [r.seq for r in records] == list(range(1, 13))
        assert all(r.payload == payload_of(r.seq) for r in records)


@pytest.mark.parametrize("policy", ["always", "interval", "never"])
def test_fsync_policies(spool_dir: Path, policy: str) -> None:
    with Spool(spool_dir, consumers=["ship"], fsync=policy, fsync_interval=0.02) as sp:  # type: ignore[arg-type]
        fill(sp, 5)
        if policy == "always":
            assert sp.stats().synced_seq == 5
        elif policy == "interval":
            deadline = time.monotonic() + 5
            while sp.stats().synced_seq < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sp.stats().synced_seq == 5
        else:
            assert sp.stats().synced_seq == 0
            sp.sync()
            assert sp.stats().synced_seq == 5


def test_cursor_ahead_of_data_never_reuses_seqs(spool_dir: Path) -> None:
    """After an OS crash lost un-fsynced records a consumer had already committed."""
    with Spool(spool_dir, consumers=["ship", "detect"]) as sp:
        fill(sp, 10)
    cursor = spool_dir / "cursors" / "ship.cursor"
    cursor.write_text(json.dumps({"consumer": "ship", "seq": 15}))
    with Spool(spool_dir, consumers=["ship", "detect"]) as sp:
        assert fill(sp, 1) == [16]
        assert [r.seq for r in read_all(sp, "ship")] == [16]
        assert [r.seq for r in read_all(sp, "detect")] == [*range(1, 11), 16]


# ---------------------------------------------------------------- segments and the byte cap


def test_segments_roll_and_are_deleted_once_all_consumers_commit(spool_dir: Path) -> None:
    # 7 records of FRAME bytes fit in a segment of 1000 bytes.
    with Spool(spool_dir, consumers=["ship", "detect"], segment_bytes=1000) as sp:
        fill(sp, 20)
        assert segment_files(spool_dir) == [
            "00000000000000000001.seg",
            "00000000000000000008.seg",
            "00000000000000000015.seg",
        ]
        assert sp.stats().segments == 3
        assert sp.stats().bytes == 20 * FRAME

        ship, detect = sp.reader("ship"), sp.reader("detect")
        ship.commit(read_all(sp, "ship")[-1].seq)
        assert len(segment_files(spool_dir)) == 3  # detect still needs them all

        detect.read(max_records=10)
        detect.commit(10)
        assert segment_files(spool_dir) == [
            "00000000000000000008.seg",
            "00000000000000000015.seg",
        ]
        assert sp.stats().bytes == 13 * FRAME
        assert [r.seq for r in detect.read()] == list(range(11, 21))
        detect.commit(20)
        assert segment_files(spool_dir) == ["00000000000000000015.seg"]

    # A consumer added later starts at the oldest retained record.
    with Spool(spool_dir, consumers=["ship", "detect", "audit"], segment_bytes=1000) as sp:
        assert [r.seq for r in read_all(sp, "audit")] == list(range(15, 21))
        assert sp.stats().consumers["audit"].committed == 14


def test_block_waits_for_a_consumer_to_free_space(spool_dir: Path) -> None:
    with Spool(
        spool_dir, consumers=["ship"], segment_bytes=1000, max_bytes=3000, when_full="block"
    ) as sp:
        fill(sp, 23)  # 23 * 128 = 2944 bytes: one more record does not fit
        started = time.monotonic()
        with pytest.raises(SpoolFull):
            fill_with_timeout(sp, 0.2)
        assert time.monotonic() - started >= 0.2

        def consume() -> None:
            time.sleep(0.2)
            reader = sp.reader("ship")
            reader.commit(reader.read(max_records=100)[-1].seq)

        thread = threading.Thread(target=consume)
        started = time.monotonic()
        thread.start()
        try:
            assert fill_with_timeout(sp, 10.0) == [24]  # the failed attempt used no seq
        finally:
            thread.join()
        assert time.monotonic() - started >= 0.15
        assert sp.stats().bytes <= 3000


def fill_with_timeout(sp: Spool, timeout: float) -> list[int]:
    return sp.append([None], by_seq, timeout=timeout)


def test_block_with_one_segment_seals_it_when_consumed(spool_dir: Path) -> None:
    # max_bytes below segment_bytes: the active segment itself must be sealed to free space.
    with Spool(spool_dir, consumers=["ship"], max_bytes=1000, segment_bytes=1 << 20) as sp:
        fill(sp, 7)
        with pytest.raises(SpoolFull):
            fill_with_timeout(sp, 0.05)
        reader = sp.reader("ship")
        reader.commit(reader.read()[-1].seq)
        assert fill_with_timeout(sp, 1.0) == [8]
        assert [r.seq for r in reader.read()] == [8]


def test_close_wakes_a_blocked_appender(spool_dir: Path) -> None:
    sp = Spool(spool_dir, consumers=["ship"], segment_bytes=1000, max_bytes=3000)
    fill(sp, 23)
    errors: list[BaseException] = []

    def blocked() -> None:
        try:
            sp.append([None], by_seq, timeout=None)
        except SpoolError as e:
            errors.append(e)

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.1)
    sp.close()
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert "closed" in str(errors[0])


def test_drop_newest_counts_what_it_drops(spool_dir: Path) -> None:
    with Spool(
        spool_dir, consumers=["ship"], segment_bytes=1000, max_bytes=3000, when_full="drop_newest"
    ) as sp:
        fill(sp, 23)
        assert fill(sp, 5) == []
        assert sp.stats().dropped == 5
        assert sp.append([None] * 100, by_seq) == []  # can never fit
        assert sp.stats().dropped == 105
        reader = sp.reader("ship")
        reader.commit(reader.read(max_records=100)[-1].seq)
        assert fill(sp, 2) == [24, 25]


def test_too_large_batch_raises_when_blocking(spool_dir: Path) -> None:
    with Spool(spool_dir, consumers=["ship"], max_bytes=1000) as sp, pytest.raises(SpoolFull):
        sp.append([None] * 10, by_seq, timeout=None)


# ---------------------------------------------------------------- damage


def damage(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)


@pytest.mark.parametrize(
    ("how", "offset_in_record", "data"),
    [
        ("crc", HEADER_SIZE + 50, b"\x00\x01\x02"),
        ("magic", 0, b"\x00\x00\x00\x00"),
        ("length", 8, struct.pack("<I", 0xFFFFFFF0)),
        ("seq", 12, struct.pack("<Q", 3)),
    ],
)
def test_corruption_mid_segment_is_skipped_counted_logged_once(
    spool_dir: Path,
    caplog: pytest.LogCaptureFixture,
    how: str,
    offset_in_record: int,
    data: bytes,
) -> None:
    with Spool(spool_dir, consumers=["ship", "detect"]) as sp:
        fill(sp, 30)
    segment = spool_dir / "00000000000000000001.seg"
    damage(segment, 9 * FRAME + offset_in_record, data)  # record 10

    with (
        caplog.at_level(logging.WARNING, logger="socmon.spool"),
        Spool(spool_dir, consumers=["ship", "detect"]) as sp,
    ):
        assert sp.stats().last_seq == 30  # not mistaken for a torn tail
        expected = [*range(1, 10), *range(11, 31)]
        for consumer in ("ship", "detect"):
            records = read_all(sp, consumer)
            assert [r.seq for r in records] == expected
            assert all(r.payload == payload_of(r.seq) for r in records)
        stats = sp.stats()
        assert stats.corrupt_records == 1
        assert stats.corrupt_bytes == FRAME
        assert fill(sp, 1) == [31]

    warnings = [r.getMessage() for r in caplog.records if "spool corruption" in r.getMessage()]
    assert warnings == [
        f"spool corruption segment=00000000000000000001.seg offset={9 * FRAME} "
        f"skipped_bytes={FRAME} lost_records=1"
    ]


def test_valid_record_out_of_place_is_treated_as_damage(
    spool_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Stale bytes with a good CRC (an old record exposed by the filesystem) are not delivered."""
    with Spool(spool_dir, consumers=["ship"]) as sp:
        fill(sp, 12)
    segment = spool_dir / "00000000000000000001.seg"
    record_3 = segment.read_bytes()[2 * FRAME : 3 * FRAME]
    damage(segment, 9 * FRAME, record_3)  # record 10's place now holds a valid record 3
    with caplog.at_level(logging.WARNING, logger="socmon.spool"):
        with Spool(spool_dir, consumers=["ship"]) as sp:
            assert [r.seq for r in read_all(sp, "ship")] == [*range(1, 10), 11, 12]
            assert sp.stats().corrupt_records == 1
        assert any(f"offset={9 * FRAME}" in r.getMessage() for r in caplog.records)


def test_corruption_in_sealed_segments(spool_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with Spool(spool_dir, consumers=["ship"], segment_bytes=1000) as sp:
        fill(sp, 20)  # segments 1..7, 8..14, 15..20
    damage(spool_dir / "00000000000000000001.seg", 2 * FRAME + 40, b"\xff\xff")  # record 3
    damage(spool_dir / "00000000000000000008.seg", 6 * FRAME + 1, b"XX")  # record 14, the last
    with caplog.at_level(logging.WARNING, logger="socmon.spool"):
        with Spool(spool_dir, consumers=["ship"], segment_bytes=1000) as sp:
            reader = sp.reader("ship")
            records = read_all(sp, "ship")
            assert [r.seq for r in records] == [1, 2, *range(4, 14), *range(15, 21)]
            assert sp.stats().corrupt_records == 2
            reader.rewind()  # reading the damage again does not count or log it again
            assert len(read_all(sp, "ship")) == 18
            assert sp.stats().corrupt_records == 2
            reader.commit(20)
        assert sum("spool corruption" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.parametrize(
    ("action", "amount"),
    [
        ("truncate", 5),  # inside the last payload
        ("truncate", FRAME - 10),  # inside the last header
        ("zero-fill", 4096),  # a filesystem that extended the file with zeros
    ],
)
def test_torn_tail_is_truncated_and_appends_continue(
    spool_dir: Path, action: str, amount: int
) -> None:
    with Spool(spool_dir, consumers=["ship"]) as sp:
        fill(sp, 10)
    segment = spool_dir / "00000000000000000001.seg"
    if action == "truncate":
        os.truncate(segment, 10 * FRAME - amount)
        expected_last, torn = 9, FRAME - amount
    else:
        with segment.open("ab") as f:
            f.write(b"\x00" * amount)
        expected_last, torn = 10, amount

    with Spool(spool_dir, consumers=["ship"]) as sp:
        stats = sp.stats()
        assert stats.last_seq == expected_last
        assert stats.torn_tail_bytes == torn
        assert stats.corrupt_records == 0
        assert segment.stat().st_size == expected_last * FRAME
        assert fill(sp, 2) == [expected_last + 1, expected_last + 2]
        records = read_all(sp, "ship")
        assert [r.seq for r in records] == list(range(1, expected_last + 3))
        assert all(r.payload == payload_of(r.seq) for r in records)
        assert sp.stats().corrupt_records == 0


# ---------------------------------------------------------------- threads


def test_concurrent_appends_reads_commits(spool_dir: Path) -> None:
    total = 5000
    with Spool(
        spool_dir,
        consumers=["ship", "detect"],
        segment_bytes=8 * 1024,
        max_bytes=64 * 1024,
        fsync="interval",
        fsync_interval=0.01,
    ) as sp:
        got: dict[str, list[int]] = {"ship": [], "detect": []}
        errors: list[BaseException] = []

        def consume(name: str) -> None:
            reader = sp.reader(name)
            try:
                while len(got[name]) < total:
                    if not reader.wait(5.0):
                        raise AssertionError(f"{name} starved at {len(got[name])}")
                    batch = reader.read(max_records=37)
                    assert all(r.payload == payload_of(r.seq) for r in batch)
                    got[name].extend(r.seq for r in batch)
                    if batch:
                        reader.commit(batch[-1].seq)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=consume, args=(n,)) for n in got]
        for t in threads:
            t.start()
        appended: list[int] = []
        while len(appended) < total:
            appended.extend(sp.append([None] * 50, by_seq, timeout=10))
        for t in threads:
            t.join(30)
        assert not errors
        assert appended == list(range(1, total + 1))
        assert got["ship"] == appended
        assert got["detect"] == appended
        stats = sp.stats()
        assert stats.bytes <= 64 * 1024
        assert stats.segments == 1  # everything consumed: all sealed segments deleted


# ---------------------------------------------------------------- real failures (subprocesses)


def run_child(
    code: str, *args: str, stdout: int | IO[bytes] = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=stdout, stderr=subprocess.PIPE, env=env
    )


APPENDER = r"""
import sys
from pathlib import Path
from socmon.spool import Spool

spool = Spool(Path(sys.argv[1]), consumers=["ship", "detect"], fsync="always", segment_bytes=4096)
ship = spool.reader("ship")
rounds = 0
while True:
    seqs = spool.append([None] * 7, lambda item, seq: b"event-%d" % seq)
    sys.stdout.write("".join(f"{seq}\n" for seq in seqs))
    sys.stdout.flush()
    rounds += 1
    if rounds % 3 == 0:
        records = ship.read(max_records=10)
        if records:
            ship.commit(records[-1].seq)
"""


@pytest.mark.integration
def test_kill_9_loses_no_acknowledged_record(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    rng = random.Random(0x50C)
    acked: set[int] = set()
    for round_ in range(6):
        out_path = tmp_path / f"acks-{round_}.txt"
        with out_path.open("wb") as out:
            proc = run_child(APPENDER, str(spool_dir), stdout=out)
            deadline = time.monotonic() + 10
            while out_path.stat().st_size == 0 and time.monotonic() < deadline:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.15))
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        lines = out_path.read_bytes().split(b"\n")
        round_acks = [int(line) for line in lines[:-1]]  # the last may be half written
        assert round_acks, "the child acknowledged nothing"
        acked.update(round_acks)

        with Spool(spool_dir, consumers=["ship", "detect"]) as sp:
            records = read_all(sp, "detect")  # detect never commits: everything is retained
            seqs = [r.seq for r in records]
            assert seqs == list(range(1, len(seqs) + 1)), "seqs must be unique and contiguous"
            assert acked <= set(seqs), f"lost acknowledged seqs {sorted(acked - set(seqs))[:5]}"
            assert all(r.payload == b"event-%d" % r.seq for r in records)
            assert sp.reader("ship").committed <= seqs[-1]
            assert sp.stats().corrupt_records == 0


FILE_TOO_LARGE = r"""
import json, resource, signal, sys
from pathlib import Path
from socmon.errors import SpoolError
from socmon.spool import Spool

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
spool = Spool(Path(sys.argv[1]), consumers=["ship"], fsync="always")
out = {"first": spool.append([b"a" * 100] * 10, lambda item, seq: item)}
limit = spool.stats().bytes + 500
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
for name in ("error1", "error2"):
    try:
        spool.append([b"b" * 100] * 10, lambda item, seq: item)
    except SpoolError as e:
        out[name] = [type(e).__name__, str(e)]
spool.close()
print(json.dumps(out))
"""


@pytest.mark.integration
def test_io_error_raises_and_stops_the_spool(spool_dir: Path) -> None:
    proc = run_child(FILE_TOO_LARGE, str(spool_dir))
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()
    out = json.loads(stdout)
    assert out["first"] == list(range(1, 11))
    assert out["error1"][0] == "SpoolError"
    assert "write failed" in out["error1"][1]
    assert "stopped" in out["error2"][1]  # later appends refuse
    assert b"spool stopped stage=write" in stderr

    with Spool(spool_dir, consumers=["ship"]) as sp:  # the partial write was rolled back
        assert sp.stats().last_seq == 10
        assert sp.stats().torn_tail_bytes == 0
        assert fill(sp, 1) == [11]
