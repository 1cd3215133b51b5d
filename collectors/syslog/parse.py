"""Syslog framing-free message parsing: RFC 5424 and RFC 3164 headers to ECS. Pure, no I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from collectors.ecs import MONTHS, year_for_month
from collectors.parsing import EcsDoc, ParseError, SourceContext
from socmon.errors import ConfigError

_PRI = re.compile(r"<(\d{1,3})>")
_RFC5424 = re.compile(
    r"(?P<version>[1-9]\d{0,2}) (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<rest>.*)",
    re.S,
)
_RFC3164 = re.compile(
    r"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) "
    r"(?:(?P<host>[^\s:\[]+) )?(?P<tag>[^\s:\[]{1,64})?(?:\[(?P<pid>[^\]]{1,32})\])?: ?(?P<msg>.*)",
    re.S,
)
# Timestamp and host, then text with no `tag:` (e.g. "combo syslogd 1.4.1: restart.").
_RFC3164_LOOSE = re.compile(
    r"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\S+) "
    r"(?:(?P<host>[^\s:\[]+) )?(?P<tag>)(?P<pid>)(?P<msg>.*)",
    re.S,
)
_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]=]+)(?P<params>(?: [^\s=\]]+="(?:[^"\\\]]|\\.)*")*)\]')
_SD_PARAM = re.compile(r'([^\s=\]]+)="((?:[^"\\\]]|\\.)*)"')
_MONTHS = MONTHS
# systemd unit start/stop lines, as Elastic's `system.syslog` pipeline maps them ("Stopped
# target X." is a target, not a service, and stays unmapped).
_SYSTEMD_SERVICE = re.compile(r"(Started|Stopped) (?!target )")
_SYSTEMD_ACTIONS = {
    "Started": ("service-start", "start"),
    "Stopped": ("service-stop", "end"),
}
_SEVERITY_NAMES = (
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
)


def split_pri(message: str) -> tuple[int, str]:
    """The PRI value and the rest of the message; ParseError when there is no valid PRI."""
    m = _PRI.match(message)
    if not m:
        raise ParseError("no syslog PRI header (<0>..<191>) at the start of the message")
    pri = int(m.group(1))
    if pri > 191:
        raise ParseError(f"syslog PRI {pri} out of range 0..191")
    return pri, message[m.end() :]


def _parse_3164_time(text: str, ctx: SourceContext, now: datetime) -> datetime:
    if text[0].isdigit():
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return dt if dt.tzinfo else dt.replace(tzinfo=ctx.tz or UTC)
    month = _MONTHS.get(text[:3])
    if month is None:
        raise ValueError(f"bad month in {text!r}")
    day = int(text[4:6])
    hh, mm, ss = (int(x) for x in text[7:15].split(":"))
    tz = ctx.tz or UTC
    return datetime(year_for_month(month, tz, now), month, day, hh, mm, ss, tzinfo=tz)


def _structured_data(text: str) -> tuple[dict[str, dict[str, str]], str]:
    if text.startswith("-"):
        return {}, text[2:] if text.startswith("- ") else text[1:]
    sd: dict[str, dict[str, str]] = {}
    pos = 0
    while pos < len(text) and text[pos] == "[":
        m = _SD_ELEMENT.match(text, pos)
        if not m:
            raise ParseError("malformed RFC 5424 structured data")
        sd[m.group("id")] = {
            k: re.sub(r"\\(.)", r"\1", v) for k, v in _SD_PARAM.findall(m.group("params"))
        }
        pos = m.end()
    rest = text[pos:]
    return sd, rest[1:] if rest.startswith(" ") else rest


def _systemd_event(doc: EcsDoc) -> None:
    """`event.action` / `category` / `type` for systemd's service start and stop lines."""
    m = _SYSTEMD_SERVICE.match(doc.get("message", ""))
    if m:
        action, type_ = _SYSTEMD_ACTIONS[m.group(1)]
        doc["event"].update({"action": action, "category": ["process"], "type": [type_]})


def parse(message: str, ctx: SourceContext, *, now: datetime | None = None) -> EcsDoc:
    """Parse one syslog message (RFC 5424, else RFC 3164) into ECS `log.syslog.*` and `message`."""
    if not message:
        raise ParseError("empty message")
    if "\x00" in message:
        raise ParseError("message contains NUL bytes (binary data)")
    now = now or datetime.now(UTC)
    syslog: dict[str, Any] = {}
    if message.startswith("<"):
        pri, rest = split_pri(message)
        syslog["priority"] = pri
        syslog["facility"] = {"code": pri >> 3}
        syslog["severity"] = {"code": pri & 7, "name": _SEVERITY_NAMES[pri & 7]}
    elif _RFC3164_LOOSE.match(message):
        # A log file line (/var/log/auth.log, /var/log/syslog): the RFC 3164 header without
        # the PRI, which only travels on the wire.
        rest = message
    else:
        raise ParseError(
            "neither a syslog PRI header (<0>..<191>) nor a syslog timestamp at the start"
        )
    doc: EcsDoc = {"log": {"syslog": syslog}, "event": {"original": message}}
    ts: datetime | None = None
    m5424 = _RFC5424.match(rest) if "priority" in syslog else None
    if m5424 and (m5424.group("ts") == "-" or m5424.group("ts")[:1].isdigit()):
        syslog["version"] = m5424.group("version")
        if m5424.group("ts") != "-":
            try:
                ts = datetime.fromisoformat(m5424.group("ts").replace("Z", "+00:00"))
            except ValueError as e:
                raise ParseError(f"bad RFC 5424 timestamp {m5424.group('ts')!r}") from e
        for key, field in (
            ("host", "hostname"),
            ("app", "appname"),
            ("procid", "procid"),
            ("msgid", "msgid"),
        ):
            if m5424.group(key) != "-":
                syslog[field] = m5424.group(key)
        sd, msg = _structured_data(m5424.group("rest"))
        if sd:
            syslog["structured_data"] = sd
        if msg.startswith("\ufeff"):
            msg = msg[1:]
        doc["message"] = msg
    else:
        m3164 = _RFC3164.match(rest) or _RFC3164_LOOSE.match(rest)
        if m3164:
            try:
                ts = _parse_3164_time(m3164.group("ts"), ctx, now)
            except ValueError as e:
                raise ParseError(f"bad RFC 3164 timestamp {m3164.group('ts')!r}: {e}") from e
            if m3164.group("host"):
                syslog["hostname"] = m3164.group("host")
            if m3164.group("tag"):
                syslog["appname"] = m3164.group("tag")
            if m3164.group("pid"):
                syslog["procid"] = m3164.group("pid")
            doc["message"] = m3164.group("msg")
        else:
            # PRI then free text (many devices): keep it whole as the message.
            doc["message"] = rest
    if "hostname" in syslog:
        doc["host"] = {"hostname": syslog["hostname"]}
    if "appname" in syslog:
        doc["process"] = {"name": syslog["appname"]}
        if str(syslog.get("procid", "")).isdigit():
            doc["process"]["pid"] = int(syslog["procid"])
        if syslog["appname"] == "systemd":
            _systemd_event(doc)
    doc["@timestamp"] = (ts or now).astimezone(UTC).isoformat().replace("+00:00", "Z")
    doc["event"].update({"kind": "event", "dataset": "syslog", "module": "syslog"})
    return doc


def source_context(timezone_name: str | None) -> SourceContext:
    """The parsing context of a syslog source: its time zone for RFC 3164 timestamps."""
    if not timezone_name or timezone_name.upper() == "UTC":
        return SourceContext()
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return SourceContext(tz=ZoneInfo(timezone_name))
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ConfigError(f"unknown time zone {timezone_name!r}") from e
