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
from datetime import UTC
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
            header = _RFC5424_RE.match(body)
            if header is not None:
                host = header.group(1)
                syslog_host = None if host == "-" else host
                body = body[header.end() :]
    body = strip_controls(body)
    pairs = parse_kv(body)
    if not pairs:
        raise ParseError("no key=value pairs in FortiGate message")
    fw = {k: v for k, v in pairs.items() if v != "N/A"} if "N/A" in pairs.values() else pairs
    return _build(message, fw, priority, syslog_host, ctx)


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


def _seconds_to_nanos(seconds: int | None) -> int | None:
    """`event.duration` (nanoseconds) from seconds, when it fits a long."""
    if seconds is None or seconds * 1_000_000_000 > _MAX_LONG:
        return None
    return seconds * 1_000_000_000


def _pop_ip(fw: dict[str, Any], key: str) -> str | None:
    """Pop `key` as a canonical IP; a value that is not an address stays in `fw`."""
    value = fw.get(key)
    if value is None:
        return None
    address = normalize_ip(value)
    if address is not None:
        del fw[key]
    return address


def _section(doc: EcsDoc, name: str) -> dict[str, Any]:
    section: dict[str, Any] = doc.setdefault(name, {})
    return section


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
    tz_text = pop("tz", None)
    device_tz = None
    if tz_text is not None:
        tz_text = offset_text(tz_text)
        event["timezone"] = tz_text
        device_tz = parse_utc_offset(tz_text)
    tz = device_tz or ctx.tz or UTC
    date_text, time_text = fw.get("date"), fw.get("time")
    timestamp = None
    if date_text is not None and time_text is not None:
        timestamp = wallclock_timestamp(date_text, time_text, tz)
        if timestamp is not None:
            del fw["date"], fw["time"]
    eventtime = fw.get("eventtime")
    if eventtime is not None:
        start = epoch_timestamp(eventtime, tz)
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
    level = pop("level", None)
    if level is not None:
        log["level"] = level
    doc["log"] = log

    name = pop("devname", None) or syslog_host
    if name is not None:
        observer["name"] = name
    serial = pop("devid", None)
    if serial is not None:
        observer["serial_number"] = serial
    if ctx.observer_ip:
        observer_ip = normalize_ip(ctx.observer_ip)
        if observer_ip is not None:
            observer["ip"] = [observer_ip]
    egress = pop("dst_int", None) or pop("dstintf", None)
    ingress = pop("src_int", None) or pop("srcintf", None)
    if egress is not None:
        observer["egress"] = {"interface": {"name": egress}}
    if ingress is not None:
        observer["ingress"] = {"interface": {"name": ingress}}
    duration = _seconds_to_nanos(_to_int(fw.get("duration")))
    if duration is not None and duration >= 0:
        del fw["duration"]
        event["duration"] = duration
    if "subject" in fw:
        set_field(doc, "email.subject", fw["subject"])
    if "cc" in fw:
        set_field(doc, "email.cc.address", [fw["cc"]])
    srcname = fw.get("srcname")
    if srcname is not None:
        doc["host"] = {"name": srcname.lower()}
    msg = pop("msg", None)
    if msg is not None:
        doc["message"] = msg
    dstmac = pop("dstmac", None)
    if dstmac is not None:
        _section(doc, "destination")["mac"] = dstmac.replace(":", "-").upper()

    log_type = fw.get("type")
    if log_type == "event":
        _event_fields(fw, doc, event)
    if msg is not None:
        lowered = msg.lower()
        if "login" in lowered or "logged in" in lowered:
            _login_fields(fw, doc, event, log, observer, msg)
    if log_type == "traffic":
        _traffic_fields(fw, doc, event)
    elif log_type in ("utm", "dns"):
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
    if result == "OK" or action in _LOGON_ACTIONS or action in _LOGOFF_ACTIONS:
        event["outcome"] = "success"
    if action in _LOGON_ACTIONS:
        types.append("start")
    if action in _LOGOFF_ACTIONS:
        types.append("end")
    if subtype == "vpn":
        types.append("connection")
        categories.append("network")
    if action == "perf-stats":
        types.append("info")
        categories.append("host")
    if subtype == "update":
        types.append("info")
        categories.extend(("host", "malware"))
    if subtype == "user":
        categories.append("authentication")

    source = _section(doc, "source")
    destination = _section(doc, "destination")
    dst_ip = _pop_ip(fw, "dstip") or _pop_ip(fw, "remip")
    if dst_ip is not None:
        destination["ip"] = dst_ip
    dst_port = _pop_int(fw, "dstport")
    remport = _pop_int(fw, "remport")
    if dst_port is None:
        dst_port = remport
    if dst_port is not None:
        destination["port"] = dst_port
    rcvd = _pop_int(fw, "rcvdbyte")
    if rcvd is not None:
        destination["bytes"] = rcvd
    address = pop("daddr", None) or pop("dst_host", None)
    if address is not None:
        destination["address"] = address
    group = pop("group", None)
    if group is not None:
        source["user"] = {"group": {"name": group}}
    sent = _pop_int(fw, "sentbyte")
    if sent is not None:
        source["bytes"] = sent
    src_ip = _pop_ip(fw, "srcip") or _pop_ip(fw, "locip")
    if src_ip is not None:
        source["ip"] = src_ip
    mac = pop("srcmac", None) or pop("source_mac", None)
    if mac is not None:
        source["mac"] = mac
    src_port = _pop_int(fw, "srcport")
    locport = _pop_int(fw, "locport")
    if src_port is None:
        src_port = locport
    if src_port is not None:
        source["port"] = src_port
    user = pop("user", None)
    if user is not None:
        source.setdefault("user", {})["name"] = user
    saddr = pop("saddr", None)
    if saddr is not None:
        source["address"] = saddr
    agent = pop("agent", None)
    if agent is not None:
        doc["user_agent"] = {"original": agent}
    file_name = pop("file", None)
    if file_name is not None:
        _section(doc, "file")["name"] = file_name
    file_size = _pop_int(fw, "filesize")
    if file_size is not None:
        _section(doc, "file")["size"] = file_size
    if "code" not in event:
        logid = pop("logid", None)
        if logid is not None:
            event["code"] = logid
    rule = _section(doc, "rule")
    policy = pop("policyid", None)
    if policy is not None:
        rule["id"] = policy
    _network_basics(fw, doc)
    error_num = pop("error_num", None)
    if error_num is not None:
        set_field(doc, "error.code", error_num)
    logdesc = pop("logdesc", None)
    if logdesc is not None:
        rule["description"] = logdesc
    addr = fw.get("addr")
    if addr is not None and "addrgrp" not in fw and normalize_ip(addr) is None:
        fw["addrgrp"] = pop("addr")
    url = pop("url", None)
    if url is not None:
        _set_url(doc, url, uri=True)
    hostname = pop("hostname", None)
    if hostname is not None:
        _section(doc, "url")["domain"] = hostname
    if "duration" not in event:
        sess_duration = _seconds_to_nanos(_to_int(fw.get("sess_duration")))
        if sess_duration is not None and sess_duration >= 0:
            del fw["sess_duration"]
            event["duration"] = sess_duration
    mem = _to_int(fw.get("mem"))
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
    source = _section(doc, "source")
    user = _section(doc, "user")
    source_user = source.get("user", {}).get("name")
    if source_user is not None:
        user["name"] = source_user
    roles: list[str] = []
    adminprof = pop("adminprof", None)
    if adminprof is not None:
        roles.append(adminprof)
    outcome: str | None = None
    userfrom = pop("userfrom", None)
    if userfrom is not None:
        match = _USERFROM_RE.fullmatch(userfrom)
        if match is not None and normalize_ip(match.group(1)) is not None:
            source["ip"] = normalize_ip(match.group(1))
    desc = fw.get("desc")
    if msg.startswith("user") and desc is not None and desc.startswith(_DESC_OUTCOME_PREFIX):
        outcome = desc[len(_DESC_OUTCOME_PREFIX) :]
    login_user: str | None = None
    address: str | None = None
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
    if address is not None and normalize_ip(address) is not None:
        source["ip"] = normalize_ip(address)
    if port is not None and _to_int(port) is not None:
        source["port"] = _to_int(port)
    if outcome is not None:
        lowered_outcome = outcome.lower()
        if lowered_outcome.startswith("fail"):
            event["outcome"] = "failure"
        elif lowered_outcome.startswith("success"):
            event["outcome"] = "success"
    log_id = pop("log_id", None)
    if log_id is not None:
        event["id"] = log_id
    pri = pop("pri", None)
    if pri is not None:
        log["level"] = pri
    device_id = pop("device_id", None)
    if device_id is not None:
        observer["serial_number"] = device_id
    if roles:
        user["roles"] = list(roles)
        source.setdefault("user", {})["roles"] = list(roles)
    valid = _to_int(fw.get("valid"))
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

    source = _section(doc, "source")
    destination = _section(doc, "destination")
    dst_ip = _pop_ip(fw, "dstip")
    if dst_ip is not None:
        destination["ip"] = dst_ip
    nat_ip = normalize_ip(fw["tranip"]) if "tranip" in fw else None
    if nat_ip is not None:
        destination["nat"] = {"ip": nat_ip}
    for key, target in (("dstport", "port"), ("rcvdbyte", "bytes"), ("rcvdpkt", "packets")):
        number = _pop_int(fw, key)
        if number is not None:
            destination[target] = number
    nat_port = _pop_int(fw, "tranport")
    if nat_port is not None:
        destination.setdefault("nat", {})["port"] = nat_port
    if "dstcollectedemail" in fw:
        set_field(doc, "email.to.address", [fw["dstcollectedemail"]])
    dstname = pop("dstname", None)
    if dstname is not None:
        destination["address"] = dstname
    dst_user = pop("dstunauthuser", None)
    if dst_user is not None:
        destination["user"] = {"name": dst_user}
    group = pop("group", None)
    if group is not None:
        source["user"] = {"group": {"name": group}}
    srcdomain = pop("srcdomain", None)
    if srcdomain is not None:
        source["domain"] = srcdomain
    src_ip = _pop_ip(fw, "srcip")
    if src_ip is not None:
        source["ip"] = src_ip
    mac = pop("srcmac", None)
    if mac is not None:
        source["mac"] = mac
    for key, target in (("srcport", "port"), ("sentbyte", "bytes"), ("sentpkt", "packets")):
        number = _pop_int(fw, key)
        if number is not None:
            source[target] = number
    user = pop("unauthuser", None) or pop("user", None)
    if user is not None:
        source.setdefault("user", {})["name"] = user
    if "collectedemail" in fw:
        set_field(doc, "email.from.address", [fw["collectedemail"]])
    src_nat_ip = normalize_ip(fw["transip"]) if "transip" in fw else None
    if src_nat_ip is not None:
        source["nat"] = {"ip": src_nat_ip}
    src_nat_port = _pop_int(fw, "transport")
    if src_nat_port is not None:
        source.setdefault("nat", {})["port"] = src_nat_port
    app = pop("app", None)
    if app is not None:
        _section(doc, "network")["application"] = app
    filename = pop("filename", None)
    if filename is not None:
        _section(doc, "file")["name"] = filename
    if "code" not in event:
        logid = pop("logid", None)
        if logid is not None:
            event["code"] = logid
    rule = _section(doc, "rule")
    for key, target in (
        ("comment", "description"),
        ("policyid", "id"),
        ("poluuid", "uuid"),
        ("policytype", "ruleset"),
        ("policyname", "name"),
    ):
        value = pop(key, None)
        if value is not None:
            rule[target] = value
    appcat = pop("appcat", None)
    if appcat is not None:
        rule["category"] = appcat.replace(".", "-")
    _network_basics(fw, doc)
    feed = pop("srcthreatfeed", None)
    if feed is not None:
        set_field(doc, "threat.feed.name", feed)
    url = pop("url", None)
    if url is not None:
        _set_url(doc, url, uri="://" in url)


def _utm_fields(fw: dict[str, Any], doc: EcsDoc, event: dict[str, Any]) -> None:
    pop = fw.pop
    event["kind"] = "event"
    action = fw.get("action")
    types: list[str] = event.setdefault("type", [])
    if action in ("block", "blocked"):
        types.append("denied")
    if fw.get("subtype") == "dns":
        types.append("info")
    if action in ("pass", "passthrough"):
        types.append("allowed")
    if action is not None:
        event["outcome"] = "success"
    categories: list[str] = event.setdefault("category", [])
    categories.append("network")

    source = _section(doc, "source")
    destination = _section(doc, "destination")
    dst_ip = _pop_ip(fw, "dstip") or _pop_ip(fw, "remip")
    if dst_ip is not None:
        destination["ip"] = dst_ip
    ports = [_pop_int(fw, key) for key in ("dst_port", "remport", "dstport")]
    dst_port = next((p for p in ports if p is not None), None)
    if dst_port is not None:
        destination["port"] = dst_port
    rcvd = _pop_int(fw, "rcvdbyte")
    if rcvd is not None:
        destination["bytes"] = rcvd
    recipient = pop("recipient", None)
    if recipient is not None:
        set_field(doc, "email.to.address", [recipient])
    group = pop("group", None)
    if group is not None:
        source["user"] = {"group": {"name": group}}
    src_ip = _pop_ip(fw, "locip") or _pop_ip(fw, "srcip")
    if src_ip is not None:
        source["ip"] = src_ip
    ports = [_pop_int(fw, key) for key in ("locport", "src_port", "srcport")]
    src_port = next((p for p in ports if p is not None), None)
    if src_port is not None:
        source["port"] = src_port
    sent = _pop_int(fw, "sentbyte")
    if sent is not None:
        source["bytes"] = sent
    srcdomain = pop("srcdomain", None)
    if srcdomain is not None:
        source["domain"] = srcdomain
    method = pop("httpmethod", None)
    if method is not None:
        set_field(doc, "http.request.method", method)
    referrer = pop("referralurl", None)
    if referrer is not None:
        set_field(doc, "http.request.referrer", referrer)
    mac = pop("srcmac", None)
    if mac is not None:
        source["mac"] = mac
    user = pop("unauthuser", None) or pop("user", None)
    if user is not None:
        source.setdefault("user", {})["name"] = user
    if "sender" in fw:
        set_field(doc, "email.sender.address", [fw["sender"]])
    if "from" in fw:
        set_field(doc, "email.from.address", [fw["from"]])
    agent = pop("agent", None)
    if agent is not None:
        doc["user_agent"] = {"original": agent}
    app = pop("app", None)
    if app is not None:
        _section(doc, "network")["application"] = app
    rule = _section(doc, "rule")
    category = pop("appcat", None) or pop("catdesc", None)
    if category is not None:
        rule["category"] = category.replace(".", "-")
    applist = pop("applist", None)
    if applist is not None:
        rule["ruleset"] = applist
    errorcode = pop("errorcode", None)
    if errorcode is not None:
        event["code"] = errorcode
    event_id = pop("event_id", None) or pop("eventid", None)
    if event_id is not None:
        event["id"] = event_id
    if not fw.keys().isdisjoint(_UTM_FILE_KEYS):
        _utm_file(fw, doc)
    hostname = pop("hostname", None)
    if hostname is not None:
        _section(doc, "url")["domain"] = hostname
    ipaddr = fw.get("ipaddr")
    if ipaddr is not None:
        resolved = [normalize_ip(part) for part in ipaddr.split(", ")]
        if resolved and None not in resolved:
            del fw["ipaddr"]
            _section(doc, "dns")["resolved_ip"] = resolved
    if "code" not in event:
        logid = pop("logid", None)
        if logid is not None:
            event["code"] = logid
    policy = pop("policy_id", None) or pop("policyid", None)
    if policy is not None:
        rule["id"] = policy
    if "ruleset" not in rule:
        profile = pop("profile", None)
        if profile is not None:
            rule["ruleset"] = profile
    _network_basics(fw, doc)
    question: dict[str, Any] = {}
    for key, target in (("qclass", "class"), ("qname", "name"), ("qtype", "type")):
        value = pop(key, None)
        if value is not None:
            question[target] = value
    if question:
        _section(doc, "dns")["question"] = question
    url = pop("url", None)
    if url is not None:
        _set_url(doc, url, uri="://" in url)
    xid = pop("xid", None)
    if xid is not None:
        _section(doc, "dns")["id"] = xid
    if not fw.keys().isdisjoint(_UTM_TLS_KEYS):
        _utm_tls(fw, doc)
    dtype = pop("dtype", None)
    if dtype is not None:
        set_field(doc, "vulnerability.category", [dtype])
    ref = pop("ref", None)
    if ref is not None:
        event["reference"] = ref
    filehash = pop("filehash", None)
    if filehash is not None:
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
    network = _section(doc, "network")
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
    if "action" not in event:
        eventtype = pop("eventtype", None)
        if eventtype is not None:
            event["action"] = eventtype
    if "reason" not in event:
        reason = pop("reason", None) or pop("eventsubtype", None)
        if reason is not None:
            event["reason"] = reason

    source = doc.get("source") or {}
    destination = doc.get("destination") or {}
    network = doc.get("network") or {}
    direction = pop("dir", None) or pop("direction", None)
    if direction is None:
        direction = network_direction(
            source.get("ip"), destination.get("ip"), ctx.internal_networks
        )
    if direction is not None:
        direction = direction.lower()
        direction = _DIRECTION_ALIASES.get(direction, direction)
        if direction not in _ECS_DIRECTIONS:
            direction = "unknown"
        network["direction"] = direction
        interface = pop("interface", None)
        if interface is not None:
            if direction in _INGRESS_DIRECTIONS and "ingress" not in observer:
                observer["ingress"] = {"interface": {"name": interface}}
            elif direction in _EGRESS_DIRECTIONS and "egress" not in observer:
                observer["egress"] = {"interface": {"name": interface}}
            else:
                fw["interface"] = interface

    for role_key, side in (("srcintfrole", "ingress"), ("dstintfrole", "egress")):
        role = fw.get(role_key)
        if role is not None and role != "undefined":
            observer.setdefault(side, {})["zone"] = role

    for key in fw.keys() & _LONG_FIELDS:
        number = _to_int(fw[key])
        if number is not None:
            fw[key] = number

    for counter in ("bytes", "packets"):
        if counter in source and counter in destination:
            total = source[counter] + destination[counter]
            if total <= _MAX_LONG:
                network[counter] = total
    iana = network.get("iana_number")
    if iana is not None:
        transport = iana_protocol_name(iana)
        if transport is not None:
            network["transport"] = transport
    if network:
        doc["network"] = network
    mac = source.get("mac")
    if mac is not None:
        source["mac"] = mac.upper().replace(":", "-").replace(".", "-")

    source_user = source.get("user", {}).get("name")
    if source_user is not None:
        user = _section(doc, "user")
        user.setdefault("name", source_user)

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
    ips = [source.get("ip"), destination.get("ip")]
    for side in (source, destination):
        nat = side.get("nat")
        if nat is not None:
            ips.append(nat.get("ip"))
    for key in ("ip", "assignip", "tunnelip"):
        if key in fw:
            ips.append(normalize_ip(fw[key]))
    dns = doc.get("dns")
    if dns is not None:
        ips.extend(dns.get("resolved_ip") or ())
    users = []
    for holder in (source, destination, doc):
        user = holder.get("user")
        if user is not None:
            users.append(user.get("name"))
    hosts = [destination.get("address"), source.get("address")]
    host = doc.get("host")
    if host is not None:
        hosts.append(host.get("name"))
    if dns is not None:
        hosts.append(dns.get("question", {}).get("name"))
    related = doc.get("related") or {}
    for key, values in (("ip", ips), ("user", users), ("hosts", hosts)):
        unique = [v for v in dict.fromkeys(values) if v is not None]
        if unique:
            related[key] = unique
    if related:
        doc["related"] = related


# Sections `_build` may leave empty.
_MAYBE_EMPTY = ("source", "destination", "rule", "user", "log", "url", "file", "dns", "email")


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
