"""Exports of the incident and alert lists: CSV or JSON lines, streamed, capped, audited.

The routes live beside their lists (`GET /api/incidents/export`, `GET /api/alerts/export`,
declared before the detail routes so that `export` is not read as an id) and take the list's
filters and scope; this module holds what they share. Before the first byte is sent the
route counts the matching rows up to the cap, records the export in the audit log (who, the
filters as given, format, rows, truncated) and commits; then the rows are streamed from a
session (or store searches) of their own. `X-Socmon-Truncated: true` says that more rows
matched than the export holds (`limit`, at most `EXPORT_MAX_ROWS`); `X-Socmon-Export-Rows`
gives how many it holds.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from soc_api import audit
from soc_api.models import User

EXPORT_MAX_ROWS = 100_000
TRUNCATED_HEADER = "X-Socmon-Truncated"
ROWS_HEADER = "X-Socmon-Export-Rows"
CHUNK_ROWS = 500  # rows encoded per chunk sent
ExportFormat = Literal["csv", "json"]
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv", "json": "application/x-ndjson"}
# Cells a spreadsheet would read as a formula (CSV injection): prefixed with a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def export_responses(item_schema: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of an export route in the OpenAPI: both media types and the headers."""
    return {
        200: {
            "description": "The rows: CSV with a header line, or one JSON object per line",
            "content": {
                MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
                MEDIA_TYPES["json"]: {"schema": {"$ref": f"#/components/schemas/{item_schema}"}},
            },
            "headers": {
                TRUNCATED_HEADER: {
                    "description": "true: more rows matched than the export holds (limit)",
                    "schema": {"type": "string", "enum": ["true", "false"]},
                },
                ROWS_HEADER: {
                    "description": "rows the export holds",
                    "schema": {"type": "string"},
                },
            },
        }
    }


def _iso(dt: datetime) -> str:
    dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS).decode()
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def encode(
    rows: Iterable[dict[str, Any]], fmt: ExportFormat, columns: Sequence[str]
) -> Iterator[bytes]:
    """Chunks of `rows`: CSV (a header line, then `columns`) or JSON lines (every field)."""
    if fmt == "json":
        option = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
        batch: list[bytes] = []
        for row in rows:
            batch.append(orjson.dumps(row, option=option))
            if len(batch) >= CHUNK_ROWS:
                yield b"".join(batch)
                batch.clear()
        if batch:
            yield b"".join(batch)
        return
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for n, row in enumerate(rows, start=1):
        writer.writerow([csv_cell(row.get(c)) for c in columns])
        if n % CHUNK_ROWS == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def stream(
    rows: Iterable[dict[str, Any]],
    fmt: ExportFormat,
    name: str,
    columns: Sequence[str],
    count: int,
    truncated: bool,
) -> StreamingResponse:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    ext = "csv" if fmt == "csv" else "jsonl"
    media = MEDIA_TYPES[fmt] + ("; charset=utf-8" if fmt == "csv" else "")
    return StreamingResponse(
        encode(rows, fmt, columns),
        media_type=media,
        headers={
            TRUNCATED_HEADER: "true" if truncated else "false",
            ROWS_HEADER: str(count),
            "Content-Disposition": f'attachment; filename="socmon-{name}-{stamp}.{ext}"',
        },
    )


def given_filters(request: Request) -> dict[str, Any]:
    """The query parameters as the caller gave them (repeated ones as a list), for the audit
    log; NUL characters are spelled out (PostgreSQL's JSON refuses them)."""
    out: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        clean = value.replace("\x00", "\\x00")
        key = key.replace("\x00", "\\x00")
        if key in out:
            prev = out[key]
            out[key] = [*prev, clean] if isinstance(prev, list) else [prev, clean]
        else:
            out[key] = clean
    return out


def record_export(
    session: Session,
    user: User,
    kind: str,
    request: Request,
    fmt: ExportFormat,
    rows: int,
    truncated: bool,
) -> None:
    """Audit the export and commit: the record exists before the first row leaves."""
    audit.record(
        session,
        user.name,
        f"{kind}.export",
        "export",
        kind,
        format=fmt,
        filters=given_filters(request),
        rows=rows,
        truncated=truncated,
    )
    session.commit()
