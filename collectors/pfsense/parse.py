"""pfSense syslog to ECS, as Elastic's `pfsense` integration maps it.

Input: one message as sent by pfSense, `<PRI>` then a BSD (RFC 3164: `Mmm dd HH:MM:SS
[host] program[pid]: text`) or RFC 5424 header. `filterlog` lines (the packet filter's CSV for
IPv4 and IPv6: TCP, UDP, ICMP, CARP and other protocols) and `openvpn` lines (peer info,
connection start, address pool, authentication, TLS errors) are parsed into ECS; messages of
other programs keep the header fields (`process.*`, `observer.name`, `@timestamp`) and the text.

Deliberate differences from Elastic's pipeline (none changes a compared field of the corpus):

- A BSD timestamp has no year: it takes the year of `now` (the current UTC time unless
  given), read in `ctx.tz` (UTC when unset); Elastic uses the ingest year.
- IPv6 filterlog records keep the hop limit as `pfsense.ip.ttl`; Elastic stores it as
  `pfsense.ip.flags`.
- `event.dataset` / `event.module` are set ("pfsense.log" / "pfsense").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any

from collectors.ecs import MONTHS, format_timestamp, normalize_ip, year_for_month
from collectors.parsing import EcsDoc, ParseError, SourceContext

DATASET = "pfsense.log"

_BSD_RE = re.compile(
    r"<(?P<pri>\d{1,3})>(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d) "
    r"(?:(?P<host>[^\s\[\]:]+) )?(?P<program>[^\s\[\]:]+)(?:\[(?P<pid>\d{1,10})\])?: ?"
)
_RFC5424_RE = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)) "
    r"(?P<host>\S+) (?P<program>\S+) (?P<pid>\S+) \S+ (?:-|\[.*?\]) ?"
)
_MONTHS = MONTHS
_DIRECTIONS = {"in": "inbound", "out": "outbound"}
_ACTION_TYPES = {"block": "denied", "reject": "denied", "pass": "allowed"}
_MAX_NUMBER_TEXT = 19

# filterlog CSV: the fields after the common part, per IP version (field name or None to skip).
_IPV4_FIELDS: tuple[str, ...] = (
    "tos",
    "ecn",
    "ttl",
    "id",
    "offset",
    "flags",
    "proto_id",
    "proto",
    "length",
)
_IPV6_FIELDS: tuple[str, ...] = ("tos", "flow_label", "ttl", "proto", "proto_id", "length")
_PFSENSE_IP_INTS = frozenset(("ttl", "id", "offset"))
_ICMP_ID_SEQ = frozenset(("request", "reply", "tstamp", "tstampreply"))

# OpenVPN messages.
_VPN_PEER_RE = re.compile(r"(?:(?P<user>[^\s/]+)/)?(?P<ip>[0-9A-Fa-f.:]+):(?P<port>\d{1,5}) ")
_VPN_AUTH_RE = re.compile(
    r"user '(?P<user>[^']*)' (?P<result>authenticated|could not authenticate)"
)
_VPN_FROM_RE = re.compile(r"\[AF_INET6?\](?P<ip>[0-9A-Fa-f.:]+?):(?P<port>\d{1,5})\b")
_VPN_INITIATED_RE = re.compile(r"\[(?P<user>[^\]]+)\] Peer Connection Initiated")
_VPN_POOL_RE = re.compile(r"pool returned IPv4=(?P<ip>[0-9.]+)")


def parse(message: str, ctx: SourceContext, *, now: datetime | None = None) -> EcsDoc:
    """One pfSense syslog message to an ECS document; ParseError when it has no such header."""
    header = _BSD_RE.match(message) if message[:1] == "<" else None
    if header is None:
        header = _RFC5424_RE.match(message)
        if header is None:
            raise ParseError("no pfSense syslog header (<PRI> and an RFC 3164/5424 header)")
    groups = header.groupdict()
    priority = int(groups["pri"])
    if priority > 191:
        raise ParseError(f"syslog PRI {priority} out of range 0..191")
    text = message[header.end() :]
    program = groups["program"]
    event: dict[str, Any] = {"dataset": DATASET, "module": "pfsense", "kind": "event"}
    doc: EcsDoc = {}
    tz = ctx.tz or UTC
    if groups.get("iso") is not None:
        timestamp = _iso_time(groups["iso"])
    else:
        year = year_for_month(_MONTHS.get(groups["month"], 0), tz, now)
        timestamp = _bsd_time(year, groups["month"], groups["day"], groups["time"], tz)
    if timestamp is not None:
        doc["@timestamp"] = timestamp
        if groups.get("iso") is not None or ctx.tz is not None:
            event["timezone"] = "+00:00" if timestamp.endswith("Z") else timestamp[-6:]
    doc["event"] = event
    doc["log"] = {"syslog": {"priority": priority}}
    doc["message"] = text
    observer: dict[str, Any] = {"type": "firewall", "vendor": "netgate"}
    if groups["host"] is not None and groups["host"] != "-":
        observer["name"] = groups["host"]
    doc["observer"] = observer
    process: dict[str, Any] = {"name": program}
    pid = groups["pid"]
    if pid is not None and pid.isdecimal() and len(pid) <= _MAX_NUMBER_TEXT:
        process["pid"] = int(pid)
    doc["process"] = process
    event["provider"] = program
    if program == "filterlog":
        _filterlog(text, doc, event, observer)
    elif program == "openvpn":
        _openvpn(text, doc, event)
    event["original"] = message
    return doc


def _iso_time(text: str) -> str | None:
    try:
        return format_timestamp(datetime.fromisoformat(text))
    except ValueError:
        return None


@lru_cache(maxsize=4096)
def _bsd_time(year: int, month: str, day: str, clock: str, tz: tzinfo) -> str | None:
    """`Mmm dd HH:MM:SS` of `year` in `tz`; None when it is no valid time."""
    hour, minute, second = clock.split(":")
    try:
        moment = datetime(
            year, _MONTHS.get(month, 0), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError:
        return None
    return format_timestamp(moment)


def _to_int(text: str) -> int | None:
    return int(text) if text.isdecimal() and len(text) <= _MAX_NUMBER_TEXT else None


def _filterlog(text: str, doc: EcsDoc, event: dict[str, Any], observer: dict[str, Any]) -> None:
    """The filterlog CSV: rule, interface, reason, action, direction, IP header, protocol."""
    fields = text.split(",")
    if len(fields) < 9:
        return
    event["category"] = ["network"]
    types = ["connection"]
    rule_id = fields[3]
    if rule_id:
        doc["rule"] = {"id": rule_id}
    interface = fields[4]
    if interface:
        ingress: dict[str, Any] = {"interface": {"name": interface}}
        _, dot, vlan = interface.rpartition(".")
        if dot and vlan.isdecimal():
            ingress["vlan"] = {"id": vlan}
        observer["ingress"] = ingress
    if fields[5]:
        event["reason"] = fields[5]
    action = fields[6]
    if action:
        event["action"] = action
        if action in _ACTION_TYPES:
            types.append(_ACTION_TYPES[action])
    event["type"] = types
    network: dict[str, Any] = {}
    direction = _DIRECTIONS.get(fields[7])
    if direction is not None:
        network["direction"] = direction
    doc["network"] = network
    version = fields[8]
    if version == "4":
        names = _IPV4_FIELDS
        network["type"] = "ipv4"
    elif version == "6":
        names = _IPV6_FIELDS
        network["type"] = "ipv6"
    else:
        return
    position = 9 + len(names)
    if len(fields) < position + 2:
        return
    header = dict(zip(names, fields[9:position], strict=True))
    pfsense_ip: dict[str, Any] = {}
    for name in ("tos", "ecn", "flags", "flow_label"):
        value = header.get(name)
        if value:
            pfsense_ip[name] = value
    for name in _PFSENSE_IP_INTS:
        number = _to_int(header.get(name, ""))
        if number is not None:
            pfsense_ip[name] = number
    pfsense: dict[str, Any] = {"ip": pfsense_ip} if pfsense_ip else {}
    if header["proto_id"]:
        network["iana_number"] = header["proto_id"]
    proto = header["proto"].lower()
    if proto:
        network["transport"] = proto
    length = _to_int(header["length"])
    if length is not None:
        network["bytes"] = length
    source: dict[str, Any] = {}
    destination: dict[str, Any] = {}
    for value, section in ((fields[position], source), (fields[position + 1], destination)):
        address = normalize_ip(value)
        if address is not None:
            section["address"] = address
            section["ip"] = address
    rest = fields[position + 2 :]
    if proto in ("tcp", "udp") and len(rest) >= 3:
        for value, section in ((rest[0], source), (rest[1], destination)):
            port = _to_int(value)
            if port is not None:
                section["port"] = port
        data_length = _to_int(rest[2])
        if proto == "udp":
            if data_length is not None:
                pfsense["udp"] = {"length": data_length}
        else:
            pfsense["tcp"] = _tcp(rest, data_length)
    elif proto in ("icmp", "ipv6-icmp", "icmpv6") and rest:
        pfsense["icmp"] = _icmp(rest)
    elif proto == "carp" and len(rest) >= 6:
        pfsense["carp"] = _carp(rest)
    elif rest and rest[0].startswith("datalength="):
        packets = _to_int(rest[0].removeprefix("datalength="))
        if packets is not None:
            network["packets"] = packets
    if source:
        doc["source"] = source
    if destination:
        doc["destination"] = destination
    if pfsense:
        doc["pfsense"] = pfsense


def _tcp(rest: list[str], data_length: int | None) -> dict[str, Any]:
    """TCP: data length, flags, sequence, ack, window, urg, options (from the 4th field on)."""
    tcp: dict[str, Any] = {}
    if rest[3:4] and rest[3]:
        tcp["flags"] = rest[3]
    if data_length is not None:
        tcp["length"] = data_length
    for index, name in ((4, "seq"), (5, "ack"), (6, "window"), (7, "urg")):
        if len(rest) > index:
            number = _to_int(rest[index])
            if number is not None:
                tcp[name] = number
    if len(rest) > 8 and rest[8]:
        tcp["options"] = rest[8].split(";")
    return tcp


def _icmp(rest: list[str]) -> dict[str, Any]:
    """ICMP: the type, then what that type logs (id/seq, unreachable address, MTU, text)."""
    kind = rest[0]
    icmp: dict[str, Any] = {"type": kind}
    if kind in _ICMP_ID_SEQ:
        for index, name in ((1, "id"), (2, "seq")):
            if len(rest) > index:
                number = _to_int(rest[index])
                if number is not None:
                    icmp[name] = number
    elif kind in ("unreachproto", "unreachport") and len(rest) > 2:
        icmp["destination"] = {"ip": rest[1]}
        if kind == "unreachport":
            icmp["unreachable"] = {"iana_number": rest[2]}
            if len(rest) > 3:
                number = _to_int(rest[3])
                if number is not None:
                    icmp["unreachable"]["port"] = number
        else:
            icmp["unreachable"] = {"other": rest[2]}
    elif kind == "needfrag" and len(rest) > 2:
        icmp["destination"] = {"ip": rest[1]}
        number = _to_int(rest[2])
        if number is not None:
            icmp["mtu"] = number
    elif len(rest) > 1 and rest[1]:
        icmp["description"] = ",".join(rest[1:])
    return icmp


def _carp(rest: list[str]) -> dict[str, Any]:
    """CARP: type, TTL, VHID, version, advertisement skew and base."""
    carp: dict[str, Any] = {"type": rest[0]}
    for index, name in ((1, "ttl"), (2, "vhid"), (3, "version"), (4, "advskew"), (5, "advbase")):
        number = _to_int(rest[index])
        if number is not None:
            carp[name] = number
    return carp


def _openvpn(text: str, doc: EcsDoc, event: dict[str, Any]) -> None:
    """OpenVPN: peer address (and user), peer info, connection start, pool address, auth."""
    doc["network"] = {"protocol": "openvpn"}
    auth = _VPN_AUTH_RE.match(text)
    if auth is not None:
        event["category"] = ["authentication", "network"]
        if auth.group("result") != "authenticated":
            event["type"] = ["error"]
        doc["user"] = {"name": auth.group("user")}
        return
    event["category"] = ["network"]
    types = ["connection"]
    source: dict[str, Any] = {}
    user: str | None = None
    peer = _VPN_PEER_RE.match(text)
    if peer is not None and normalize_ip(peer.group("ip")) is not None:
        _set_peer(source, peer.group("ip"), peer.group("port"))
        user = peer.group("user")
        rest = text[peer.end() :]
        if rest.startswith("peer info: "):
            doc["pfsense"] = {"openvpn": {"peer_info": rest.removeprefix("peer info: ")}}
        initiated = _VPN_INITIATED_RE.match(rest)
        if initiated is not None:
            user = initiated.group("user")
            types.append("start")
        pool = _VPN_POOL_RE.search(rest)
        if pool is not None:
            address = normalize_ip(pool.group("ip"))
            if address is not None:
                source["nat"] = {"ip": address}
    elif "Error" in text:
        types.append("error")
        sender = _VPN_FROM_RE.search(text)
        if sender is not None and normalize_ip(sender.group("ip")) is not None:
            _set_peer(source, sender.group("ip"), sender.group("port"))
    if source:
        doc["source"] = source
        doc["network"]["type"] = "ipv6" if ":" in source["ip"] else "ipv4"
    event["type"] = types
    if user:
        doc["user"] = {"name": user}


def _set_peer(source: dict[str, Any], ip: str, port: str) -> None:
    address = normalize_ip(ip)
    if address is None:
        return
    source["address"] = address
    source["ip"] = address
    number = int(port)
    if number <= 65535:
        source["port"] = number
