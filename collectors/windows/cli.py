"""`socmon import evtx PATH... [--json-lines]`: import Windows event exports into the store.

The command reads the files into its own spool (`<data_dir>/spool/import`, one import at a
time: the spool is locked by the running process) and ships from it to the store
(`SOCMON_ES_URL`) while it reads, with the same shipper as `socmon up`/`socmon collect`.
Delivery: exactly-once in the store - event ids are deterministic (file fingerprint and
record number), so importing a file twice, or again after an interruption, adds nothing
twice. What an interrupted import had spooled but not shipped is shipped by the next
`socmon import`.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from socmon.config import Settings, get_settings
from socmon.errors import SpoolError, StoreError
from socmon.logging import kv, setup_logging

if TYPE_CHECKING:  # the command's heavy imports happen when it runs, not at `socmon --help`
    from collectors.ship import Shipper
    from collectors.windows.importer import ImportProgress, ImportReport
    from socmon.spool import Spool
    from socmon.store import Store

__all__ = ["add_import_parser", "cmd_import_evtx"]

log = logging.getLogger("socmon.collectors.windows.cli")

_PLAIN_INTERVAL = 5.0  # seconds between progress lines when stderr is not a terminal
_TTY_INTERVAL = 0.2


def add_import_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `import evtx PATH... [--json-lines]` (reusing an existing `import` command)."""
    imports = subparsers.choices.get("import")
    if imports is None:
        imports = subparsers.add_parser("import", help="import logs from files into the store")
    kinds = next((a for a in imports._actions if isinstance(a, argparse._SubParsersAction)), None)
    if kinds is None:
        kinds = imports.add_subparsers(dest="import_command", required=True)
    evtx = kinds.add_parser(
        "evtx",
        help="import Windows .evtx files (and folders of them, recursively)",
        description=(
            "Read Windows event logs (.evtx files, folders searched recursively) and ship "
            "them to the store (SOCMON_ES_URL). Importing a file again adds nothing twice."
        ),
    )
    evtx.add_argument("paths", nargs="+", type=Path, metavar="PATH", help=".evtx file or folder")
    evtx.add_argument(
        "--json-lines",
        action="store_true",
        help=(
            "also read *.json, *.jsonl and *.ndjson files (NXLog, Winlogbeat or evtx JSON "
            "exports, one event per line or concatenated objects)"
        ),
    )
    evtx.set_defaults(func=cmd_import_evtx)


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "config", None):
        os.environ["SOCMON_CONFIG"] = args.config
        get_settings.cache_clear()
    return get_settings()


class _Progress:
    """One progress line on stderr: rewritten with `\\r` on a terminal, every 5 s otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = _TTY_INTERVAL if self.tty else _PLAIN_INTERVAL
        self.last = 0.0
        self.shipped = 0
        self.note = ""
        self.state: ImportProgress | None = None
        self._width = 0

    def update(self, state: ImportProgress) -> None:
        self.state = state
        self.show()

    def show(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        s = self.state
        if s is None:
            return
        rate = s.records / s.elapsed if s.elapsed > 0 else 0.0
        line = (
            f"files {s.files_done}/{s.files_total}  records {s.records:,}  "
            f"{rate:,.0f} records/s  shipped {self.shipped:,}"
        )
        if s.bad_records:
            line += f"  unreadable {s.bad_records:,}"
        if self.note:
            line += f"  ({self.note})"
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        self.show(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class _ShipLoop(threading.Thread):
    """Ships the import spool while the import runs; stops once drained after `finish()`."""

    def __init__(self, shipper: Shipper, progress: _Progress) -> None:
        super().__init__(name="socmon-import-ship", daemon=True)
        self.shipper = shipper
        self.progress = progress
        self.finished = threading.Event()
        self.abort = threading.Event()
        self.error: BaseException | None = None

    def finish(self) -> None:
        self.finished.set()

    def depth(self) -> int:
        return self.shipper.spool.stats().consumers["ship"].depth

    def run(self) -> None:
        delay = 0.2
        while not self.abort.is_set():
            try:
                n = self.shipper.once()
            except StoreError as e:
                if not self.progress.note:
                    log.warning("store unavailable, retrying %s", kv(error=e))
                self.progress.note = "store unavailable, retrying"
                self.abort.wait(delay * (0.5 + random.random()))
                delay = min(delay * 2, 10.0)
                continue
            except BaseException as e:
                self.error = e
                return
            if self.progress.note:
                log.info("store available again")
                self.progress.note = ""
            delay = 0.2
            self.progress.shipped += n
            if n == 0:
                if self.finished.is_set() and self.depth() == 0:
                    return
                self.shipper.reader.wait(0.2)


def _print_report(report: ImportReport, shipped: int, out: TextIO) -> None:
    rate = report.records / report.seconds if report.seconds > 0 else 0.0
    out.write(
        f"imported {report.records:,} records from {report.files} file(s) in "
        f"{report.seconds:.1f} s ({rate:,.0f} records/s); shipped {shipped:,} to the store\n"
    )
    if report.bad_records:
        out.write(f"{report.bad_records:,} record(s) could not be read (see below)\n")
    for path, reason in report.failures:
        out.write(f"  {path}: {reason}\n")


def cmd_import_evtx(args: argparse.Namespace) -> int:
    """Import the given files and folders; 0 when everything was read, 1 otherwise."""
    from socmon.spool import Spool
    from socmon.store import Store

    settings = _settings(args)
    setup_logging(settings.log_level)
    if not settings.es_url:
        raise StoreError(
            "socmon import ships to the store and needs its address: set SOCMON_ES_URL "
            "(for the embedded store of a running `socmon up`, its URL)"
        )
    store = Store.connect(settings)
    try:
        store.setup()
        spool_dir = settings.data_dir / "spool" / "import"
        try:
            spool = Spool(
                spool_dir,
                consumers=["ship"],
                max_bytes=settings.spool_max_bytes,
                fsync=settings.spool_fsync,
                fsync_interval=settings.spool_fsync_interval,
            )
        except SpoolError as e:
            if "in use" in e.msg:
                raise SpoolError(
                    f"another socmon import is running (its spool {spool_dir} is locked); "
                    "wait for it to finish"
                ) from e
            raise
        try:
            return _run_import(args, settings, store, spool)
        finally:
            spool.close()
    finally:
        store.close()


def _run_import(args: argparse.Namespace, settings: Settings, store: Store, spool: Spool) -> int:
    from collectors.pipeline import Pipeline
    from collectors.ship import Shipper, events_target
    from collectors.windows.importer import Interrupted, import_evtx

    progress = _Progress(sys.stderr)
    shipper = Shipper(spool, store, events_target(store), settings.data_dir / "deadletter")
    leftover = spool.stats().consumers["ship"].depth
    if leftover:
        print(f"shipping {leftover:,} records left by an earlier import", file=sys.stderr)
    ship = _ShipLoop(shipper, progress)
    ship.start()
    try:
        report = import_evtx(
            args.paths,
            Pipeline(spool),
            progress=progress.update,
            json_lines=args.json_lines,
            should_stop=lambda: ship.error is not None,
        )
        ship.finish()
        while ship.is_alive():
            ship.join(0.2)
            progress.show()
    except Interrupted:  # the shipper stopped with an error: nothing drains the spool
        progress.end()
        assert ship.error is not None
        raise ship.error from None
    except KeyboardInterrupt:
        ship.abort.set()
        ship.join(30)
        progress.end()
        left = spool.stats().consumers["ship"].depth
        print(
            f"interrupted: {left:,} spooled records not shipped yet; the next socmon import "
            "ships them (importing the same files again adds nothing twice)",
            file=sys.stderr,
        )
        raise
    progress.end()
    if ship.error is not None:
        raise ship.error
    _print_report(report, progress.shipped, sys.stdout)
    return 0 if report.ok else 1
