"""`import_evtx` and the JSON record reader, with real EVTX files and a real spool."""

from __future__ import annotations

import argparse
import io
import logging
import shutil
from pathlib import Path
from typing import Any

import evtx
import orjson
import pytest

from collectors.pipeline import Pipeline
from collectors.ship import Shipper, events_target
from collectors.windows.cli import add_import_parser
from collectors.windows.importer import (
    ImportProgress,
    file_fingerprint,
    import_evtx,
    iter_json_records,
)
from socmon.config import get_settings
from socmon.corpus import corpus_dir
from socmon.embedded import EmbeddedStore
from socmon.errors import StoreError
from socmon.spool import Spool
from socmon.store import Store

PERSISTENCE = "evtx/EVTX-to-MITRE-Attack/TA0003-Persistence"  # 82 files, small
SPRAY = "evtx/DeepBlueCLI/password-spray.evtx"  # 295 records in 4 chunks
SERVICE = "evtx/EVTX-to-MITRE-Attack/TA0003-Persistence/T1543.003-Create or Modify System Process-Windows Service/ID7045-Random service installation.evtx"
TWIN = "sigma/regression_data/rules-emerging-threats/2025/Malware/Shai-Hulud/proc_creation_win_mal_shai_hulud_malicious_node_bun_execution/5299fadf-f228-4526-8274-251db1960be9.json"


@pytest.fixture(scope="module")
def corpus() -> Path:
    base = corpus_dir()
    if base is None:
        pytest.skip("test corpus not found (set SOCMON_CORPUS or place shared/corpus)")
    return base


def evtx_count(paths: list[Path]) -> int:
    """Records the evtx package reads (errors skipped), counted independently of the importer."""
    total = 0
    for path in paths:
        it = evtx.PyEvtxParser(str(path)).records_json()
        while True:
            try:
                next(it)
            except StopIteration:
                break
            except RuntimeError:
                continue
            total += 1
    return total


def spooled(spool: Spool, consumer: str = "ship") -> list[dict[str, Any]]:
    reader = spool.reader(consumer)
    out: list[dict[str, Any]] = []
    while batch := reader.read(5000):
        out.extend(orjson.loads(r.payload) for r in batch)
        reader.commit(batch[-1].seq)
    return out


def test_import_twice_gives_the_same_ids(corpus: Path, tmp_path: Path) -> None:
    folder = corpus / PERSISTENCE
    files = sorted(folder.rglob("*.evtx"))
    expected = evtx_count(files)
    seen: list[ImportProgress] = []
    with Spool(tmp_path / "spool", consumers=["ship"]) as spool:
        pipeline = Pipeline(spool)
        first = import_evtx([folder], pipeline, progress=seen.append)
        docs = spooled(spool)
        second = import_evtx([folder], pipeline)
        again = spooled(spool)
    assert first.records == second.records == expected == len(docs) == len(again)
    assert first.files == len(files) == 82 and first.ok and not first.failures
    ids = [d["_id"] for d in docs]
    assert len(set(ids)) == expected  # every record is its own event
    assert ids == [d["_id"] for d in again]  # a re-import is recognised, record by record
    assert not [d for d in docs if "_parse_failure" in d.get("tags", [])]
    path = files[0]
    doc = next(d for d in docs if d["log"]["file"]["path"] == str(path))
    assert doc["event"]["dataset"].startswith("windows.")
    assert seen[-1].files_done == seen[-1].files_total == 82
    assert seen[-1].records == expected and seen[-1].current is None
    assert [p.records for p in seen] == sorted(p.records for p in seen)


def test_corrupt_and_foreign_files_are_reported_and_the_rest_imported(
    corpus: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "exports"
    (folder / "sub").mkdir(parents=True)
    good = folder / "sub" / "service.evtx"
    shutil.copyfile(corpus / SERVICE, good)
    damaged = folder / "spray.evtx"
    shutil.copyfile(corpus / SPRAY, damaged)
    with open(damaged, "r+b") as f:  # inside the second chunk's records
        f.seek(4096 + 65536 + 20000)
        f.write(b"\xff" * 400)
    foreign = folder / "notes.evtx"
    foreign.write_text("this is not an event log\n" * 100)
    (folder / "empty.evtx").write_bytes(b"")
    (folder / "ignored.json").write_text("{}\n")  # not read without json_lines
    missing = tmp_path / "nowhere.evtx"

    readable = evtx_count([good, damaged])
    assert readable < 2 + 295  # the damage costs records
    with Spool(tmp_path / "spool", consumers=["ship"]) as spool:
        report = import_evtx([folder, missing], Pipeline(spool))
        docs = spooled(spool)
    assert report.files == 2
    assert report.records == readable == len(docs)
    assert report.bad_records >= 1
    reasons = dict[str, list[str]]()
    for path, reason in report.failures:
        reasons.setdefault(path, []).append(reason)
    assert reasons[str(missing)] == ["no such file or directory"]
    assert reasons[str(foreign)][0].startswith("not a readable EVTX file")
    assert reasons[str(folder / "empty.evtx")][0].startswith("not a readable EVTX file")
    assert any(r.startswith("record 134:") for r in reasons[str(damaged)])
    assert str(good) not in reasons
    assert not report.ok
    sources = {d["log"]["file"]["path"] for d in docs}
    assert sources == {str(good), str(damaged)}


def test_json_lines_exports(corpus: Path, tmp_path: Path) -> None:
    """Pretty-printed concatenated objects (the SigmaHQ samples) and one event per line."""
    twin = tmp_path / "twin.json"
    shutil.copyfile(corpus / TWIN, twin)
    lines = tmp_path / "service.jsonl"
    with open(lines, "wb") as f:
        for rec in evtx.PyEvtxParser(str(corpus / SERVICE), indent=False).records_json():
            assert rec is not None
            f.write(rec["data"].encode() + b"\r\n")
    with Spool(tmp_path / "spool", consumers=["ship"]) as spool:
        without = import_evtx([tmp_path], Pipeline(spool))
        report = import_evtx([tmp_path], Pipeline(spool), json_lines=True)
        docs = spooled(spool)
    assert without.files == 0 and without.records == 0
    assert report.files == 2 and report.records == 6 + 2 and report.ok
    assert not [d for d in docs if "_parse_failure" in d.get("tags", [])]
    codes = sorted(d["event"]["code"] for d in docs)
    assert codes == ["1"] * 6 + ["104", "7045"]


# --------------------------------------------------------------------------- the JSON reader


def read_all(data: bytes, start: int = 0, *, final: bool = True) -> list[tuple[int, int, bytes]]:
    return [
        (r.start, r.end, r.data) for r in iter_json_records(io.BytesIO(data), start, final=final)
    ]


def test_json_records_lines_and_offsets() -> None:
    data = b'\xef\xbb\xbf{"a": 1}\n\n  \n{"b": 2}\r\n{"c": 3}'
    assert read_all(data) == [
        (0, 12, b'{"a": 1}'),
        (16, 26, b'{"b": 2}'),
        (26, 34, b'{"c": 3}'),
    ]
    # An unfinished last line waits for the writer unless it parses or the file is final.
    partial = b'{"a": 1}\n{"b": '
    assert read_all(partial, final=False) == [(0, 9, b'{"a": 1}')]
    assert read_all(partial, final=True)[-1] == (9, 15, b'{"b": ')
    assert read_all(b'{"a": 1}\n{"b": 2}', final=False)[-1] == (9, 17, b'{"b": 2}')
    # Resuming at an offset reads exactly what follows.
    assert read_all(data, 16) == read_all(data)[1:]


def test_json_records_multi_line_and_broken() -> None:
    pretty = b'{\n  "a": {\n    "b": 1\n  }\n}\n{\n  "c": "}"\n}\n'
    assert read_all(pretty) == [
        (0, 28, b'{\n  "a": {\n    "b": 1\n  }\n}'),
        (28, len(pretty), b'{\n  "c": "}"\n}'),
    ]
    assert read_all(pretty[:20], final=False) == []  # an unfinished object waits
    # A truncated line does not swallow the lines after it; garbage is a record of its own.
    broken = b'{"a": 1, "b\n{"c": 3}\nnot json\n[1, 2]\n'
    assert [r[2] for r in read_all(broken)] == [b'{"a": 1, "b', b'{"c": 3}', b"not json", b"[1, 2]"]


def test_fingerprint_depends_on_head_and_size(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.write_bytes(b"x" * 70_000)
    before = file_fingerprint(a)
    with open(a, "r+b") as f:
        f.seek(69_000)
        f.write(b"y")  # beyond the first 64 KiB, same size
    assert file_fingerprint(a) == before
    with open(a, "ab") as f:
        f.write(b"z")
    assert file_fingerprint(a) != before


# --------------------------------------------------------------------------- with the store


@pytest.mark.integration
def test_import_and_ship_store_each_event_once(corpus: Path, tmp_path: Path, store: Store) -> None:
    folder = corpus / "evtx/EVTX-to-MITRE-Attack/TA0004-Privilege Escalation"  # 161 records
    pattern = f"logs-windows.*-{store.namespace}"
    with Spool(tmp_path / "spool", consumers=["ship"]) as spool:
        pipeline = Pipeline(spool)
        shipper = Shipper(spool, store, events_target(store), tmp_path / "dead")
        report = import_evtx([folder], pipeline)
        while shipper.once():
            pass
        store.refresh(pattern)
        assert store.count(pattern) == report.records == evtx_count(sorted(folder.rglob("*.evtx")))
        again = import_evtx([folder], pipeline)
        while shipper.once():
            pass
        store.refresh(pattern)
        assert again.records == report.records
        assert store.count(pattern) == report.records  # the re-import added nothing
        assert not (tmp_path / "dead").exists()
        query = {"term": {"winlog.event_data.NewProcessName": "C:\\TOOLS\\MSFRottenPotato.exe"}}
        hits = store.search(pattern, size=5, query=query)["hits"]["hits"]
        assert [h["_source"]["event"]["code"] for h in hits] == ["4688"]
        assert hits[0]["_index"].startswith(f"logs-windows.security-{store.namespace}")


@pytest.mark.integration
def test_cli_imports_and_ships(
    corpus: Path,
    tmp_path: Path,
    osmem: EmbeddedStore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()  # the command sets up logging; leave none behind
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    parser = argparse.ArgumentParser(prog="socmon")
    commands = parser.add_subparsers(dest="command", required=True)
    add_import_parser(commands)
    folder = corpus / "evtx/EVTX-to-MITRE-Attack/TA0001-Initial access"
    args = parser.parse_args(["import", "evtx", str(folder), str(tmp_path / "nowhere.evtx")])
    with pytest.raises(StoreError, match="SOCMON_ES_URL"):
        args.func(args)
    monkeypatch.setenv("SOCMON_ES_URL", osmem.url)
    monkeypatch.setenv("SOCMON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SOCMON_NAMESPACE", "cliimport")
    get_settings.cache_clear()
    assert args.func(args) == 1  # the missing path is reported
    out = capsys.readouterr()
    assert "imported 15 records from 3 file(s)" in out.out and "shipped 15" in out.out
    assert "nowhere.evtx: no such file or directory" in out.out
    assert "files 3/3  records 15" in out.err
    args = parser.parse_args(["import", "evtx", str(folder)])
    assert args.func(args) == 0
    store = Store.connect(get_settings())
    try:
        store.refresh("logs-*-cliimport")
        assert store.count("logs-*-cliimport") == 15  # the second import added nothing
    finally:
        store.close()
