"""nginx logs to ECS, as Elastic's `nginx` integration maps them.

Input: one line of an access log in nginx's default `combined` format (Apache's Combined Log
Format, parsed by `collectors.apache.parse.access_document`) or of an error log
(`2016/10/25 14:49:34 [error] 54053#0: *1 message`), with or without a syslog header (nginx's
`access_log syslog:` output). Access lines become `nginx.access` documents, error lines
`nginx.error` documents (`log.level`, `process.pid`, `process.thread.id`,
`nginx.error.connection_id`, and `source.ip` / `url.original` / `http.request.method` when the
message names the client and the request).

Deliberate differences from Elastic's pipeline: no user-agent parsing and no GeoIP;
error-log timestamps, which carry no offset, are read in `ctx.tz` (UTC when unset).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from collectors.apache.parse import access_document, strip_syslog
from collectors.ecs import normalize_ip
from collectors.parsing import EcsDoc, ParseError, SourceContext

MODULE = "nginx"
ACCESS_DATASET = "nginx.access"
ERROR_DATASET = "nginx.error"

_ERROR_RE = re.compile(
    r"(?P<date>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(?P<level>[a-z]+)\] "
    r"(?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<cid>\d+) )?(?P<message>.*)",
    re.S,
)
_CLIENT_RE = re.compile(r", client: (?P<client>[^,\s]+)")
_REQUEST_RE = re.compile(
    r', request: "(?P<method>[A-Z]+) (?P<target>\S+)(?: HTTP/(?P<version>[^"]+))?"'
)


def _error_document(line: str, original: str, ctx: SourceContext) -> EcsDoc:
    m = _ERROR_RE.match(line)
    if m is None:
        raise ParseError("an error-log line without 'YYYY/MM/DD HH:MM:SS [level] pid#tid:'")
    try:
        moment = datetime.strptime(m["date"], "%Y/%m/%d %H:%M:%S").replace(tzinfo=ctx.tz or UTC)
    except ValueError as e:
        raise ParseError(f"bad error-log time {m['date']!r}: {e}") from e
    message = m["message"]
    doc: EcsDoc = {
        "@timestamp": moment.astimezone(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "event": {
            "original": original,
            "kind": "event",
            "category": ["web"],
            "type": ["error"],
            "dataset": ERROR_DATASET,
            "module": MODULE,
        },
        "log": {"level": m["level"]},
        "message": message,
        "process": {"pid": int(m["pid"]), "thread": {"id": int(m["tid"])}},
    }
    if m["cid"]:
        doc["nginx"] = {"error": {"connection_id": int(m["cid"])}}
    client = _CLIENT_RE.search(message)
    if client is not None:
        address = client["client"]
        ip = normalize_ip(address)
        doc["source"] = {"address": address, **({"ip": ip} if ip else {"domain": address})}
    request = _REQUEST_RE.search(message)
    if request is not None:
        http: dict[str, Any] = {"request": {"method": request["method"]}}
        if request["version"]:
            http["version"] = request["version"]
        doc["http"] = http
        doc["url"] = {"original": request["target"]}
    return doc


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One nginx access-log or error-log line to an ECS document; ParseError otherwise."""
    if not message:
        raise ParseError("empty message")
    line, syslog = strip_syslog(message, ctx)
    if _ERROR_RE.match(line):
        doc = _error_document(line, message, ctx)
    else:
        doc = access_document(line, message, dataset=ACCESS_DATASET, module=MODULE)
    if syslog is not None:
        doc.setdefault("log", {})["syslog"] = syslog
    return doc
