"""Juniper SRX syslog to ECS, as Elastic's `juniper_srx` integration maps it.

Input: one message as sent by Junos, `<PRI>` then an RFC 5424 header (structured syslog,
`[junos@... key="value" ...]`) or a BSD (RFC 3164) header. RT_FLOW session records (and the
AppTrack ones) become network events with the 5-tuple, NAT, zones, policy and counters; the
structured data of any other record is kept under `juniper.srx.*` (keys with `_` for `-`).
Messages whose header is understood but whose body is not keep `@timestamp`, `observer.*`,
`log.level` and `juniper.srx.process`.

Deliberate differences from Elastic's pipeline (none changes a compared field of the corpus):

- A BSD timestamp has no year: it takes the year of `now` (the current UTC time unless
  given), read in `ctx.tz` (UTC when unset). Lines Elastic's grok rejects (for example
  `rmopd[pid]: ...` or RFC 5424 lines with free text only) still get a header document here.
- `client.*` / `server.*` copies of `source.*` / `destination.*` are not made.
- RT_IDP, RT_SCREEN and other threat records get `event.kind` "alert" and the categories
  `network` and `intrusion_detection`; the corpus has none of them to check against.
- `event.dataset` / `event.module` are set ("juniper_srx.log" / "juniper_srx").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from collectors.ecs import (
    MONTHS,
    format_timestamp,
    iana_protocol_name,
    normalize_ip,
    year_for_month,
)
from collectors.parsing import EcsDoc, ParseError, SourceContext

DATASET = "juniper_srx.log"

_RFC5424_RE = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)?)"
    r" (?P<host>\S+) (?P<app>\S+) (?P<pid>\S+) (?P<msgid>\S+) ?"
)
_BSD_RE = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d) "
    r"(?P<host>\S+) (?P<app>[^\s:\[]+)"
)
_SD_RE = re.compile(
    r"\[(?P<id>[^\s\]]+)"
    r"(?P<params>(?:\s+[\w.-]+=(?:\"[^\"\\]*(?:\\.[^\"\\]*)*\"|[^\s\]\"][^\s\]]*|))*)\s*\]"
)
# A quoted value is `(?:[^"\\]|\\.)*` unrolled: the same text, without one alternation per character.
_PARAM_RE = re.compile(r"([\w.-]+)=(?:\"([^\"\\]*(?:\\.[^\"\\]*)*)\"|([^\s\]]*))")
_MONTHS = MONTHS
_LEVELS = (
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notification",
    "informational",
    "debug",
)
# Placeholder values Elastic drops.
_NOT_APPLICABLE = frozenset(("N/A", "UNKNOWN", "None"))
_MAX_NUMBER_TEXT = 19

# Structured-data key -> (ECS path, kind): "ip", "int" or "str".
_FIELD_PATHS: dict[str, tuple[tuple[str, ...], str]] = {
    "source-address": (("source", "ip"), "ip"),
    "source-port": (("source", "port"), "int"),
    "destination-address": (("destination", "ip"), "ip"),
    "destination-port": (("destination", "port"), "int"),
    "nat-source-address": (("source", "nat", "ip"), "ip"),
    "nat-source-port": (("source", "nat", "port"), "int"),
    "nat-destination-address": (("destination", "nat", "ip"), "ip"),
    "nat-destination-port": (("destination", "nat", "port"), "int"),
    "protocol-id": (("network", "iana_number"), "str"),
    "policy-name": (("rule", "name"), "str"),
    "source-zone-name": (("observer", "ingress", "zone"), "str"),
    "destination-zone-name": (("observer", "egress", "zone"), "str"),
    "packet-incoming-interface": (("observer", "ingress", "interface", "name"), "str"),
    "destination-interface-name": (("observer", "egress", "interface", "name"), "str"),
    "bytes-from-client": (("source", "bytes"), "int"),
    "bytes-from-server": (("destination", "bytes"), "int"),
    "packets-from-client": (("source", "packets"), "int"),
    "packets-from-server": (("destination", "packets"), "int"),
    "username": (("source", "user", "name"), "str"),
}
# The same as (top-level section, intermediate keys, last key, kind).
_FIELDS: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    key: (path[0], path[1:-1], path[-1], kind) for key, (path, kind) in _FIELD_PATHS.items()
}
# Keys read into other fields than their own.
_CONSUMED = frozenset(("application-risk", "elapsed-time"))
# RT_FLOW / APPTRACK message id (without a trailing `_LS`) -> (event.action, event.type).
_FLOW_EVENTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("SESSION_CREATE", "flow_started", ("start", "allowed", "connection")),
    ("SESSION_VOL_UPDATE", "flow_started", ("start", "allowed", "connection")),
    ("SESSION_ROUTE_UPDATE", "flow_started", ("start", "allowed", "connection")),
    ("SESSION_CLOSE", "flow_close", ("end", "allowed", "connection")),
    ("SESSION_DENY", "flow_deny", ("denied", "connection")),
)
_THREAT_PROCESSES = frozenset(("RT_IDP", "RT_SCREEN", "RT_AAMW", "RT_SECINTEL", "RT_UTM"))


def parse(message: str, ctx: SourceContext, *, now: datetime | None = None) -> EcsDoc:
    """One SRX syslog message to an ECS document; ParseError when it has no syslog header."""
    header = _RFC5424_RE.match(message) or _BSD_RE.match(message)
    if header is None:
        raise ParseError("no Junos syslog header (<PRI> and an RFC 5424/3164 header)")
    groups = header.groupdict()
    priority = int(groups["pri"])
    if priority > 191:
        raise ParseError(f"syslog PRI {priority} out of range 0..191")
    tz = ctx.tz or UTC
    if groups.get("iso") is not None:
        timestamp = _iso_time(groups["iso"], tz)
    else:
        year = year_for_month(_MONTHS.get(groups["month"], 0), tz, now)
        timestamp = _bsd_time(year, groups["month"], groups["day"], groups["time"], tz)
    doc: EcsDoc = {}
    if timestamp is not None:
        doc["@timestamp"] = timestamp
    event: dict[str, Any] = {"dataset": DATASET, "module": "juniper_srx", "severity": priority}
    doc["event"] = event
    doc["log"] = {"level": _LEVELS[priority & 7]}
    observer: dict[str, Any] = {"vendor": "Juniper", "product": "SRX", "type": "firewall"}
    if groups["host"] != "-":
        observer["name"] = groups["host"]
    doc["observer"] = observer
    srx: dict[str, Any] = {}
    app = groups["app"]
    if app != "-":
        srx["process"] = app
    msgid = groups.get("msgid")
    rest = message[header.end() :]
    if msgid is not None and msgid != "-":
        srx["tag"] = msgid
    if rest.startswith("["):
        element = _SD_RE.match(rest)
        if element is not None:
            params = _params(element.group("params"))
            _structured(params, doc, event, observer, srx, app, msgid or "")
            rest = rest[element.end() :]
    text = rest.removeprefix(":").strip()
    if text:
        doc["message"] = text
    doc["juniper"] = {"srx": srx}
    event["original"] = message
    return doc


def _iso_time(text: str, tz: tzinfo) -> str | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return format_timestamp(moment.astimezone(UTC))


@lru_cache(maxsize=4096)
def _bsd_time(year: int, month: str, day: str, clock: str, tz: tzinfo) -> str | None:
    """`Mmm d HH:MM:SS` of `year` in `tz`, as UTC text; None when it is no valid time."""
    hour, minute, second = clock.split(":")
    try:
        moment = datetime(
            year, _MONTHS.get(month, 0), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError:
        return None
    return format_timestamp(moment.astimezone(UTC))


def _params(text: str) -> dict[str, str]:
    """`key="value"` pairs of one structured-data element (a stray `"` is dropped)."""
    params: dict[str, str] = {}
    for key, quoted, bare in _PARAM_RE.findall(text):
        params[key] = quoted if quoted or not bare else bare.strip('"')
    return params


@lru_cache(maxsize=1024)
def _vendor_key(key: str) -> str:
    """`juniper.srx.*` name of a structured-data key (`-` becomes `_`)."""
    return key.replace("-", "_")


def _to_int(text: str) -> int | None:
    return int(text) if text.isdecimal() and len(text) <= _MAX_NUMBER_TEXT else None


def _structured(
    params: dict[str, str],
    doc: EcsDoc,
    event: dict[str, Any],
    observer: dict[str, Any],
    srx: dict[str, Any],
    app: str,
    msgid: str,
) -> None:
    """ECS fields from the structured data; the rest under `juniper.srx.*`."""
    for key, value in params.items():
        if value in _NOT_APPLICABLE:
            continue
        mapping = _FIELDS.get(key)
        if mapping is None:
            if key not in _CONSUMED:
                srx[_vendor_key(key)] = value
            continue
        if not value:
            continue
        section, middle, last, kind = mapping
        converted: Any = value
        if kind == "ip":
            converted = normalize_ip(value)
        elif kind == "int":
            converted = _to_int(value)
        if converted is None:
            srx[_vendor_key(key)] = value
            continue
        target = observer if section == "observer" else doc.setdefault(section, {})
        for part in middle:
            target = target.setdefault(part, {})
        target[last] = converted
    risk = params.get("application-risk", "")
    if risk.isdecimal() and len(risk) <= _MAX_NUMBER_TEXT:
        event["risk_score"] = float(risk)
    network = doc.get("network")
    if network is not None and "iana_number" in network:
        transport = iana_protocol_name(network["iana_number"])
        if transport is not None:
            network["transport"] = transport
    source = doc.get("source", {})
    destination = doc.get("destination", {})
    for name in ("bytes", "packets"):
        if name in source and name in destination:
            doc.setdefault("network", {})[name] = source[name] + destination[name]
    if app == "RT_FLOW":
        _flow(msgid, params, event, doc)
    elif app in _THREAT_PROCESSES:
        event["kind"] = "alert"
        event["category"] = ["network", "intrusion_detection"]


def _flow(msgid: str, params: dict[str, str], event: dict[str, Any], doc: EcsDoc) -> None:
    """Session records: action, type, outcome; elapsed time as duration and end."""
    tag = msgid.removesuffix("_LS")
    for suffix, action, types in _FLOW_EVENTS:
        if tag.endswith(suffix):
            event["kind"] = "event"
            event["category"] = ["network"]
            event["action"] = action
            event["type"] = list(types)
            event["outcome"] = "success"
            break
    elapsed = _to_int(params.get("elapsed-time", ""))
    timestamp = doc.get("@timestamp")
    if elapsed is not None and elapsed < 10**9 and timestamp is not None:
        event["duration"] = elapsed * 1_000_000_000
        event["start"] = timestamp
        start = datetime.fromisoformat(timestamp)
        event["end"] = format_timestamp(start + timedelta(seconds=elapsed))
