"""FortiGate syslog (key=value) to ECS, as Elastic's `fortinet_fortigate` integration maps it.

Input: one message as received over syslog, with or without its `<PRI>` (and optionally an
RFC 5424 header). Output: the ECS document for the traffic, utm and event log types; fields
Elastic keeps under `fortinet.firewall.*` stay there.

Deliberate differences from Elastic's pipeline (none of them changes a compared field of the
conformance corpus):

- `@timestamp` falls back to `eventtime` when the record has no `date`/`time`, and `date`/`time`
  without a `tz` field are read in `ctx.tz` (UTC when unset).
- `eventtime` units are inferred from the digit count (s, ms, µs, ns); Elastic reads 15-17
  digits (µs) as milliseconds.
- `user.name` copies `source.user.name` when not set otherwise (later upstream versions do).
- `observer.ingress.zone` / `observer.egress.zone` carry `srcintfrole` / `dstintfrole`
  ("lan", "wan", "dmz"; not "undefined"); the vendor fields stay as well.
- Addresses that do not parse as IPs are left under `fortinet.firewall.*` instead of failing
  the document; numbers that do not parse stay there too.
- `sess_duration` (seconds) becomes `event.duration` in nanoseconds, as ECS defines it.
- `observer.ip` is the syslog sender (`ctx.observer_ip`) when known.
- `event.dataset` / `event.module` are set ("fortinet.fortigate" / "fortinet").
"""

from __future__ import annotations

import math
import re
from datetime import UTC, tzinfo
from functools import lru_cache
from typing import Any

from collectors.ecs import (
    append_unique,
    epoch_timestamp,
    iana_protocol_name,
    network_direction,
    normalize_ip,
    offset_text,
    parse_kv,
    parse_utc_offset,
    set_field,
    strip_controls,
    wallclock_timestamp,
)
from collectors.parsing import EcsDoc, ParseError, SourceContext

DATASET = "fortinet.fortigate"

_PRI_RE = re.compile(r"<(\d{1,3})>")
# RFC 5424 header after the PRI: VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD.
_RFC5424_RE = re.compile(
    r"\d{1,2} +(?:\d{4}-\d{2}-\d{2}T\S+|-) +(\S+) +\S+ +\S+ +\S+ +(?:-|\[.*?\]) *"
)

_LOGON_ACTIONS = frozenset({"FSSO-logon", "auth-logon"})
_LOGOFF_ACTIONS = frozenset({"FSSO-logoff", "auth-logout"})
_ECS_DIRECTIONS = frozenset({"ingress", "egress", "inbound", "outbound", "internal", "external"})
_DIRECTION_ALIASES = {"outgoing": "outbound", "incoming": "inbound"}
_INGRESS_DIRECTIONS = frozenset({"ingress", "inbound", "internal"})
_EGRESS_DIRECTIONS = frozenset({"egress", "outbound", "external"})
# Vendor fields Elastic converts to numbers in place.
_LONG_FIELDS = frozenset(
    (
        "auditid",
        "audittime",
        "quotamax",
        "quotaused",
        "size",
        "disklograte",
        "fazlograte",
        "lanin",
        "lanout",
        "setuprate",
        "wanin",
        "wanout",
    )
)
_URL_RE = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?:(?P<userinfo>[^@/?#]*)@)?"
    r"(?P<host>\[[^\]]*\]|[^:/?#]*)(?::(?P<port>\d*))?"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#(?P<fragment>.*))?"
)
# Login messages, split as Elastic's `dissect` does (each delimiter's first occurrence):
# "Login from ssh: <outcome> for <user> from <ip> port <port>"
_SSH_LOGIN_PREFIX = "Login from ssh: "
_SSH_LOGIN_DELIMITERS = (" for ", " from ", " port ")
# "<role> <user> login <outcome> from <ui>(<ip>)...", "<role> <user> logged in <outcome> from ..."
_ADMIN_LOGIN_DELIMITERS = (" ", " login ", " from ", "(", ")")
_ADMIN_LOGGED_IN_DELIMITERS = (" ", " logged in ", " from ", "(", ")")
# Keys read by `_utm_file` / `_utm_tls`; most UTM records have none of them.
_UTM_FILE_KEYS = frozenset(
    (
        "filename",
        "infectedfilename",
        "matchedfilename",
        "filesize",
        "infectedfilesize",
        "filetype",
        "infectedfiletype",
        "matchedfiletype",
    )
)
_UTM_TLS_KEYS = frozenset(
    (
        "scertcname",
        "scertissuer",
        "issuer",
        "ccertissuer",
        "authalgo",
        "keyalgo",
        "notbefore",
        "notafter",
        "keysize",
        "sn",
        "certhash",
        "san",
        "cn",
        "kxcurve",
        "cipher",
        "sni",
        "handshake",
        "tlsver",
    )
)
_USERFROM_RE = re.compile(r"JSON\((.*)\)")
_DESC_OUTCOME_PREFIX = "User login/logout "
_MAX_LONG = 2**63 - 1
_MIN_LONG = -(2**63)
_FLOAT_RE = re.compile(r"-?\d+(?:\.\d+)?")


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One FortiGate syslog message to an ECS document; ParseError when it holds no pairs."""
    body = message
    priority: int | None = None
    syslog_host: str | None = None
    if body.startswith("<"):
        match = _PRI_RE.match(body)
        if match is not None:
            value = int(match.group(1))
            priority = value if value <= 191 else None
            body = body[match.end() :]
            # An RFC 5424 header starts with its version number; FortiGate's own format does not.
            if body[:1].isdecimal():
                header = _RFC5424_RE.match(body)
                if header is not None:
                    host = header.group(1)
                    syslog_host = None if host == "-" else host
                    body = body[header.end() :]
    fw = parse_kv(strip_controls(body))
    if not fw:
        raise ParseError("no key=value pairs in FortiGate message")
    if "N/A" in fw.values():
        for key in [key for key, value in fw.items() if value == "N/A"]:
            del fw[key]
    return _build(message, fw, priority, syslog_host, ctx)


# Every value in `fw` starts as a non-empty string (`parse_kv` drops empty values), so
# `pop(a) if a in fw else pop(b, None)` below takes the first of two alternative keys.


def _to_int(value: str | None) -> int | None:
    """The integer in `value` (decimal digits, optional leading "-") when it fits a signed
    64-bit long (the ECS `long` type), else None."""
    if value is None or len(value) > 20:
        return None
    if value.isdecimal():
        number = int(value)
    elif value[:1] == "-" and value[1:].isdecimal():
        number = -int(value[1:])
    else:
        return None
    return number if _MIN_LONG <= number <= _MAX_LONG else None


def _to_float(value: str) -> float | None:
    """The finite decimal number in `value`, else None."""
    if len(value) > 32 or not _FLOAT_RE.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _pop_int(fw: dict[str, Any], key: str) -> int | None:
    """Pop `key` as a non-negative long; any other value stays in `fw`."""
    value = fw.get(key)
    if value is not None and value.isdecimal() and len(value) <= 19:
        number = int(value)
        if number <= _MAX_LONG:
            del fw[key]
            return number
    return None


def _move_ints(
    fw: dict[str, Any], target: dict[str, Any], moves: tuple[tuple[str, str], ...]
) -> None:
    """`target[field] = <fw key as a non-negative long>` for each (key, field) of `moves`; a value
    that is no such number stays in `fw`."""
    for key, field in moves:
        value = fw.get(key)
        if value is not None and value.isdecimal() and len(value) <= 19:
            number = int(value)
            if number <= _MAX_LONG:
                del fw[key]
                target[field] = number


def _pop_ints(fw: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    """Pop every one of `keys` that holds a non-negative long; the first of them wins."""
    found = None
    for key in keys:
        if key in fw:
            number = _pop_int(fw, key)
            if found is None:
                found = number
    return found


def _seconds_to_nanos(seconds: int | None) -> int | None:
    """`event.duration` (nanoseconds) from seconds, when it fits a long."""
    if seconds is None or seconds * 1_000_000_000 > _MAX_LONG:
        return None
    return seconds * 1_000_000_000


def _pop_ip(fw: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    """Pop the first of `keys` that holds an IP, as canonical text; other values stay in `fw`."""
    for key in keys:
        value = fw.get(key)
        if value is not None:
            address = normalize_ip(value)
            if address is not None:
                del fw[key]
                return address
    return None


def _section(doc: EcsDoc, name: str) -> dict[str, Any]:
    section: dict[str, Any] = doc.setdefault(name, {})
    return section


@lru_cache(maxsize=256)
def _cached_zone(text: str) -> tuple[str, tzinfo | None]:
    shown = offset_text(text)
    return shown, parse_utc_offset(shown)


def _device_zone(text: str) -> tuple[str, tzinfo | None]:
    """`tz` as `event.timezone` shows it (`±HHMM` when it is an offset) and as a zone."""
    return _cached_zone(text) if len(text) <= 16 else (text, None)


def _build(
    original: str,
    fw: dict[str, Any],
    priority: int | None,
    syslog_host: str | None,
    ctx: SourceContext,
) -> EcsDoc:
    pop = fw.pop
    event: dict[str, Any] = {"dataset": DATASET, "module": "fortinet"}
    observer: dict[str, Any] = {"vendor": "Fortinet", "product": "Fortigate", "type": "firewall"}

    # Time: `date` + `time` in the record's `tz` -> @timestamp; `eventtime` -> event.start.
    device_tz = None
    if "tz" in fw:
        event["timezone"], device_tz = _device_zone(pop("tz"))
    tz = device_tz or ctx.tz or UTC
    timestamp = None
    if "date" in fw and "time" in fw:
        timestamp = wallclock_timestamp(fw["date"], fw["time"], tz)
        if timestamp is not None:
            del fw["date"], fw["time"]
    if "eventtime" in fw:
        start = epoch_timestamp(fw["eventtime"], tz)
        if start is not None:
            del fw["eventtime"]
            event["start"] = start
            if timestamp is None:
                timestamp = start
    doc: EcsDoc = {} if timestamp is None else {"@timestamp": timestamp}
    doc["event"] = event
    doc["observer"] = observer

    log: dict[str, Any] = {}
    if priority is not None:
        log["syslog"] = {
            "priority": priority,
            "facility": {"code": priority >> 3},
            "severity": {"code": priority & 7},
        }
    if "level" in fw:
        log["level"] = pop("level")
    doc["log"] = log

    name = pop("devname") if "devname" in fw else syslog_host
    if name is not None:
        observer["name"] = name
    if "devid" in fw:
        observer["serial_number"] = pop("devid")
    if ctx.observer_ip:
        observer_ip = normalize_ip(ctx.observer_ip)
        if observer_ip is not None:
            observer["ip"] = [observer_ip]
    egress = pop("dst_int") if "dst_int" in fw else pop("dstintf", None)
    ingress = pop("src_int") if "src_int" in fw else pop("srcintf", None)
    if egress is not None:
        observer["egress"] = {"interface": {"name": egress}}
    if ingress is not None:
        observer["ingress"] = {"interface": {"name": ingress}}
    if "duration" in fw:
        duration = _seconds_to_nanos(_to_int(fw["duration"]))
        if duration is not None and duration >= 0:
            del fw["duration"]
            event["duration"] = duration
    if "subject" in fw:
        doc["email"] = {"subject": fw["subject"]}
    if "cc" in fw:
        doc.setdefault("email", {})["cc"] = {"address": [fw["cc"]]}
    if "srcname" in fw:
        doc["host"] = {"name": fw["srcname"].lower()}
    msg = pop("msg", None)
    if msg is not None:
        doc["message"] = msg
    if "dstmac" in fw:
        doc["destination"] = {"mac": pop("dstmac").replace(":", "-").upper()}

    log_type = fw.get("type")
    if log_type == "event":
        _event_fields(fw, doc, event)
    if msg is not None:
        lowered = msg.lower()
        if "login" in lowered or "logged in" in lowered:
            _login_fields(fw, doc, event, log, observer, msg)
    if log_type == "traffic":
        _traffic_fields(fw, doc, event)
    elif log_type == "utm" or log_type == "dns":
        _utm_fields(fw, doc, event)

    _finish(fw, doc, event, observer, ctx)
    event["original"] = original
    return doc


def _event_fields(fw: dict[str, Any], doc: EcsDoc, event: dict[str, Any]) -> None:
    pop = fw.pop
    event["kind"] = "event"
    action = fw.get("action")
    subtype = fw.get("subtype")
    result = fw.get("result")
    categories: list[str] = event.setdefault("category", [])
    types: list[str] = event.setdefault("type", [])
    if result == "ERROR" or fw.get("status") == "negotiate_error":
        event["outcome"] = "failure"
    if action in _LOGON_ACTIONS:
        event["outcome"] = "success"
        types.append("start")
    elif action in _LOGOFF_ACTIONS:
        event["outcome"] = "success"
        types.append("end")
    elif result == "OK":
        event["outcome"] = "success"
    if subtype == "vpn":
        types.append("connection")
        categories.append("network")
    if action == "perf-stats":
        types.append("info")
        categories.append("host")
    if subtype == "update":
        types.append("info")
        categories.extend(("host", "malware"))
    elif subtype == "user":
        categories.append("authentication")

    source: dict[str, Any] = doc.setdefault("source", {})
    destination: dict[str, Any] = doc.setdefault("destination", {})
    dst_ip = _pop_ip(fw, ("dstip", "remip"))
    if dst_ip is not None:
        destination["ip"] = dst_ip
    dst_port = _pop_ints(fw, ("dstport", "remport"))
    if dst_port is not None:
        destination["port"] = dst_port
    if "rcvdbyte" in fw:
        rcvd = _pop_int(fw, "rcvdbyte")
        if rcvd is not None:
            destination["bytes"] = rcvd
    address = pop("daddr") if "daddr" in fw else pop("dst_host", None)
    if address is not None:
        destination["address"] = address
    if "group" in fw:
        source["user"] = {"group": {"name": pop("group")}}
    if "sentbyte" in fw:
        sent = _pop_int(fw, "sentbyte")
        if sent is not None:
            source["bytes"] = sent
    src_ip = _pop_ip(fw, ("srcip", "locip"))
    if src_ip is not None:
        source["ip"] = src_ip
    mac = pop("srcmac") if "srcmac" in fw else pop("source_mac", None)
    if mac is not None:
        source["mac"] = mac
    src_port = _pop_ints(fw, ("srcport", "locport"))
    if src_port is not None:
        source["port"] = src_port
    if "user" in fw:
        source.setdefault("user", {})["name"] = pop("user")
    if "saddr" in fw:
        source["address"] = pop("saddr")
    if "agent" in fw:
        doc["user_agent"] = {"original": pop("agent")}
    if "file" in fw:
        doc.setdefault("file", {})["name"] = pop("file")
    if "filesize" in fw:
        file_size = _pop_int(fw, "filesize")
        if file_size is not None:
            doc.setdefault("file", {})["size"] = file_size
    if "code" not in event and "logid" in fw:
        event["code"] = pop("logid")
    rule: dict[str, Any] = doc.setdefault("rule", {})
    if "policyid" in fw:
        rule["id"] = pop("policyid")
    if "proto" in fw or "service" in fw:
        _network_basics(fw, doc)
    if "error_num" in fw:
        set_field(doc, "error.code", pop("error_num"))
    if "logdesc" in fw:
        rule["description"] = pop("logdesc")
    if "addr" in fw and "addrgrp" not in fw and normalize_ip(fw["addr"]) is None:
        fw["addrgrp"] = pop("addr")
    if "url" in fw:
        _set_url(doc, pop("url"), uri=True)
    if "hostname" in fw:
        doc.setdefault("url", {})["domain"] = pop("hostname")
    if "duration" not in event and "sess_duration" in fw:
        sess_duration = _seconds_to_nanos(_to_int(fw["sess_duration"]))
        if sess_duration is not None and sess_duration >= 0:
            del fw["sess_duration"]
            event["duration"] = sess_duration
    if "mem" in fw:
        mem = _to_int(fw["mem"])
        if mem is not None:
            fw["mem"] = mem
    for key in ("jitter", "latency"):
        if key in fw:
            number = _to_float(fw[key])
            if number is not None:
                fw[key] = number
    if subtype == "vpn":
        for key in ("xauthuser", "eapuser"):
            if key in fw:
                source.setdefault("user", {})["name"] = fw[key]
    if "advpnsc" in fw:
        fw["advpnsc"] = fw["advpnsc"] != "0"


def _login_fields(
    fw: dict[str, Any],
    doc: EcsDoc,
    event: dict[str, Any],
    log: dict[str, Any],
    observer: dict[str, Any],
    msg: str,
) -> None:
    pop = fw.pop
    event["kind"] = "event"
    event.setdefault("action", "login")
    categories: list[str] = event.setdefault("category", [])
    if "authentication" not in categories:
        categories.append("authentication")
    source: dict[str, Any] = doc.setdefault("source", {})
    user: dict[str, Any] = doc.setdefault("user", {})
    if "user" in source and "name" in source["user"]:
        user["name"] = source["user"]["name"]
    roles: list[str] = []
    if "adminprof" in fw:
        roles.append(pop("adminprof"))
    outcome: str | None = None
    if "userfrom" in fw:
        match = _USERFROM_RE.fullmatch(pop("userfrom"))
        if match is not None:
            address = normalize_ip(match.group(1))
            if address is not None:
                source["ip"] = address
    desc = fw.get("desc")
    if msg.startswith("user") and desc is not None and desc.startswith(_DESC_OUTCOME_PREFIX):
        outcome = desc[len(_DESC_OUTCOME_PREFIX) :]
    login_user: str | None = None
    address = None
    port: str | None = None
    if msg.startswith(_SSH_LOGIN_PREFIX):
        pieces = _dissect(msg[len(_SSH_LOGIN_PREFIX) :], _SSH_LOGIN_DELIMITERS)
        if pieces is not None:
            outcome, login_user, address, port = pieces
    elif msg.startswith("Administrator"):
        logged_in = "logged in" in msg.lower()
        pieces = _dissect(
            msg, _ADMIN_LOGGED_IN_DELIMITERS if logged_in else _ADMIN_LOGIN_DELIMITERS
        )
        if pieces is not None:
            role, login_user, outcome, _, address, _ = pieces
            if role not in roles:
                roles.append(role)
    if login_user:
        user["name"] = login_user
    if address is not None:
        source_ip = normalize_ip(address)
        if source_ip is not None:
            source["ip"] = source_ip
    if port is not None:
        source_port = _to_int(port)
        if source_port is not None:
            source["port"] = source_port
    if outcome is not None:
        lowered_outcome = outcome.lower()
        if lowered_outcome.startswith("fail"):
            event["outcome"] = "failure"
        elif lowered_outcome.startswith("success"):
            event["outcome"] = "success"
    if "log_id" in fw:
        event["id"] = pop("log_id")
    if "pri" in fw:
        log["level"] = pop("pri")
    if "device_id" in fw:
        observer["serial_number"] = pop("device_id")
    if roles:
        user["roles"] = list(roles)
        source.setdefault("user", {})["roles"] = list(roles)
    if "valid" in fw:
        valid = _to_int(fw["valid"])
        if valid is not None:
            fw["valid"] = valid
    for key in ("remote_ip", "remote_port", "ui", "status"):
        fw.pop(key, None)


def _dissect(text: str, delimiters: tuple[str, ...]) -> list[str] | None:
    """`text` cut at the first occurrence of each delimiter in turn (after the previous cut):
    `len(delimiters) + 1` pieces, or None when a delimiter is missing. Linear time."""
    pieces = []
    start = 0
    for delimiter in delimiters:
        end = text.find(delimiter, start)
        if end < 0:
            return None
        pieces.append(text[start:end])
        start = end + len(delimiter)
    pieces.append(text[start:])
    return pieces


_TRAFFIC_DESTINATION_NUMBERS = (("dstport", "port"), ("rcvdbyte", "bytes"), ("rcvdpkt", "packets"))
_TRAFFIC_SOURCE_NUMBERS = (("srcport", "port"), ("sentbyte", "bytes"), ("sentpkt", "packets"))
_TRAFFIC_RULE_FIELDS = (
    ("comment", "description"),
    ("policyid", "id"),
    ("poluuid", "uuid"),
    ("policytype", "ruleset"),
    ("policyname", "name"),
)


def _traffic_fields(fw: dict[str, Any], doc: EcsDoc, event: dict[str, Any]) -> None:
    pop = fw.pop
    event["kind"] = "event"
    action = fw.get("action")
    utmaction = fw.get("utmaction")
    if action:
        event["action"] = action
        event["outcome"] = "success"
    categories: list[str] = event.setdefault("category", [])
    categories.append("network")
    types: list[str] = event.setdefault("type", [])
    types.append("connection")
    if action == "start":
        types.append("start")
    elif action is not None:
        types.append("end")
    if "app" in fw and action != "deny":
        types.append("protocol")
    if utmaction is None and action != "deny":
        types.append("allowed")
    if utmaction == "block" or action == "deny":
        types.append("denied")

    source: dict[str, Any] = doc.setdefault("source", {})
    destination: dict[str, Any] = doc.setdefault("destination", {})
    if "dstip" in fw:
        dst_ip = normalize_ip(fw["dstip"])
        if dst_ip is not None:
            del fw["dstip"]
            destination["ip"] = dst_ip
    if "tranip" in fw:
        nat_ip = normalize_ip(fw["tranip"])
        if nat_ip is not None:
            destination["nat"] = {"ip": nat_ip}
    _move_ints(fw, destination, _TRAFFIC_DESTINATION_NUMBERS)
    if "tranport" in fw:
        nat_port = _pop_int(fw, "tranport")
        if nat_port is not None:
            destination.setdefault("nat", {})["port"] = nat_port
    if "dstcollectedemail" in fw:
        set_field(doc, "email.to.address", [fw["dstcollectedemail"]])
    if "dstname" in fw:
        destination["address"] = pop("dstname")
    if "dstunauthuser" in fw:
        destination["user"] = {"name": pop("dstunauthuser")}
    if "group" in fw:
        source["user"] = {"group": {"name": pop("group")}}
    if "srcdomain" in fw:
        source["domain"] = pop("srcdomain")
    if "srcip" in fw:
        src_ip = normalize_ip(fw["srcip"])
        if src_ip is not None:
            del fw["srcip"]
            source["ip"] = src_ip
    if "srcmac" in fw:
        source["mac"] = pop("srcmac")
    _move_ints(fw, source, _TRAFFIC_SOURCE_NUMBERS)
    user = pop("unauthuser") if "unauthuser" in fw else pop("user", None)
    if user is not None:
        source.setdefault("user", {})["name"] = user
    if "collectedemail" in fw:
        set_field(doc, "email.from.address", [fw["collectedemail"]])
    if "transip" in fw:
        src_nat_ip = normalize_ip(fw["transip"])
        if src_nat_ip is not None:
            source["nat"] = {"ip": src_nat_ip}
    if "transport" in fw:
        src_nat_port = _pop_int(fw, "transport")
        if src_nat_port is not None:
            source.setdefault("nat", {})["port"] = src_nat_port
    if "app" in fw:
        doc.setdefault("network", {})["application"] = pop("app")
    if "filename" in fw:
        doc.setdefault("file", {})["name"] = pop("filename")
    if "code" not in event and "logid" in fw:
        event["code"] = pop("logid")
    rule: dict[str, Any] = doc.setdefault("rule", {})
    for key, field in _TRAFFIC_RULE_FIELDS:
        if key in fw:
            rule[field] = pop(key)
    if "appcat" in fw:
        rule["category"] = pop("appcat").replace(".", "-")
    if "proto" in fw or "service" in fw:
        _network_basics(fw, doc)
    if "srcthreatfeed" in fw:
        set_field(doc, "threat.feed.name", pop("srcthreatfeed"))
    if "url" in fw:
        url = pop("url")
        _set_url(doc, url, uri="://" in url)


_DNS_QUESTION_FIELDS = (("qclass", "class"), ("qname", "name"), ("qtype", "type"))


def _utm_fields(fw: dict[str, Any], doc: EcsDoc, event: dict[str, Any]) -> None:
    pop = fw.pop
    keys = fw.keys()
    event["kind"] = "event"
    action = fw.get("action")
    types: list[str] = event.setdefault("type", [])
    if action == "block" or action == "blocked":
        types.append("denied")
    if fw.get("subtype") == "dns":
        types.append("info")
    if action == "pass" or action == "passthrough":
        types.append("allowed")
    if action is not None:
        event["outcome"] = "success"
    categories: list[str] = event.setdefault("category", [])
    categories.append("network")

    source: dict[str, Any] = doc.setdefault("source", {})
    destination: dict[str, Any] = doc.setdefault("destination", {})
    dst_ip = _pop_ip(fw, ("dstip", "remip"))
    if dst_ip is not None:
        destination["ip"] = dst_ip
    dst_port = _pop_ints(fw, ("dst_port", "remport", "dstport"))
    if dst_port is not None:
        destination["port"] = dst_port
    if "rcvdbyte" in fw:
        rcvd = _pop_int(fw, "rcvdbyte")
        if rcvd is not None:
            destination["bytes"] = rcvd
    if "recipient" in fw:
        set_field(doc, "email.to.address", [pop("recipient")])
    if "group" in fw:
        source["user"] = {"group": {"name": pop("group")}}
    src_ip = _pop_ip(fw, ("locip", "srcip"))
    if src_ip is not None:
        source["ip"] = src_ip
    src_port = _pop_ints(fw, ("locport", "src_port", "srcport"))
    if src_port is not None:
        source["port"] = src_port
    if "sentbyte" in fw:
        sent = _pop_int(fw, "sentbyte")
        if sent is not None:
            source["bytes"] = sent
    if "srcdomain" in fw:
        source["domain"] = pop("srcdomain")
    if "httpmethod" in fw:
        set_field(doc, "http.request.method", pop("httpmethod"))
    if "referralurl" in fw:
        set_field(doc, "http.request.referrer", pop("referralurl"))
    if "srcmac" in fw:
        source["mac"] = pop("srcmac")
    user = pop("unauthuser") if "unauthuser" in fw else pop("user", None)
    if user is not None:
        source.setdefault("user", {})["name"] = user
    if "sender" in fw:
        set_field(doc, "email.sender.address", [fw["sender"]])
    if "from" in fw:
        set_field(doc, "email.from.address", [fw["from"]])
    if "agent" in fw:
        doc["user_agent"] = {"original": pop("agent")}
    if "app" in fw:
        doc.setdefault("network", {})["application"] = pop("app")
    rule: dict[str, Any] = doc.setdefault("rule", {})
    category = pop("appcat") if "appcat" in fw else pop("catdesc", None)
    if category is not None:
        rule["category"] = category.replace(".", "-")
    if "applist" in fw:
        rule["ruleset"] = pop("applist")
    if "errorcode" in fw:
        event["code"] = pop("errorcode")
    event_id = pop("event_id") if "event_id" in fw else pop("eventid", None)
    if event_id is not None:
        event["id"] = event_id
    if not keys.isdisjoint(_UTM_FILE_KEYS):
        _utm_file(fw, doc)
    if "hostname" in fw:
        doc.setdefault("url", {})["domain"] = pop("hostname")
    if "ipaddr" in fw:
        resolved = [normalize_ip(part) for part in fw["ipaddr"].split(", ")]
        if None not in resolved:
            del fw["ipaddr"]
            doc.setdefault("dns", {})["resolved_ip"] = resolved
    if "code" not in event and "logid" in fw:
        event["code"] = pop("logid")
    policy = pop("policy_id") if "policy_id" in fw else pop("policyid", None)
    if policy is not None:
        rule["id"] = policy
    if "ruleset" not in rule and "profile" in fw:
        rule["ruleset"] = pop("profile")
    if "proto" in fw or "service" in fw:
        _network_basics(fw, doc)
    question = {field: pop(key) for key, field in _DNS_QUESTION_FIELDS if key in fw}
    if question:
        doc.setdefault("dns", {})["question"] = question
    if "url" in fw:
        url = pop("url")
        _set_url(doc, url, uri="://" in url)
    if "xid" in fw:
        doc.setdefault("dns", {})["id"] = pop("xid")
    if not keys.isdisjoint(_UTM_TLS_KEYS):
        _utm_tls(fw, doc)
    if "dtype" in fw:
        set_field(doc, "vulnerability.category", [pop("dtype")])
    if "ref" in fw:
        event["reference"] = pop("ref")
    if "filehash" in fw:
        filehash = pop("filehash")
        set_field(doc, "fortinet.file.hash.crc32", filehash)
        append_unique(doc, "related.hash", filehash)


def _utm_file(fw: dict[str, Any], doc: EcsDoc) -> None:
    """`file.*` from the keys in `_UTM_FILE_KEYS` (keep that set in step with this code)."""
    pop = fw.pop
    file: dict[str, Any] = {}
    name = pop("filename", None) or pop("infectedfilename", None) or pop("matchedfilename", None)
    if name is not None:
        file["name"] = name
    size = _pop_int(fw, "filesize")
    if size is None:
        size = _pop_int(fw, "infectedfilesize")
    if size is not None:
        file["size"] = size
    extension = (
        pop("filetype", None) or pop("infectedfiletype", None) or pop("matchedfiletype", None)
    )
    if extension is not None:
        file["extension"] = extension
    if file:
        _section(doc, "file").update(file)


def _utm_tls(fw: dict[str, Any], doc: EcsDoc) -> None:
    """`tls.*` from the keys in `_UTM_TLS_KEYS` (keep that set in step with this code)."""
    pop = fw.pop
    server: dict[str, Any] = {}
    server_x509: dict[str, Any] = {}
    client: dict[str, Any] = {}
    tls: dict[str, Any] = {}
    common_name = pop("scertcname", None)
    if common_name is not None:
        server_x509["subject"] = {"common_name": [common_name]}
    issuer = pop("scertissuer", None) or pop("issuer", None)
    if issuer is not None:
        server["issuer"] = issuer
        server_x509["issuer"] = {"common_name": [issuer]}
    client_issuer = pop("ccertissuer", None)
    if client_issuer is not None:
        client["issuer"] = client_issuer
        client["x509"] = {"issuer": {"common_name": [client_issuer]}}
    algorithm = pop("authalgo", None) or pop("keyalgo", None)
    if algorithm is not None:
        server_x509["public_key_algorithm"] = algorithm
        client.setdefault("x509", {})["public_key_algorithm"] = algorithm
    for key, target in (("notbefore", "not_before"), ("notafter", "not_after")):
        value = pop(key, None)
        if value is not None:
            server[target] = value
            server_x509[target] = value
    keysize = fw.get("keysize")
    if keysize is not None:
        number = _to_int(keysize)
        server_x509["public_key_size"] = number if number is not None else keysize
        del fw["keysize"]
    serial = pop("sn", None)
    if serial is not None:
        server_x509["serial_number"] = serial
    certhash = pop("certhash", None)
    if certhash is not None:
        server["hash"] = {"sha1": certhash}
        append_unique(doc, "related.hash", certhash)
    names: list[str] = []
    san = pop("san", None)
    if san is not None:
        names.extend(san.split(";"))
    cn = pop("cn", None)
    if cn is not None and cn not in names:
        names.append(cn)
    if names:
        server_x509["alternative_names"] = names
    for key, target in (("kxcurve", "curve"), ("cipher", "cipher")):
        value = pop(key, None)
        if value is not None:
            tls[target] = value
    sni = pop("sni", None)
    if sni is not None:
        client["server_name"] = sni
        destination = _section(doc, "destination")
        destination.setdefault("domain", sni)
    if fw.get("handshake") == "full":
        tls["established"] = True
    tlsver = pop("tlsver", None)
    if tlsver is not None:
        match = re.search(r"\d+", tlsver)
        if match is not None:
            lowered = tlsver.lower()
            version = lowered[match.start() :]
            tls["version_protocol"] = lowered[: match.start()]
            tls["version"] = version if "." in version else version + ".0"
    if server_x509:
        server["x509"] = server_x509
    if server:
        tls["server"] = server
    if client:
        tls["client"] = client
    if tls:
        doc["tls"] = tls


def _network_basics(fw: dict[str, Any], doc: EcsDoc) -> None:
    """`proto` -> network.iana_number, `service` -> network.protocol (lower case)."""
    proto = fw.pop("proto", None)
    service = fw.pop("service", None)
    if proto is None and service is None:
        return
    network = doc.setdefault("network", {})
    if proto is not None:
        network["iana_number"] = proto
    if service is not None:
        network["protocol"] = service.lower()


def _set_url(doc: EcsDoc, url: str, *, uri: bool) -> None:
    """`url.*` from an absolute URI (scheme, domain, port, path, query, fragment, user info),
    otherwise `url.path` (FortiGate logs the path and the host separately), or `url.original`
    when the text is not a URI."""
    target = _section(doc, "url")
    if not uri:
        target["path"] = url
        return
    match = _URL_RE.fullmatch(url)
    if match is None:
        target["original"] = url
        return
    parts = match.groupdict()
    target["scheme"] = parts["scheme"]
    host = parts["host"]
    if host:
        target["domain"] = host.strip("[]")
    port = _to_int(parts["port"]) if parts["port"] else None
    if port is not None:
        target["port"] = port
    if parts["path"]:
        target["path"] = parts["path"]
    if parts["query"]:
        target["query"] = parts["query"]
    if parts["fragment"]:
        target["fragment"] = parts["fragment"]
    userinfo = parts["userinfo"]
    if userinfo:
        username, _, password = userinfo.partition(":")
        target["username"] = username
        if password:
            target["password"] = password
    path = parts["path"]
    if path and "." in path.rsplit("/", 1)[-1]:
        target["extension"] = path.rsplit(".", 1)[-1]


def _finish(
    fw: dict[str, Any],
    doc: EcsDoc,
    event: dict[str, Any],
    observer: dict[str, Any],
    ctx: SourceContext,
) -> None:
    pop = fw.pop
    if "action" not in event and "eventtype" in fw:
        event["action"] = pop("eventtype")
    if "reason" not in event:
        reason = pop("reason") if "reason" in fw else pop("eventsubtype", None)
        if reason is not None:
            event["reason"] = reason

    source = doc.get("source") or {}
    destination = doc.get("destination") or {}
    network = doc.get("network") or {}
    direction = pop("dir") if "dir" in fw else pop("direction", None)
    if direction is None and "ip" in source and "ip" in destination:
        direction = network_direction(source["ip"], destination["ip"], ctx.internal_networks)
    if direction is not None:
        direction = direction.lower()
        direction = _DIRECTION_ALIASES.get(direction, direction)
        if direction not in _ECS_DIRECTIONS:
            direction = "unknown"
        network["direction"] = direction
        if "interface" in fw:
            interface = pop("interface")
            if direction in _INGRESS_DIRECTIONS and "ingress" not in observer:
                observer["ingress"] = {"interface": {"name": interface}}
            elif direction in _EGRESS_DIRECTIONS and "egress" not in observer:
                observer["egress"] = {"interface": {"name": interface}}
            else:
                fw["interface"] = interface

    role = fw.get("srcintfrole")
    if role is not None and role != "undefined":
        observer.setdefault("ingress", {})["zone"] = role
    role = fw.get("dstintfrole")
    if role is not None and role != "undefined":
        observer.setdefault("egress", {})["zone"] = role

    if not fw.keys().isdisjoint(_LONG_FIELDS):
        for key in fw.keys() & _LONG_FIELDS:
            number = _to_int(fw[key])
            if number is not None:
                fw[key] = number

    if "bytes" in source and "bytes" in destination:
        total = source["bytes"] + destination["bytes"]
        if total <= _MAX_LONG:
            network["bytes"] = total
    if "packets" in source and "packets" in destination:
        total = source["packets"] + destination["packets"]
        if total <= _MAX_LONG:
            network["packets"] = total
    if "iana_number" in network:
        transport = iana_protocol_name(network["iana_number"])
        if transport is not None:
            network["transport"] = transport
    if network:
        doc["network"] = network
    if "mac" in source:
        source["mac"] = source["mac"].upper().replace(":", "-").replace(".", "-")

    if "user" in source and "name" in source["user"]:
        doc.setdefault("user", {}).setdefault("name", source["user"]["name"])

    _related(fw, doc, source, destination)
    if fw:
        doc.setdefault("fortinet", {})["firewall"] = fw
    _prune(doc)


def _related(
    fw: dict[str, Any],
    doc: EcsDoc,
    source: dict[str, Any],
    destination: dict[str, Any],
) -> None:
    """`related.ip`, `related.user`, `related.hosts` (in Elastic's order, without duplicates)."""
    ips = []
    if "ip" in source:
        ips.append(source["ip"])
    if "ip" in destination:
        ips.append(destination["ip"])
    if "nat" in source and "ip" in source["nat"]:
        ips.append(source["nat"]["ip"])
    if "nat" in destination and "ip" in destination["nat"]:
        ips.append(destination["nat"]["ip"])
    for key in ("ip", "assignip", "tunnelip"):
        if key in fw:
            address = normalize_ip(fw[key])
            if address is not None:
                ips.append(address)
    dns = doc.get("dns")
    if dns is not None and "resolved_ip" in dns:
        ips.extend(dns["resolved_ip"])
    users = []
    if "user" in source and "name" in source["user"]:
        users.append(source["user"]["name"])
    if "user" in destination and "name" in destination["user"]:
        users.append(destination["user"]["name"])
    if "user" in doc and "name" in doc["user"]:
        users.append(doc["user"]["name"])
    hosts = []
    if "address" in destination:
        hosts.append(destination["address"])
    if "address" in source:
        hosts.append(source["address"])
    if "host" in doc and "name" in doc["host"]:
        hosts.append(doc["host"]["name"])
    if dns is not None and "question" in dns and "name" in dns["question"]:
        hosts.append(dns["question"]["name"])
    if not (ips or users or hosts):
        return
    related = doc.get("related") or {}
    if ips:
        related["ip"] = _distinct(ips)
    if users:
        related["user"] = _distinct(users)
    if hosts:
        related["hosts"] = _distinct(hosts)
    doc["related"] = related


def _distinct(values: list[Any]) -> list[Any]:
    """`values` without repeats, in order of first occurrence."""
    if len(values) == 2:
        return values if values[0] != values[1] else values[:1]
    return list(dict.fromkeys(values)) if len(values) > 2 else values


# Sections `_build` may leave empty (the others are created with their first field).
_MAYBE_EMPTY = ("source", "destination", "rule", "user", "log")


def _prune(doc: EcsDoc) -> None:
    """Drop empty sections and empty `event.category` / `event.type` lists."""
    event = doc["event"]
    if not event.get("category", True):
        del event["category"]
    if not event.get("type", True):
        del event["type"]
    for key in _MAYBE_EMPTY:
        if not doc.get(key, True):
            del doc[key]
