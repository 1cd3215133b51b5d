"""Apache HTTP Server logs to ECS, as Elastic's `apache` integration maps them.

Input: one line of an access log (Common or Combined Log Format, optionally after a
`vhost:port ` prefix) or of an error log (2.2 `[date] [level] [client ip] message` and 2.4
`[date] [module:level] [pid N:tid M] [client ip:port] AHnnnnn: message`), with or without a
syslog header. Access lines become `apache.access` documents (`http.*`, `url.*`, `source.*`,
`user.name`, `user_agent.original`), error lines `apache.error` documents (`log.level`,
`process.pid` / `process.thread.id`, `source.*`, `error.code`).

The access-log part is shared with the nginx parser (`parse_access`), whose default `combined`
format is Apache's.

Deliberate differences from Elastic's pipeline: no user-agent parsing (`user_agent.original`
only) and no GeoIP; error-log timestamps, which carry no offset, are read in `ctx.tz` (UTC when
unset); `event.outcome` of an access line is `failure` from status 400 on.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from collectors.ecs import MONTHS, normalize_ip
from collectors.parsing import EcsDoc, ParseError, SourceContext
from collectors.syslog.parse import parse as parse_syslog

MODULE = "apache"
ACCESS_DATASET = "apache.access"
ERROR_DATASET = "apache.error"

_ACCESS_RE = re.compile(
    r"(?:(?P<vhost>[^\s\[\]]+:\d+) )?(?P<client>\S+) (?P<ident>\S+) (?P<user>\S+) "
    r"\[(?P<time>\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2}(?:\.\d+)? [+-]\d{4})\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}|-) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?(?P<rest>.*)',
    re.S,
)
_REQUEST_RE = re.compile(r"(?P<method>[A-Z][A-Za-z_-]*) (?P<target>\S+)(?: HTTP/(?P<version>\S+))?")
_ERROR_RE = re.compile(
    r"\[(?P<time>[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4})\] "
    r"\[(?:(?P<module>[^:\]\s]+):)?(?P<level>[a-z0-9]+)\]"
    r"(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?"
    r"(?: \[client (?P<client>[^\]]+)\])?"
    r" ?(?:(?P<code>AH\d{5}): )?(?P<message>.*)",
    re.S,
)
_SYSLOG_START_RE = re.compile(r"<\d{1,3}>|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d |\d{4}-\d\d-\d\dT")
_MONTHS = MONTHS


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\") if "\\" in text else text


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _source(doc: EcsDoc, address: str) -> None:
    ip = normalize_ip(address)
    doc["source"] = {"address": address, **({"ip": ip} if ip else {"domain": address})}


def strip_syslog(message: str, ctx: SourceContext) -> tuple[str, dict[str, Any] | None]:
    """The log line without a syslog header, and the header's `log.syslog` when there was one."""
    if not _SYSLOG_START_RE.match(message):
        return message, None
    envelope = parse_syslog(message, ctx)
    return str(envelope.get("message", "")), envelope["log"]["syslog"]


def _access_time(text: str) -> datetime:
    """`10/Oct/2000:13:55:36 -0700` (optionally with a fraction) to an aware datetime."""
    month = _MONTHS.get(text[3:6])
    if month is None:
        raise ParseError(f"bad month in access-log time {text!r}")
    clock, offset = text[12:].split(" ")
    seconds, _, fraction = clock[6:].partition(".")
    try:
        tz = datetime.strptime(offset, "%z").tzinfo
        moment = datetime(
            int(text[7:11]),
            month,
            int(text[:2]),
            int(clock[:2]),
            int(clock[3:5]),
            int(seconds),
            int((fraction + "000000")[:6]),
            tzinfo=tz,
        )
    except ValueError as e:
        raise ParseError(f"bad access-log time {text!r}: {e}") from e
    return moment


def parse_access(message: str, ctx: SourceContext, *, dataset: str, module: str) -> EcsDoc:
    """One Common/Combined Log Format line (with or without a syslog header) to ECS;
    ParseError when it is not one."""
    if not message:
        raise ParseError("empty message")
    line, syslog = strip_syslog(message, ctx)
    doc = access_document(line, message, dataset=dataset, module=module)
    if syslog is not None:
        doc["log"] = {"syslog": syslog}
    return doc


def access_document(line: str, original: str, *, dataset: str, module: str) -> EcsDoc:
    """The ECS document of an access-log `line` (no syslog header) read from `original`."""
    m = _ACCESS_RE.match(line)
    if m is None:
        raise ParseError("not a Common/Combined Log Format access-log line")
    status = m["status"]
    doc: EcsDoc = {
        "@timestamp": _iso(_access_time(m["time"]).astimezone(UTC)),
        "event": {
            "original": original,
            "kind": "event",
            "category": ["web"],
            "type": ["access"],
            "dataset": dataset,
            "module": module,
        },
    }
    _source(doc, m["client"])
    if m["user"] != "-":
        doc["user"] = {"name": m["user"]}
    http: dict[str, Any] = {}
    request = _unescape(m["request"])
    if request and request != "-":
        req = _REQUEST_RE.fullmatch(request)
        if req is not None:
            http["request"] = {"method": req["method"]}
            if req["version"]:
                http["version"] = req["version"]
            target = req["target"]
            path, sep, query = target.partition("?")
            url: dict[str, Any] = {"original": target, "path": path}
            if sep:
                url["query"] = query
            doc["url"] = url
        else:
            doc["url"] = {"original": request}
    response: dict[str, Any] = {}
    if status != "-":
        code = int(status)
        response["status_code"] = code
        doc["event"]["outcome"] = "failure" if code >= 400 else "success"
    if m["bytes"] != "-" and len(m["bytes"]) < 19:
        response["body"] = {"bytes": int(m["bytes"])}
    if response:
        http["response"] = response
    referrer = m["referrer"]
    if referrer and referrer != "-":
        http.setdefault("request", {})["referrer"] = _unescape(referrer)
    if http:
        doc["http"] = http
    agent = m["agent"]
    if agent and agent != "-":
        doc["user_agent"] = {"original": _unescape(agent)}
    if m["vhost"]:
        host, _, port = m["vhost"].rpartition(":")
        doc["destination"] = {"domain": host, "port": int(port)}
    return doc


def _error_document(line: str, original: str, ctx: SourceContext) -> EcsDoc:
    m = _ERROR_RE.match(line)
    if m is None:
        raise ParseError("an error-log line ('[date] ...') without a valid date and level")
    text = m["time"]
    month = _MONTHS.get(text[4:7])
    if month is None:
        raise ParseError(f"bad month in error-log time {text!r}")
    clock = text[11:-5]
    seconds, _, fraction = clock[6:].partition(".")
    try:
        moment = datetime(
            int(text[-4:]),
            month,
            int(text[8:10]),
            int(clock[:2]),
            int(clock[3:5]),
            int(seconds),
            int((fraction + "000000")[:6]),
            tzinfo=ctx.tz or UTC,
        )
    except ValueError as e:
        raise ParseError(f"bad error-log time {text!r}: {e}") from e
    doc: EcsDoc = {
        "@timestamp": _iso(moment.astimezone(UTC)),
        "event": {
            "original": original,
            "kind": "event",
            "category": ["web"],
            "type": ["error"],
            "dataset": ERROR_DATASET,
            "module": MODULE,
        },
        "log": {"level": m["level"]},
        "message": m["message"],
    }
    if m["pid"]:
        process: dict[str, Any] = {"pid": int(m["pid"])}
        if m["tid"]:
            process["thread"] = {"id": int(m["tid"])}
        doc["process"] = process
    if m["client"]:
        address, port = m["client"], None
        if address.count(":") == 1 or address.startswith("["):
            address, _, port = address.rpartition(":")
            address = address.strip("[]")
        _source(doc, address)
        if port and port.isdecimal() and len(port) <= 5:
            doc["source"]["port"] = int(port)
    if m["code"]:
        doc["error"] = {"code": m["code"]}
    if m["module"]:
        doc["apache"] = {"error": {"module": m["module"]}}
    return doc


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One Apache access-log or error-log line to an ECS document; ParseError otherwise."""
    if not message:
        raise ParseError("empty message")
    line, syslog = strip_syslog(message, ctx)
    if line.startswith("["):
        doc = _error_document(line, message, ctx)
    else:
        doc = access_document(line, message, dataset=ACCESS_DATASET, module=MODULE)
    if syslog is not None:
        doc.setdefault("log", {})["syslog"] = syslog
    return doc
