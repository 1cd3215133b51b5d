"""Cisco IOS / IOS XE syslog (`%FACILITY-SEVERITY-MNEMONIC: text`) to ECS, as Elastic's
`cisco_ios` integration maps it.

Input: one message as received over syslog or read from a file:
`<PRI>count: `, a syslog timestamp and host, the router's sequence number, its own timestamp
(`*Mar  1 18:46:11.123 UTC`) or uptime, then `%FAC-SEV-MNEMONIC: text`. Output: the ECS document
with `cisco.ios.*` as Elastic keeps it. Access-list log lines (`%SEC-6-IPACCESSLOGP` and its
IPv6 / IOS XE `FMANFP` variants), TCP MD5 failures (`BADAUTH`), logins (`LOGIN_SUCCESS`),
logouts and PIM RP joins are parsed by a table of patterns keyed by mnemonic (`_PATTERNS`).

Deliberate differences from Elastic's pipeline (none changes a compared field of the corpus):

- Additions for the edge routers' operational messages, which Elastic keeps as text only:
  `LINK-*-UPDOWN` / `LINEPROTO-*-UPDOWN` (`cisco.ios.interface.name`, `cisco.ios.state`),
  `BGP-*-ADJCHANGE` and `OSPF-*-ADJCHG` (`cisco.ios.neighbor.ip`, `cisco.ios.state`),
  `SYS-*-CONFIG_I` (`source.user.name`, `source.ip`, `event.action` "configuration-change")
  and `SEC_LOGIN-*-LOGIN_FAILED` (as `LOGIN_SUCCESS`, with `event.reason`). `LOGIN_SUCCESS` /
  `LOGIN_FAILED` also set `event.outcome`.
- A year-less router timestamp takes the current year (a December message read in January
  belongs to last year). Time zone abbreviations other than UTC/GMT and the US zones are not
  known; such timestamps are read in `ctx.tz` (UTC when unset).
- GeoIP/ASN enrichment and `network.community_id` are not produced.
- `event.dataset` / `event.module` are set ("cisco_ios.log" / "cisco_ios").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from collectors.ecs import MONTHS, format_timestamp, normalize_ip, year_for_month, zone_name
from collectors.parsing import EcsDoc, ParseError, SourceContext

DATASET = "cisco_ios.log"
MODULE = "cisco_ios"

# Message text beyond this many characters is kept but not matched (IOS messages are short).
_MAX_PARSED = 4096

_HOSTNAME = r"[A-Za-z][0-9A-Za-z_-]{0,61}[0-9A-Za-z]?"
_IP = r"(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7})"
_ROUTER_TIME = (
    r"(?:(?P<uptime>[0-9A-Za-z]+)|\*?(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2})(?: (?P<year>\d{4}))?"
    r" (?P<time>\d\d:\d\d:\d\d(?:\.\d{1,3})?)(?: (?P<tz>[A-Za-z]{1,4}(?:[+-]\d{1,2}(?::\d\d)?)?))?)"
)
_HEADER_RE = re.compile(
    r"(?:<(?P<pri>\d{1,3})>(?P<count>\d{1,18})?(?:: )?)?"
    r"(?:[A-Z][a-z]{2} +\d{1,2}(?: \d{4})? \d\d:\d\d:\d\d(?:\.\d+)? "
    rf"(?:(?P<host>{_HOSTNAME})|{_IP})[: ]\s*)?"
    rf"(?:(?:(?P<host2>{_HOSTNAME})|{_IP}):? )?"
    r"(?:(?P<seq>\d{1,18}): )?"
    rf"{_ROUTER_TIME}: (?P<text>.*)",
    re.S,
)
# The label and the optional `R0/0: ` / `fman_fp_image: ` prefixes; names are bounded so that a
# hostile label costs linear time.
_MNEMONIC_RE = re.compile(
    r"%(?P<facility>[^%\s]{1,64}?)-(?P<severity>\d{1,3})-(?P<code>[^:\s]{1,64}?):\s+"
    r"(?:\w{0,62}\d(?:/\d+)?:\s+)?(?:[A-Za-z0-9_]{1,64}:\s+)?"
)
_MONTHS = MONTHS
_ZONES: dict[str, tzinfo] = {
    "UTC": UTC,
    "GMT": UTC,
    "Z": UTC,
    "EST": timezone(timedelta(hours=-5)),
    "EDT": timezone(timedelta(hours=-4)),
    "CST": timezone(timedelta(hours=-6)),
    "CDT": timezone(timedelta(hours=-5)),
    "MST": timezone(timedelta(hours=-7)),
    "MDT": timezone(timedelta(hours=-6)),
    "PST": timezone(timedelta(hours=-8)),
    "PDT": timezone(timedelta(hours=-7)),
}
_ZONE_OFFSET_RE = re.compile(
    r"[A-Za-z]{1,4}(?P<sign>[+-])(?P<hours>\d{1,2})(?::(?P<minutes>\d\d))?"
)
_LOG_LEVELS = (
    "emergencies",
    "alert",
    "critical",
    "error",
    "warning",
    "notification",
    "informational",
    "debug",
)
_MAX_PORT = 65535

# --------------------------------------------------------------------------- message patterns

# Named groups: acl action proto iana ntype src sport dst dport packets itype icode igmp user
# ios_action session_type session_number tableid pim_source pim_group outcome sbytes dbytes
# interface state neighbor reason
_ACL_HEAD = r"list (?P<acl>\S+) (?P<action>\S+) "
_PACKETS = r", (?P<packets>\d+) packet"
_SOURCES: dict[str, str] = {
    "IPACCESSLOGP": _ACL_HEAD
    + r"(?P<proto>\S+) (?P<src>[^\s(]+)\((?P<sport>\d+)\) \S+ (?P<dst>[^\s(]+)\((?P<dport>\d+)\)"
    + _PACKETS,
    "IPACCESSLOGDP": _ACL_HEAD
    + r"(?P<proto>\S+) (?P<src>\S+) \S+ (?P<dst>\S+) \((?P<itype>[^/)]*)/(?P<icode>[^)]*)\)"
    + _PACKETS,
    "IPACCESSLOGRP": _ACL_HEAD + r"(?P<proto>\S+) (?P<src>\S+) \S+ (?P<dst>[^\s,]+)" + _PACKETS,
    "IPACCESSLOGSP": _ACL_HEAD
    + r"(?P<proto>\S+) (?P<src>\S+) \S+ (?P<dst>\S+) \((?P<igmp>[^)]*)\)"
    + _PACKETS,
    "ACCESSLOGSP": _ACL_HEAD + r"(?P<ntype>\S+) (?P<src>\S+) \S+ (?P<dst>[^\s,]+)" + _PACKETS,
    "IPACCESSLOGNP": _ACL_HEAD + r"(?P<iana>\S+) (?P<src>\S+) \S+ (?P<dst>[^\s,]+)" + _PACKETS,
    "LOGIN_SUCCESS": (
        r"(?P<ios_action>\S+) \S+ \[user: (?P<user>[^\]]*)\] \[Source: (?P<src>[^\]]*)\] "
        r"\[localport: (?P<dport>[^\]]*)\] at "
    ),
    "LOGIN_FAILED": (
        r"(?P<ios_action>\S+) \S+ \[user: (?P<user>[^\]]*)\] \[Source: (?P<src>[^\]]*)\] "
        r"\[localport: (?P<dport>[^\]]*)\] \[Reason: (?P<reason>[^\]]*)\] at "
    ),
    "LOGOUT": (
        r"User (?P<user>\S+) has (?P<ios_action>\S+) (?P<session_type>\S+) session "
        r"(?P<session_number>[^(\s]+)\((?P<src>[^)]*)\)"
    ),
    "BADAUTH": (
        r"(?:No|Invalid) MD5 digest from (?P<src>.*?)(?:\((?P<sport>\d+)\)|:(?P<sport2>\d+)) to "
        r"(?P<dst>.*?)(?:\((?P<dport>\d+)\)|:(?P<dport2>\d+))"
        r"(?:(?: \(RST\))? (?:tableid - (?P<tableid>.*)|.*))?$"
    ),
    "INVALID_RP_JOIN": (
        r".*?Received \((?:(?P<pim_source>\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+)|"
        r"[^,]*), (?P<pim_group>.*?)\) (?P<ios_action>\w+) from (?P<src>\S+) for "
        r"(?P<outcome>.*?) (?P<dst>\S+)$"
    ),
    "SESS_AUDIT_TRAIL": (
        r".*?initiator \((?P<src>[^\s()]+):(?P<sport>\d+)\) sent (?P<sbytes>\d+) bytes -- "
        r"responder \((?P<dst>[^\s()]+):(?P<dport>\d+)\) sent (?P<dbytes>\d+) bytes, from "
        r"(?P<interface>\S+)"
    ),
    "DROP_PKT": (
        r"Dropping \w+ \w+ from (?P<interface>\S+) (?P<src>[^\s]+?):(?P<sport>\d+) ?=> ?"
        r"(?P<dst>[^\s]+?):(?P<dport>\d+)"
    ),
    "UPDOWN": (
        r"(?:Line protocol on )?Interface (?P<interface>[^,]+), changed state to (?P<state>.+?)\s*$"
    ),
    "ADJCHANGE": r"neighbor (?P<neighbor>\S+)(?: vpn vrf \S+)? (?P<state>Up|Down)\b(?: (?P<reason>.+))?",
    "ADJCHG": (
        r"Process \S+, Nbr (?P<neighbor>\S+) on (?P<interface>\S+) from \S+ to (?P<state>\S+), "
        r"(?P<reason>.+)"
    ),
    "CONFIG_I": (
        r"Configured from (?P<config_source>\S+) by (?P<user>\S+)(?: on \S+)?"
        r"(?: \((?P<src>[^)]*)\))?"
    ),
}
_SOURCES["ACCESSLOGP"] = _SOURCES["IPACCESSLOGP"]
_SOURCES["ACCESSLOGDP"] = _SOURCES["IPACCESSLOGDP"]
_SOURCES["ACCESSLOGNP"] = _SOURCES["IPACCESSLOGNP"]
_PATTERNS = {code: re.compile(source, re.S) for code, source in _SOURCES.items()}
# Facility restrictions where a mnemonic is shared (`FW-6-DROP_PKT`, `BGP-5-ADJCHANGE`).
_FACILITIES = {
    "SESS_AUDIT_TRAIL": ("FW",),
    "DROP_PKT": ("FW",),
    "UPDOWN": ("LINK", "LINEPROTO"),
    "ADJCHANGE": ("BGP",),
    "ADJCHG": ("OSPF", "OSPFv3"),
    "CONFIG_I": ("SYS",),
}
_ACTIONS = {"denied": ("deny", "denied"), "permitted": ("allow", "allowed")}


# --------------------------------------------------------------------------- parsing


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One IOS syslog message to an ECS document; ParseError when the header is not IOS's."""
    header = _HEADER_RE.match(message)
    if header is None:
        raise ParseError("no Cisco IOS header (sequence number and router timestamp or uptime)")
    event: dict[str, Any] = {
        "category": ["network"],
        "type": ["info"],
        "provider": "firewall",
        "dataset": DATASET,
        "module": MODULE,
    }
    doc: EcsDoc = {
        "event": event,
        "observer": {"vendor": "Cisco", "product": "IOS", "type": "firewall"},
    }
    log: dict[str, Any] = {}
    syslog: dict[str, Any] = {}
    ios: dict[str, Any] = {}
    if header.group("pri") is not None:
        syslog["priority"] = int(header.group("pri"))
    host = header.group("host") or header.group("host2")
    if host is not None:
        syslog["hostname"] = host
    if syslog:
        log["syslog"] = syslog
    count, sequence = header.group("count", "seq")
    if sequence is not None:
        ios["sequence"] = sequence
        event["sequence"] = int(sequence)
    if count is not None:
        ios["message_count"] = int(count)
        event.setdefault("sequence", int(count))
    if header.group("uptime") is not None:
        ios["uptime"] = header.group("uptime")
    else:
        _timestamp(header, doc, ctx)

    text = header.group("text")
    mnemonic = _MNEMONIC_RE.match(text) if text.startswith("%") else None
    if mnemonic is not None:
        facility, code = mnemonic.group("facility", "code")
        severity = int(mnemonic.group("severity"))
        ios["facility"] = facility
        event["code"] = code
        event["severity"] = severity
        if severity < len(_LOG_LEVELS):
            log["level"] = _LOG_LEVELS[severity]
        text = text[mnemonic.end() :]
        doc["message"] = text
        _message_fields(facility, code, text, doc, ios)
    else:
        doc["message"] = text
    if log:
        doc["log"] = log
    if ios:
        doc["cisco"] = {"ios": ios}
    _related(doc)
    event["original"] = message
    return doc


def _timestamp(header: re.Match[str], doc: EcsDoc, ctx: SourceContext) -> None:
    """The router's own timestamp, in its zone when it names one (else `ctx.tz`, else UTC)."""
    month = _MONTHS.get(header.group("mon") or "")
    if month is None:
        return
    zone_text = header.group("tz")
    tz: tzinfo = ctx.tz or UTC
    doc["event"]["timezone"] = zone_name(ctx.tz)
    if zone_text is not None:
        known = _zone(zone_text)
        if known is not None:
            tz = known
            doc["event"]["timezone"] = zone_text.upper() if len(zone_text) <= 4 else zone_text
    year_text = header.group("year")
    year = int(year_text) if year_text is not None else year_for_month(month, tz)
    clock = header.group("time")
    fraction = clock[9:]
    try:
        moment = datetime(
            year,
            month,
            int(header.group("day")),
            int(clock[0:2]),
            int(clock[3:5]),
            int(clock[6:8]),
            int((fraction + "000")[:3]) * 1000 if fraction else 0,
            tzinfo=tz,
        )
    except ValueError:
        return
    doc["@timestamp"] = format_timestamp(moment)


def _zone(text: str) -> tzinfo | None:
    known = _ZONES.get(text.upper())
    if known is not None:
        return known
    match = _ZONE_OFFSET_RE.fullmatch(text)
    if match is None:
        return None
    minutes = int(match.group("hours")) * 60 + int(match.group("minutes") or 0)
    if minutes > 18 * 60:
        return None
    return timezone(timedelta(minutes=-minutes if match.group("sign") == "-" else minutes))


def _message_fields(facility: str, code: str, text: str, doc: EcsDoc, ios: dict[str, Any]) -> None:
    pattern = _PATTERNS.get(code)
    if pattern is None:
        return
    allowed = _FACILITIES.get(code)
    if allowed is not None and facility not in allowed:
        return
    match = pattern.match(text[:_MAX_PARSED])
    if match is None:
        return
    groups = {k: v for k, v in match.groupdict().items() if v is not None}
    event = doc["event"]
    source: dict[str, Any] = {}
    destination: dict[str, Any] = {}
    network: dict[str, Any] = {}
    _endpoint(source, groups.get("src"), groups.get("sport") or groups.get("sport2"))
    _endpoint(destination, groups.get("dst"), groups.get("dport") or groups.get("dport2"))
    for key, field in (("acl", "access_list"), ("tableid", "tableid")):
        if key in groups:
            ios[field] = groups[key]
    if "ios_action" in groups:
        ios["action"] = groups["ios_action"]
    if "proto" in groups:
        network["transport"] = groups["proto"].lower()
    if "iana" in groups:
        network["iana_number"] = groups["iana"]
    if "ntype" in groups:
        network["type"] = groups["ntype"].lower()
    packets = groups.get("packets")
    if packets is not None and len(packets) <= 18:
        source["packets"] = int(packets)
        network["packets"] = int(packets)
    for key, section in (("sbytes", source), ("dbytes", destination)):
        value = groups.get(key)
        if value is not None and len(value) <= 18:
            section["bytes"] = int(value)
    if "bytes" in source or "bytes" in destination:
        network["bytes"] = source.get("bytes", 0) + destination.get("bytes", 0)
    if "itype" in groups:
        doc["icmp"] = {"type": groups["itype"], "code": groups["icode"]}
    if "igmp" in groups:
        doc["igmp"] = {"type": groups["igmp"]}
    if "user" in groups:
        source["user"] = {"name": groups["user"]}
    if "session_type" in groups:
        ios["session"] = {"type": groups["session_type"], "number": groups["session_number"]}
    if "interface" in groups:
        ios["interface"] = {"name": groups["interface"]}
    if "state" in groups:
        ios["state"] = groups["state"]
    if "neighbor" in groups:
        neighbor = normalize_ip(groups["neighbor"])
        ios["neighbor"] = {"ip": neighbor} if neighbor is not None else {"name": groups["neighbor"]}
    if "reason" in groups:
        event["reason"] = groups["reason"]
    if code == "INVALID_RP_JOIN":
        ios["outcome"] = groups["outcome"]
        pim: dict[str, Any] = {"group": {"ip": groups["pim_group"]}}
        if "pim_source" in groups:
            pim["source"] = {"ip": groups["pim_source"]}
        ios["pim"] = pim
        event.update(action="multicast-join", outcome="failure", reason="Invalid RP")
    elif code == "LOGIN_SUCCESS":
        event["outcome"] = "success"
    elif code == "LOGIN_FAILED":
        event["outcome"] = "failure"
    elif code == "CONFIG_I":
        ios["config_source"] = groups["config_source"]
        event["action"] = "configuration-change"
    action = _ACTIONS.get(groups.get("action", ""))
    if action is not None:
        event["action"] = action[0]
        event["type"].append(action[1])
    if "ip" in source and "type" not in network:
        network["type"] = "ipv4" if "." in source["ip"] else "ipv6"
    for name, section in (("source", source), ("destination", destination), ("network", network)):
        if section:
            doc[name] = section


def _endpoint(section: dict[str, Any], address: str | None, port: str | None) -> None:
    if address:
        section["address"] = address
        ip = normalize_ip(address)
        if ip is not None:
            section["ip"] = ip
        else:
            section["domain"] = address
    if port is not None and port.isdecimal() and len(port) <= 5 and int(port) <= _MAX_PORT:
        section["port"] = int(port)


def _related(doc: EcsDoc) -> None:
    """`related.ip`, `related.hosts`, `related.user` in Elastic's order, without repeats."""
    source = doc.get("source", {})
    destination = doc.get("destination", {})
    related = {
        key: list(dict.fromkeys(values))
        for key, values in (
            ("ip", [s["ip"] for s in (source, destination) if "ip" in s]),
            ("hosts", [s["domain"] for s in (source, destination) if "domain" in s]),
            ("user", [source["user"]["name"]] if "user" in source else []),
        )
        if values
    }
    if related:
        doc["related"] = related
