"""`socmon compliance report`: the manager report from the database, or of the demo province."""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soc_api.compliance.report_cli import add_report_arguments, run_report


def cmd_report(args: argparse.Namespace) -> int:
    from soc_api.compliance.catalog import load_catalogue
    from soc_api.compliance.evaluate import evaluate, report_from_db
    from socmon.cli import _database, _settings
    from socmon.config import load_settings
    from socmon.db import Database

    settings = _settings(args)
    catalogue = load_catalogue(settings.compliance_catalogue)
    if not args.demo:
        db = _database(args)
        try:
            with db.session() as session:
                if args.evaluate:
                    evaluate(session, None, catalogue, settings=settings, now=datetime.now(UTC))
                report = report_from_db(session, catalogue)
        finally:
            db.dispose()
        return run_report(report, args.format, args.lang, args.out)
    from lab.demo import load_demo

    with tempfile.TemporaryDirectory(prefix="socmon-demo-") as tmp:
        demo = load_settings(
            data_dir=Path(tmp), namespace="demo", compliance_catalogue=settings.compliance_catalogue
        )
        db = Database(demo.effective_db_url)
        try:
            db.migrate()
            with db.session() as session:
                load_demo(session)
                report = evaluate(session, None, catalogue, settings=demo, now=datetime.now(UTC))
        finally:
            db.dispose()
    return run_report(report, args.format, args.lang, args.out)


def add_compliance_parser(sub: Any) -> None:
    """`socmon compliance ...` on the main parser's subcommands."""
    compliance = sub.add_parser(
        "compliance", help="compliance of information systems"
    ).add_subparsers(dest="compliance_command", required=True)
    rep = compliance.add_parser(
        "report",
        help="manager report: levels, dossiers, four layers, controls (html, pdf or json)",
    )
    add_report_arguments(rep)
    rep.add_argument(
        "--demo",
        action="store_true",
        help="on the sample province (lab/sample_province) in a throwaway database",
    )
    rep.add_argument(
        "--evaluate",
        action="store_true",
        help="re-evaluate every system first (without the event store: live log checks unknown)",
    )
    rep.set_defaults(func=cmd_report)
