"""`socmon inventory import PATH... [--dry-run]` and `socmon inventory export --format yaml|csv
--out PATH`.

Import prints each error as `file:row: field: message` on stderr and exits 1 with nothing
imported; otherwise it prints the created / updated / unchanged counts per entity (a dry run
prints what would change and keeps nothing).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from inventory.io import export, import_paths
from socmon.config import Settings
from socmon.db import Database


def _database(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_db_url)
    db.migrate()
    return db


def run_import(settings: Settings, paths: Sequence[Path], dry_run: bool) -> int:
    missing = [p for p in paths if not p.exists()]
    for p in missing:
        print(f"{p}:0: -: no such file or directory", file=sys.stderr)
    if missing:
        return 1
    db = _database(settings)
    try:
        with db.session() as session:
            result = import_paths(session, paths, dry_run=dry_run, actor="cli")
    finally:
        db.dispose()
    for e in result.errors:
        print(e, file=sys.stderr)
    if result.errors:
        print(f"{len(result.errors)} error(s): nothing imported", file=sys.stderr)
        return 1
    verb = "would change (dry run, nothing kept)" if dry_run else "imported"
    print(f"inventory {verb}:")
    for entity, c in result.counts.items():
        print(
            f"  {entity}: {c['created']} created, {c['updated']} updated, "
            f"{c['unchanged']} unchanged"
        )
    return 0


def run_export(settings: Settings, fmt: str, out: Path) -> int:
    db = _database(settings)
    try:
        with db.session() as session:
            written = export(session, fmt, out)
    finally:
        db.dispose()
    for p in written:
        print(p)
    return 0


def _settings_of(args: argparse.Namespace) -> Settings:
    from socmon.cli import _settings

    return _settings(args)


def cmd_import(args: argparse.Namespace) -> int:
    return run_import(_settings_of(args), [Path(p) for p in args.paths], args.dry_run)


def cmd_export(args: argparse.Namespace) -> int:
    return run_export(_settings_of(args), args.format, Path(args.out))


def add_inventory_parser(sub: Any) -> None:
    """`socmon inventory ...` on the main parser's subcommands."""
    inv = sub.add_parser("inventory", help="inventory import and export").add_subparsers(
        dest="inventory_command", required=True
    )
    imp = inv.add_parser(
        "import", help="import YAML files, CSV directories or .zip archives (all or nothing)"
    )
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument(
        "--dry-run", action="store_true", help="validate and show what would change, keep nothing"
    )
    imp.set_defaults(func=cmd_import)
    exp = inv.add_parser("export", help="export the inventory (what import reads)")
    exp.add_argument("--format", choices=("yaml", "csv"), default="yaml")
    exp.add_argument(
        "--out", required=True, help="YAML file, or for csv a directory or a .zip file"
    )
    exp.set_defaults(func=cmd_export)
