"""Snort alerts (alert_fast lines and the syslog alert format) to ECS, as Elastic's `snort`
integration maps them.

Input: one alert line, either alert_fast
(``05/30-19:09:10.917356  [**] [1:527:8] msg [**] [Classification: c] [Priority: 2] {UDP}
a:1 -> b:2``) or the syslog form (``[<PRI>]Sep  5 16:05:26 host snort[pid]: [1:527:8] msg
[Classification: c] [Priority: 2] {UDP} a:1 -> b:2``). Output: the ECS alert document.

Deliberate differences from Elastic's pipeline (none changes a compared field of the
conformance corpus):

- A timestamp without a year takes the year of `now` in the source's zone (Elastic: the current
  year), except that a December alert read in January belongs to the previous year and a
  January alert read in December to the next.
- `network.iana_number` is set for every record (Elastic sets it for the alert_fast form only).
- `event.dataset` / `event.module` are set ("snort.log" / "snort"); `network.community_id` is not
  computed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from collectors.ecs import MONTHS, format_timestamp, network_direction, normalize_ip, year_for_month
from collectors.parsing import EcsDoc, ParseError, SourceContext

DATASET = "snort.log"

# The alert body shared by both forms: `[gid:sid:rev] msg` (the fast form closes it with `[**]`),
# then `[Classification: c]` (optional), `[Priority: n]`, `{PROTO}` and the two endpoints.
_HEADER = (
    r" {0,16}\[(?P<gid>\d{1,10}):(?P<sid>\d{1,10}):(?P<rev>\d{1,10})\] {0,16}(?P<msg>.*?) {0,16}"
)
_BODY = (
    r" {0,16}(?:\[Classification: (?P<cls>[^\]]*)\] )?\[Priority: (?P<prio>\d{1,10})\] "
    r"\{(?P<proto>\w{1,32})\} (?P<src>[0-9A-Fa-f:.]{2,72}) -> "
    r"(?P<dst>[0-9A-Fa-f:.]{2,72})\s*$"
)
_FAST_RE = re.compile(
    r"(?P<date>\d{1,2}/\d{1,2}(?:/\d{2})?-\d{1,2}:\d{2}:\d{2}(?:\.\d{1,9})?) {0,16}"
    r"\[\*\*\]" + _HEADER + r"\[\*\*\]" + _BODY
)
_SYSLOG_RE = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?"
    r"(?P<stamp>[A-Z][a-z]{2} [ \d]?\d \d{2}:\d{2}:\d{2}) "
    r"(?:(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7])"
    r"\.\w+ )?"
    r"(?P<observer>[^\s:\[]{1,255}) (?P<prog>[^\s:\[\]]{1,64})(?:\[(?P<pid>\d{1,10})\])?:"
    + _HEADER
    + _BODY
)
_MONTHS = MONTHS
_TRANSPORT_NUMBERS = {"tcp": "6", "udp": "17", "icmp": "1", "ipv6-icmp": "58", "sctp": "132"}
_MAX_LONG = 2**63 - 1
_MAX_PID = 2**31 - 1


def parse(message: str, ctx: SourceContext, *, now: datetime | None = None) -> EcsDoc:
    """One Snort alert line to an ECS document; ParseError when it is no alert Snort writes."""
    if not message:
        raise ParseError("empty message")
    match = _FAST_RE.match(message) if message[:1].isdigit() else _SYSLOG_RE.match(message)
    if match is None:
        raise ParseError("not a Snort alert_fast or syslog alert line")
    groups = match.groupdict()
    tz = ctx.tz or UTC
    if groups.get("date") is not None:
        moment = _fast_time(groups["date"], tz, now)
    else:
        moment = _syslog_time(groups["stamp"], tz, now)
    if moment is None:
        raise ParseError("invalid Snort alert timestamp")
    return _build(message, groups, moment, ctx)


def _year(month: int, tz: tzinfo, now: datetime | None) -> int:
    """The year of a year-less timestamp in `month`, seen from `now` (the clock when None)."""
    return year_for_month(month, tz, now)


def _fast_time(text: str, tz: tzinfo, now: datetime | None) -> datetime | None:
    """`MM/dd[/yy]-HH:mm:ss.ffffff` in `tz`."""
    date_part, _, time_part = text.partition("-")
    fields = date_part.split("/")
    clock, _, fraction = time_part.partition(".")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    month, day = int(fields[0]), int(fields[1])
    year = 2000 + int(fields[2]) if len(fields) == 3 else _year(month, tz, now)
    micros = int((fraction + "000000")[:6]) if fraction else 0
    try:
        return datetime(year, month, day, hours, minutes, seconds, micros, tzinfo=tz)
    except ValueError:
        return None


def _syslog_time(text: str, tz: tzinfo, now: datetime | None) -> datetime | None:
    """`MMM d HH:mm:ss` (RFC 3164) in `tz`."""
    month = _MONTHS.get(text[:3])
    if month is None:
        return None
    day_text, clock = text[4:].split()
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    try:
        return datetime(
            _year(month, tz, now), month, int(day_text), hours, minutes, seconds, tzinfo=tz
        )
    except ValueError:
        return None


def _endpoint(token: str) -> dict[str, Any]:
    """`address[:port]` as Snort prints it. A token that is an address as a whole is one (an IPv6
    address and a port cannot be told apart; Elastic's grok reads the longest address too)."""
    ip = normalize_ip(token)
    if ip is not None:
        return {"address": token, "ip": ip}
    address, colon, port = token.rpartition(":")
    if not colon or not port.isdecimal() or len(port) > 5:
        return {"address": token}
    endpoint: dict[str, Any] = {"address": address}
    ip = normalize_ip(address)
    if ip is not None:
        endpoint["ip"] = ip
    if 0 < int(port) <= 65535:
        endpoint["port"] = int(port)
    return endpoint


def _build(original: str, groups: dict[str, Any], moment: datetime, ctx: SourceContext) -> EcsDoc:
    timestamp = format_timestamp(moment)
    severity = int(groups["prio"])
    event: dict[str, Any] = {
        "kind": "alert",
        "category": ["network"],
        "created": timestamp,
        "dataset": DATASET,
        "module": "snort",
    }
    if severity <= _MAX_LONG:
        event["severity"] = severity
    if ctx.tz is not None:
        event["timezone"] = str(ctx.tz)
    observer: dict[str, Any] = {"vendor": "snort", "product": "ids", "type": "ids"}
    doc: EcsDoc = {"@timestamp": timestamp, "event": event, "observer": observer}

    if groups.get("observer") is not None:
        host = groups["observer"]
        ip = normalize_ip(host)
        if ip is not None:
            observer["ip"] = ip
        else:
            observer["name"] = host
        process: dict[str, Any] = {"name": groups["prog"]}
        pid = groups.get("pid")
        if pid is not None and int(pid) <= _MAX_PID:
            process["pid"] = int(pid)
        doc["process"] = process
        pri = groups.get("pri")
        if pri is not None:
            doc["log"] = {"syslog": {"priority": int(pri)}}

    rule: dict[str, Any] = {"id": groups["sid"], "version": groups["rev"]}
    if groups["msg"]:
        rule["description"] = groups["msg"]
    if groups["cls"]:
        rule["category"] = groups["cls"]
    doc["rule"] = rule

    source = _endpoint(groups["src"])
    destination = _endpoint(groups["dst"])
    doc["source"] = source
    doc["destination"] = destination
    transport = groups["proto"].lower()
    network: dict[str, Any] = {"transport": transport}
    number = _TRANSPORT_NUMBERS.get(transport)
    if number is not None:
        network["iana_number"] = number
    source_ip, destination_ip = source.get("ip"), destination.get("ip")
    if source_ip is not None:
        network["type"] = "ipv4" if "." in source_ip else "ipv6"
    network["direction"] = (
        network_direction(source_ip, destination_ip, ctx.internal_networks) or "unknown"
    )
    doc["network"] = network
    related = [ip for ip in (source_ip, destination_ip) if ip is not None]
    if related:
        doc["related"] = {"ip": list(dict.fromkeys(related))}
    doc["snort"] = {"gid": int(groups["gid"])}
    event["original"] = original
    return doc
