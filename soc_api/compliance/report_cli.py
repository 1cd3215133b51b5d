"""`socmon compliance report`: write a rendered compliance report to a file or to stdout.

The command (in socmon/cli.py) builds the `ComplianceReport` from the database, or from the
sample province with `--demo`, and hands it to `run_report`; `add_report_arguments` declares
the options the renderer needs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from soc_api.compliance.i18n import LANGS
from soc_api.compliance.model import ComplianceReport
from soc_api.compliance.report import FORMATS, ReportError, render


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """--format, --lang and --out of `socmon compliance report`."""
    parser.add_argument(
        "--format", choices=FORMATS, default="html", help="output format (default html)"
    )
    parser.add_argument(
        "--lang", choices=LANGS, default="vi", help="language of the page (default vi)"
    )
    parser.add_argument(
        "-o", "--out", type=Path, default=None, help="file to write (default: standard output)"
    )


def run_report(
    report: ComplianceReport,
    fmt: str,
    lang: str,
    out: Path | None,
    *,
    stdout: BinaryIO | None = None,
) -> int:
    """Render `report` and write it to `out` (atomically) or to stdout. 0 on success, 2 on error.

    A PDF is not written to a terminal: give `--out` or redirect the output.
    """
    stream = stdout if stdout is not None else sys.stdout.buffer
    if out is None and fmt == "pdf" and stream.isatty():
        _error("a PDF is not written to a terminal: use --out FILE or redirect the output")
        return 2
    try:
        data = render(report, fmt, lang)
    except ReportError as e:
        _error(str(e))
        return 2
    if out is None:
        stream.write(data)
        stream.flush()
        return 0
    try:
        write_atomic(out, data)
    except OSError as e:
        _error(f"cannot write {out}: {e}")
        return 2
    print(f"wrote {out} ({fmt}, {lang}, {len(data)} bytes)", file=sys.stderr)
    return 0


def write_atomic(path: Path, data: bytes) -> None:
    """`data` into `path` through a temporary file beside it: a reader sees old or new, whole."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _error(message: str) -> None:
    print(f"socmon: error: {message}", file=sys.stderr)
