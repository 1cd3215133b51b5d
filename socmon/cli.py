"""The `socmon` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence

from socmon import __version__
from socmon.config import Settings, get_settings
from socmon.errors import SocmonError
from socmon.logging import setup_logging


def _settings(args: argparse.Namespace) -> Settings:
    if getattr(args, "config", None):
        os.environ["SOCMON_CONFIG"] = args.config
        get_settings.cache_clear()
    return get_settings()


def _run_stack(args: argparse.Namespace, *, central: bool) -> int:
    from socmon.stack import Stack

    settings = _settings(args)
    setup_logging(settings.log_level)
    stack = Stack(settings, central=central, demo=bool(getattr(args, "demo", False)))
    try:
        stack.open()
        asyncio.run(stack.run())
    finally:
        stack.close()
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    return _run_stack(args, central=True)


def cmd_collect(args: argparse.Namespace) -> int:
    return _run_stack(args, central=False)


def cmd_api(args: argparse.Namespace) -> int:
    """The API alone in N processes, beside a running stack (its store and database)."""
    import uvicorn

    settings = _settings(args)
    setup_logging(settings.log_level)
    if settings.embedded_store:
        raise SocmonError("socmon api needs SOCMON_ES_URL: the store of the running stack")
    uvicorn.run(
        "soc_api.app:app_from_settings",
        factory=True,
        host=settings.api_host,
        port=args.port or settings.api_port,
        workers=args.workers or settings.api_workers,
        log_level="warning",
        lifespan="off",
    )
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    settings = _settings(args)
    print(json.dumps(settings.masked(), indent=2, ensure_ascii=False, default=str))
    return 0


def _database(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from socmon.db import Database

    settings = _settings(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_db_url)
    db.migrate()
    return db


def cmd_admin_create(args: argparse.Namespace) -> int:
    from soc_api import create_user, issue_token

    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    db = _database(args)
    units = [u.strip() for u in args.units.split(",") if u.strip()]
    with db.session() as session:
        user = create_user(session, args.name, args.role, units, actor="cli")
        if password is not None:
            from soc_api.access_login import set_password

            set_password(session, user, password, actor="cli")
        token = issue_token(session, user, actor="cli")
    print(f"created {args.role} user {args.name!r} (units: {', '.join(units)})", file=sys.stderr)
    print("API token (shown once, store it safely):", file=sys.stderr)
    print(token)
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from soc_api.audit import verify

    db = _database(args)
    with db.session() as session:
        ok, _n, message = verify(session)
    print(message)
    return 0 if ok else 1


def cmd_parse(args: argparse.Namespace) -> int:
    """Lines on stdin -> one ECS document per line as JSON (the sysadmin's check of a new source)."""
    import time

    import orjson

    from collectors import RawMessage, parse_message
    from collectors.registry import PARSERS

    if args.vendor != "auto" and args.vendor not in PARSERS:
        print(
            f"socmon: error: unknown vendor {args.vendor!r}; known: {', '.join([*sorted(PARSERS), 'auto'])}",
            file=sys.stderr,
        )
        return 2
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\r\n")
        if not line:
            continue
        doc = parse_message(
            RawMessage(source="stdin", data=line, received_at=time.time(), parser=args.vendor)
        )
        doc["event"].pop("ingested", None)
        out.write(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + b"\n")
    out.flush()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="socmon", description="Security monitoring for a provincial data centre"
    )
    parser.add_argument("--version", action="version", version=f"socmon {__version__}")
    parser.add_argument("--config", help="YAML configuration file (also SOCMON_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser(
        "up", help="run the whole stack on this machine (embedded store by default)"
    )
    up.add_argument(
        "--demo",
        action="store_true",
        help="load the sample province (inventory, 15 systems) and its compliance evidence",
    )
    up.set_defaults(func=cmd_up)

    api = sub.add_parser(
        "api", help="serve only the API, in several processes (beside a running stack)"
    )
    api.add_argument("--workers", type=int, default=0, help="processes (default api_workers)")
    api.add_argument("--port", type=int, default=0, help="port (default api_port)")
    api.set_defaults(func=cmd_api)

    collect = sub.add_parser(
        "collect",
        help="run the configured sources, shipping and detection without the API (collector hosts)",
    )
    collect.set_defaults(func=cmd_collect)

    parse = sub.add_parser(
        "parse", help="parse lines from stdin and print one ECS document per line (JSON)"
    )
    parse.add_argument(
        "--vendor", default="auto", help="parser name (fortigate, panos, asa, … or auto)"
    )
    parse.set_defaults(func=cmd_parse)

    config = sub.add_parser("config", help="configuration").add_subparsers(
        dest="config_command", required=True
    )
    config.add_parser(
        "show", help="print the effective configuration, secrets masked"
    ).set_defaults(func=cmd_config_show)

    admin = sub.add_parser("admin", help="users").add_subparsers(
        dest="admin_command", required=True
    )
    create = admin.add_parser("create", help="create a user and print its API token once")
    create.add_argument("name")
    create.add_argument("--role", default="admin")
    create.add_argument("--units", default="*", help="comma-separated owner units; * = all")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read a console password (12+ characters) from the first line of stdin",
    )
    create.set_defaults(func=cmd_admin_create)

    audit = sub.add_parser("audit", help="audit log").add_subparsers(
        dest="audit_command", required=True
    )
    audit.add_parser("verify", help="check the audit log's hash chain").set_defaults(
        func=cmd_audit_verify
    )
    from collectors.windows.cli import add_import_parser
    from detections.catalog import add_rules_parser
    from detections.hunt import add_hunt_parser
    from detections.match import add_match_parser
    from detections.regress import add_regress_parser
    from inventory.cli import add_inventory_parser
    from soc_api.compliance.cli import add_compliance_parser

    add_import_parser(sub)
    add_inventory_parser(sub)
    add_compliance_parser(sub)
    add_match_parser(sub)
    add_hunt_parser(sub)
    add_regress_parser(add_rules_parser(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SocmonError as e:
        print(f"socmon: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
