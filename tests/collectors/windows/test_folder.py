"""The `windows_folder` collector: stable files only, progress across restarts, `after`."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import evtx
import orjson
import pytest

from collectors.base import CollectorContext, build_collectors
from collectors.health import SourceHealth
from collectors.pipeline import Pipeline
from collectors.windows.folder import STATE_FILE, FolderWatcher, WindowsFolderOptions
from collectors.windows.importer import Interrupted
from socmon.corpus import corpus_dir
from socmon.spool import Spool

SPRAY = "evtx/DeepBlueCLI/password-spray.evtx"  # 295 records
ROTTEN_POTATO = "evtx/EVTX-to-MITRE-Attack/TA0004-Privilege Escalation/T1134-Access Token Manipulation/ID4688,4624-RottenPotatoNG.evtx"


@pytest.fixture(scope="module")
def corpus() -> Path:
    base = corpus_dir()
    if base is None:
        pytest.skip("test corpus not found (set SOCMON_CORPUS or place shared/corpus)")
    return base


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool", consumers=["ship"]) as s:
        yield s


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def json_lines(corpus: Path, rel: str) -> list[bytes]:
    """One evtx JSON line per record of a real file (as `evtx_dump -o jsonl` writes them)."""
    out: list[bytes] = []
    for rec in evtx.PyEvtxParser(str(corpus / rel), indent=False).records_json():
        assert rec is not None
        out.append(rec["data"].encode() + b"\n")
    return out


def watcher(
    folder: Path,
    spool: Spool,
    state: Path,
    clock: Clock,
    *,
    health: SourceHealth | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    **options: Any,
) -> FolderWatcher:
    opts = WindowsFolderOptions.model_validate(
        {"type": "windows_folder", "path": folder, **options}
    )
    health = health or SourceHealth()
    return FolderWatcher(
        opts, Pipeline(spool, health), state, health, clock=clock, should_stop=should_stop
    )


def read_ids(spool: Spool) -> list[str]:
    reader = spool.reader("ship")
    ids: list[str] = []
    while batch := reader.read(5000):
        ids.extend(orjson.loads(r.payload)["_id"] for r in batch)
        reader.commit(batch[-1].seq)
    return ids


def test_growing_json_lines_file_waits_until_stable_and_resumes(
    corpus: Path, tmp_path: Path, spool: Spool
) -> None:
    folder, state = tmp_path / "drop", tmp_path / "state"
    folder.mkdir()
    lines = json_lines(corpus, SPRAY)
    assert len(lines) == 295
    target = folder / "security.jsonl"
    clock = Clock()
    w = watcher(folder, spool, state, clock, batch=64)

    target.write_bytes(b"".join(lines[:100]) + lines[100][:50])  # a line half written
    assert w.scan() == 0  # first sight
    clock.now = 1.0
    with open(target, "ab") as f:
        f.write(lines[100][50:] + b"".join(lines[101:200]) + lines[200][:10])
    assert w.scan() == 0  # still growing
    clock.now = 2.5
    assert w.scan() == 0  # unchanged for 1.5 s only
    clock.now = 3.5
    assert w.scan() == 200  # stable: every complete line, not the unfinished one
    clock.now = 10.0
    assert w.scan() == 0  # nothing changed
    with open(target, "ab") as f:
        f.write(lines[200][10:] + b"".join(lines[201:]))
    assert w.scan() == 0
    clock.now = 12.5
    assert w.scan() == 95  # read on from the saved offset
    ids = read_ids(spool)
    assert len(ids) == len(set(ids)) == 295

    # A restart resumes from the saved progress: nothing is read again.
    clock2 = Clock()
    w2 = watcher(folder, spool, state, clock2, batch=64)
    assert w2.scan() == 0
    clock2.now = 5.0
    assert w2.scan() == 0
    assert read_ids(spool) == []
    assert target.exists()  # after: keep


def test_replay_after_lost_progress_gives_the_same_ids(
    corpus: Path, tmp_path: Path, spool: Spool
) -> None:
    folder, state = tmp_path / "drop", tmp_path / "state"
    folder.mkdir()
    (folder / "spray.json").write_bytes(b"".join(json_lines(corpus, SPRAY)))
    batches = 0

    def stop_after_two() -> bool:
        return batches >= 2

    w = watcher(
        folder, spool, state, Clock(), settle_seconds=0, batch=50, should_stop=stop_after_two
    )
    original = w._commit

    def counting_commit() -> None:
        nonlocal batches
        original()
        batches += 1

    w._commit = counting_commit  # type: ignore[method-assign]
    with pytest.raises(Interrupted):  # a shutdown in the middle of the file
        w.scan()
    first = read_ids(spool)
    assert len(first) == 100
    saved = orjson.loads((state / STATE_FILE).read_bytes())["files"]
    assert [e["offset"] for e in saved.values()] == [
        sum(len(line) for line in json_lines(corpus, SPRAY)[:100])
    ]

    # Restart: resumes after the last checkpoint, so nothing twice.
    assert watcher(folder, spool, state, Clock(), settle_seconds=0, batch=50).scan() == 195
    rest = read_ids(spool)
    assert len(set(first + rest)) == 295

    # Progress lost (a crash between spooling and saving): read again, same ids.
    (state / STATE_FILE).unlink()
    assert watcher(folder, spool, state, Clock(), settle_seconds=0, batch=50).scan() == 295
    assert read_ids(spool) == first + rest


def test_evtx_and_json_moved_when_done_and_failures_kept_apart(
    corpus: Path, tmp_path: Path, spool: Spool
) -> None:
    folder, state = tmp_path / "drop", tmp_path / "state"
    folder.mkdir()
    source = corpus / ROTTEN_POTATO
    shutil.copyfile(source, folder / "potato.evtx")
    (folder / "forwarded.json").write_bytes(b"".join(json_lines(corpus, SPRAY)[:7]))
    (folder / "broken.evtx").write_text("not an event log\n" * 50)
    (folder / "readme.txt").write_text("ignored")
    (folder / ".partial.json").write_text("{}\n")  # hidden: ignored
    clock = Clock()
    health = SourceHealth()
    w = watcher(folder, spool, state, clock, health=health, after="move")
    assert w.scan() == 0
    clock.now = 3.0
    potato_records = sum(1 for _ in evtx.PyEvtxParser(str(source)).records_json())
    assert w.scan() == potato_records + 7
    assert sorted(p.name for p in (folder / "done").iterdir()) == ["forwarded.json", "potato.evtx"]
    assert [p.name for p in (folder / "failed").iterdir()] == ["broken.evtx"]
    assert sorted(p.name for p in folder.iterdir()) == [
        ".partial.json",
        "done",
        "failed",
        "readme.txt",
    ]
    ids = read_ids(spool)
    assert len(set(ids)) == potato_records + 7
    rows = {r["source"]: r for r in health.snapshot()}
    assert list(rows) == [f"windows-folder://{folder}"]  # one source per folder
    assert rows[f"windows-folder://{folder}"]["events"] == potato_records + 7
    assert orjson.loads((state / STATE_FILE).read_bytes())["files"] == {}  # files are gone

    # The same export dropped again (after a restart) is the same events: same ids.
    shutil.copyfile(source, folder / "potato.evtx")
    w2 = watcher(folder, spool, state, Clock(), settle_seconds=0, after="move")
    assert w2.scan() == potato_records
    assert read_ids(spool) == ids[7:]  # files are read in name order: forwarded.json first
    assert sorted(p.name for p in (folder / "done").iterdir()) == [
        "forwarded.json",
        "potato.1.evtx",
        "potato.evtx",
    ]


def test_kept_evtx_is_read_once_and_damage_is_counted(
    corpus: Path, tmp_path: Path, spool: Spool
) -> None:
    folder, state = tmp_path / "drop", tmp_path / "state"
    folder.mkdir()
    damaged = folder / "spray.evtx"
    shutil.copyfile(corpus / SPRAY, damaged)
    with open(damaged, "r+b") as f:
        f.seek(4096 + 65536 + 20000)
        f.write(b"\xff" * 400)
    health = SourceHealth()
    w = watcher(folder, spool, state, Clock(), health=health, settle_seconds=0)
    first = w.scan()
    assert 0 < first < 295
    assert w.scan() == 0
    row = health.snapshot()[0]
    assert row["drops"] >= 1 and row["events"] == first
    assert watcher(folder, spool, state, Clock(), settle_seconds=0).scan() == 0  # restart
    assert len(read_ids(spool)) == first
    assert damaged.exists()


def test_missing_folder_is_waited_for(tmp_path: Path, spool: Spool) -> None:
    folder = tmp_path / "later"
    w = watcher(folder, spool, tmp_path / "state", Clock(), settle_seconds=0)
    assert w.scan() == 0
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"EventID": 4624, "Channel": "Security"}\n')
    assert w.scan() == 1


def test_collector_runs_from_the_configuration(tmp_path: Path, spool: Spool) -> None:
    """The entry point, the options and the asyncio loop around the watcher."""
    folder = tmp_path / "drop"
    folder.mkdir()
    (collector,) = build_collectors(
        [
            {
                "type": "windows_folder",
                "path": str(folder),
                "scan_interval": 0.05,
                "settle_seconds": 0.1,
                "after": "delete",
                "timezone": "Asia/Ho_Chi_Minh",
            }
        ]
    )
    assert collector.resources()[0].address == str(folder)
    line = {"EventID": 4625, "Channel": "Security", "EventTime": "2026-01-02 07:00:00"}

    async def main() -> list[dict[str, Any]]:
        ctx = CollectorContext(
            out=Pipeline(spool),
            shutdown=asyncio.Event(),
            state_dir=tmp_path / "state",
            health=SourceHealth(),
        )
        task = asyncio.create_task(collector.run(ctx))
        await asyncio.wait_for(ctx.ready.wait(), 5)
        (folder / "nxlog.jsonl").write_bytes(orjson.dumps(line) + b"\n")
        reader = spool.reader("ship")
        docs: list[dict[str, Any]] = []
        for _ in range(200):
            docs += [orjson.loads(r.payload) for r in reader.read()]
            if docs and not (folder / "nxlog.jsonl").exists():
                break
            await asyncio.sleep(0.05)
        ctx.shutdown.set()
        await asyncio.wait_for(task, 5)
        return docs

    docs = asyncio.run(main())
    assert len(docs) == 1
    assert docs[0]["@timestamp"] == "2026-01-02T00:00:00.000000Z"  # EventTime in UTC+7
    assert docs[0]["event"]["code"] == "4625"
    assert docs[0]["log"]["file"]["path"] == str(folder / "nxlog.jsonl")
    assert not (folder / "nxlog.jsonl").exists()  # after: delete
