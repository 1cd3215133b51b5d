"""Linux netfilter (iptables/ip6tables) kernel log lines to ECS, as Elastic's `iptables`
integration maps them.

Input: one line as written by syslog (`<PRI>` optional, then an RFC 3164 `Mmm dd HH:MM:SS` or
ISO 8601 timestamp, the host and `kernel:`), followed by the netfilter `KEY=value` list
(`IN= OUT= MAC= SRC= DST= ... PROTO= SPT= DPT=` plus bare flags such as `DF`, `SYN`, `ACK`).
Ubiquiti EdgeOS prefixes the list with `[RULESET-RULENUMBER-A|D|R]`; a plain log prefix such as
`iptables DROP_INPUT:` becomes `event.action`.

Deliberate differences from Elastic's pipeline (none changes a compared field of the corpus):

- A timestamp without a year takes the year of `now` (the current UTC time unless given), read
  in `ctx.tz` (UTC when unset); Elastic uses the ingest year.
- `event.dataset` / `event.module` are set ("iptables.log" / "iptables").
- Keys after an ICMP error's quoted packet (`[SRC=... ]`) are ignored, as they describe the
  embedded packet, not the logged one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from typing import Any

from collectors.ecs import MONTHS, format_timestamp, normalize_ip
from collectors.parsing import EcsDoc, ParseError, SourceContext

DATASET = "iptables.log"

_HEADER_RE = re.compile(
    r"(?:<(?P<pri>\d{1,3})>)?"
    r"(?:(?P<month>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<time>\d\d:\d\d:\d\d)"
    r"|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)) +"
)
_KERNEL = " kernel:"
_UPTIME_RE = re.compile(r" *\[ *\d+\.\d+\] *")
_UBIQUITI_RE = re.compile(
    r" *\[(?P<rule_set>[^\]\s]+)-(?P<rule_number>[^\]\s-]+)-(?P<action>[ADR])\] *"
)
_UBIQUITI_ACTIONS = {"A": "accept", "D": "drop", "R": "reject"}
_MONTHS = MONTHS
_DENIED_WORDS = ("drop", "deny", "reject", "block")
_ALLOWED_WORDS = ("accept", "allow", "pass")
_TRANSPORTS = {"icmpv6": "ipv6-icmp"}
# netfilter key -> (iptables.* field, hexadecimal?) for the plain integer fields.
_IP_INTS: tuple[tuple[str, str, bool], ...] = (
    ("LEN", "length", False),
    ("TTL", "ttl", False),
    ("HOPLIMIT", "ttl", False),
    ("TOS", "tos", True),
    ("TC", "tos", False),
    ("PREC", "precedence_bits", True),
    ("FLOWLBL", "flow_label", False),
)
_TCP_INTS: tuple[tuple[str, str, bool], ...] = (
    ("WINDOW", "window", False),
    ("RES", "reserved_bits", True),
)
_ICMP_INTS: tuple[tuple[str, str, bool], ...] = (
    ("TYPE", "type", False),
    ("CODE", "code", False),
    ("SEQ", "seq", False),
)
_TCP_FLAGS = frozenset(("CWR", "ECE", "URG", "ACK", "PSH", "RST", "SYN", "FIN"))
_FRAGMENT_FLAGS = frozenset(("CE", "DF", "MF"))
_MAX_NUMBER_TEXT = 20
_NETWORK_TYPES = {0x0800: "ipv4", 0x86DD: "ipv6"}


def parse(message: str, ctx: SourceContext, *, now: datetime | None = None) -> EcsDoc:
    """One netfilter log line to an ECS document; ParseError when it is not one."""
    header = _HEADER_RE.match(message)
    if header is None:
        raise ParseError("no syslog timestamp at the start of the iptables line")
    rest = message[header.end() :]
    kernel = rest.find(_KERNEL)
    if kernel < 0 and "IN=" not in rest:
        raise ParseError("no netfilter fields (IN=, or a kernel: line) in the message")
    doc: EcsDoc = {}
    pri, month, day, clock, iso = header.groups()
    timestamp = _timestamp(month, day, clock, iso, ctx, now)
    if timestamp is not None:
        doc["@timestamp"] = timestamp
    event: dict[str, Any] = {"dataset": DATASET, "module": "iptables", "kind": "event"}
    event["category"] = ["network"]
    doc["event"] = event
    if pri is not None:
        priority = int(pri)
        if priority <= 191:
            doc["log"] = {"syslog": {"priority": priority}}
    iptables: dict[str, Any] = {}
    action: str | None = None
    if kernel >= 0:
        host = rest[:kernel].split(" ", 1)[0]
        if host:
            doc["observer"] = {"name": host}
        body = rest[kernel + len(_KERNEL) :]
        uptime = _UPTIME_RE.match(body)
        if uptime is not None:
            body = body[uptime.end() :]
        ubiquiti = _UBIQUITI_RE.match(body)
        if ubiquiti is not None:
            body = body[ubiquiti.end() :]
            action = _ubiquiti(ubiquiti, doc, iptables)
        start = 0
    else:
        body = rest
        start = body.find("IN=")
    prefix_end = _first_key(body, start)
    prefix = body[:prefix_end].strip()
    if action is None and prefix.endswith(":"):
        words = prefix[:-1].split()
        if words:
            action = words[-1].lower()
    _fields(body[prefix_end:], doc, iptables)
    if action is not None:
        event["action"] = action
    types: list[str] = []
    if action is not None:
        verdict = _verdict(action)
        if verdict is not None:
            types.append(verdict)
    if "ip" in doc.get("source", {}) or "ip" in doc.get("destination", {}):
        types.append("connection")
    if types:
        event["type"] = types
    if iptables:
        doc["iptables"] = iptables
    event["original"] = message
    return doc


@lru_cache(maxsize=1024)
def _verdict(action: str) -> str | None:
    """`event.type` "denied" or "allowed" for the action word of a log prefix, if any."""
    if any(word in action for word in _DENIED_WORDS):
        return "denied"
    if any(word in action for word in _ALLOWED_WORDS):
        return "allowed"
    return None


def _timestamp(
    month: str, day: str, clock: str, iso: str | None, ctx: SourceContext, now: datetime | None
) -> str | None:
    """The header time (ISO 8601, or `Mmm dd HH:MM:SS` of the current year) as UTC text."""
    tz = ctx.tz or UTC
    if iso is not None:
        return _iso_time(iso, tz)
    year = (now or datetime.now(UTC)).astimezone(tz).year
    return _syslog_time(year, month, day, clock, tz)


@lru_cache(maxsize=4096)
def _iso_time(text: str, tz: tzinfo) -> str | None:
    """An ISO 8601 header time (in `tz` when it has no offset), as UTC text; None when invalid."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return format_timestamp(moment.astimezone(UTC))


@lru_cache(maxsize=4096)
def _syslog_time(year: int, month: str, day: str, clock: str, tz: tzinfo) -> str | None:
    """`Mmm dd HH:MM:SS` of `year` in `tz`, as UTC text; None when it is no valid time."""
    hour, minute, second = clock.split(":")
    try:
        moment = datetime(
            year, _MONTHS.get(month, 0), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError:
        return None
    return format_timestamp(moment.astimezone(UTC))


def _ubiquiti(match: re.Match[str], doc: EcsDoc, iptables: dict[str, Any]) -> str:
    """`[RULESET-RULENUMBER-X]`: rule, zones (a `IN-OUT` rule set names both) and the action."""
    rule_set = match.group("rule_set")
    rule_number = match.group("rule_number")
    ubiquiti: dict[str, Any] = {"rule_set": rule_set, "rule_number": rule_number}
    doc["rule"] = {"name": rule_set, "id": rule_number}
    zones = rule_set.split("-")
    if len(zones) == 2 and all(zones):
        ubiquiti["input_zone"], ubiquiti["output_zone"] = zones
        observer = doc.setdefault("observer", {})
        observer["ingress"] = {"zone": zones[0]}
        observer["egress"] = {"zone": zones[1]}
    iptables["ubiquiti"] = ubiquiti
    return _UBIQUITI_ACTIONS[match.group("action")]


_PAIR_FINDALL = re.compile(r"(?<!\S)([A-Za-z]+)=(\S*)").findall
_FLAG_FINDALL = re.compile(r"(?<!\S)([A-Z]{2,3})(?!\S)").findall
# The same two for text whose only whitespace is the space, given with a space in front: the
# leading literal lets the regex engine jump from space to space.
_SPACED_PAIR_FINDALL = re.compile(r" ([A-Za-z]+)=([^ ]*)").findall
_SPACED_FLAG_FINDALL = re.compile(r" ([A-Z]{2,3})(?![^ ])").findall
_EMBEDDED_RE = re.compile(r"(?:^|\s)\[")
_KEY_RE = re.compile(r"(?:^|(?<=[\s\]]))[A-Z]+=")


def _first_key(body: str, start: int) -> int:
    """Where the `KEY=value` list starts in `body` (its end when there is none)."""
    if start > 0:
        return start
    match = _KEY_RE.search(body)
    return len(body) if match is None else match.start()


@lru_cache(maxsize=4096)
def _to_int(text: str, hexadecimal: bool) -> int | None:
    """`text` as a decimal (or, when `hexadecimal` or `0x`-prefixed, hexadecimal) integer."""
    if not text or len(text) > _MAX_NUMBER_TEXT:
        return None
    if not hexadecimal and text.isdecimal():
        return int(text)
    try:
        if hexadecimal or text.startswith("0x"):
            return int(text, 16)
    except ValueError:
        return None
    return None


def _move_ints(
    values: dict[str, str], table: tuple[tuple[str, str, bool], ...], target: dict[str, Any]
) -> None:
    """`target[field] = <values[key] as an integer>` for each (key, field, hexadecimal)."""
    for key, field, hexadecimal in table:
        if key in values:
            number = _to_int(values[key], hexadecimal)
            if number is not None:
                target[field] = number


def _fields(text: str, doc: EcsDoc, iptables: dict[str, Any]) -> None:
    """The netfilter `KEY=value` list and bare flags, up to an ICMP error's quoted packet."""
    if "[" in text:
        embedded = _EMBEDDED_RE.search(text)
        if embedded is not None:
            text = text[: embedded.start()]
    if text.isascii() and text.isprintable():  # no whitespace but the space
        spaced = " " + text
        pairs = _SPACED_PAIR_FINDALL(spaced)
        flags = _SPACED_FLAG_FINDALL(spaced)
    else:
        pairs = _PAIR_FINDALL(text)
        flags = _FLAG_FINDALL(text)
    # The first occurrence of a key describes the packet; a repeated LEN or ID belongs to the
    # UDP or ICMP header.
    values = dict(reversed(pairs))
    source: dict[str, Any] = {}
    destination: dict[str, Any] = {}
    network: dict[str, Any] = {}
    if "IN" in values:
        iptables["input_device"] = values["IN"]
    if "OUT" in values:
        iptables["output_device"] = values["OUT"]
    mac = values.get("MAC", "")
    if mac:
        _macs(mac, source, destination, network, iptables)
    if "SRC" in values:
        address = normalize_ip(values["SRC"])
        if address is not None:
            source["ip"] = address
    if "DST" in values:
        address = normalize_ip(values["DST"])
        if address is not None:
            destination["ip"] = address
    if "SPT" in values:
        port = _to_int(values["SPT"], False)
        if port is not None:
            source["port"] = port
    if "DPT" in values:
        port = _to_int(values["DPT"], False)
        if port is not None:
            destination["port"] = port
    proto = values.get("PROTO")
    protocol = proto.lower() if proto else ""
    if protocol:
        network["transport"] = _TRANSPORTS.get(protocol, protocol)
    _move_ints(values, _IP_INTS, iptables)
    # IPv6 headers carry no ID: there the only `ID=` is the ICMPv6 echo identifier.
    ipv6 = "HOPLIMIT" in values
    if not ipv6 and "ID" in values:
        packet_id = _to_int(values["ID"], False)
        if packet_id is not None:
            iptables["id"] = packet_id
    if "TTL" not in values:
        # A line cut by the device keeps the tail of `TTL=` ("TL=", "L=") as its first key.
        first = text.split("=", 1)[0].strip()
        if first in ("TL", "L"):
            ttl = _to_int(values[first], False)
            if ttl is not None:
                iptables["ttl"] = ttl
    fragment_flags = [flag for flag in flags if flag in _FRAGMENT_FLAGS]
    if fragment_flags:
        iptables["fragment_flags"] = fragment_flags
    if protocol == "tcp":
        tcp: dict[str, Any] = {}
        tcp_flags = [flag for flag in flags if flag in _TCP_FLAGS]
        if tcp_flags:
            tcp["flags"] = tcp_flags
        _move_ints(values, _TCP_INTS, tcp)
        if tcp:
            iptables["tcp"] = tcp
    elif protocol == "udp":
        udp_length = _to_int(_second(pairs, "LEN"), False)
        if udp_length is not None:
            iptables["udp"] = {"length": udp_length}
    elif protocol in ("icmp", "icmpv6"):
        icmp: dict[str, Any] = {}
        _move_ints(values, _ICMP_INTS, icmp)
        icmp_id = _to_int(values.get("ID", "") if ipv6 else _second(pairs, "ID"), False)
        if icmp_id is not None:
            icmp["id"] = icmp_id
        if icmp:
            iptables["icmp"] = icmp
    if source:
        doc["source"] = source
    if destination:
        doc["destination"] = destination
    if network:
        doc["network"] = network


def _second(pairs: list[tuple[str, str]], key: str) -> str:
    """The value of the second `key=` in `pairs` ("" when there is none)."""
    found = [value for name, value in pairs if name == key]
    return found[1] if len(found) > 1 else ""


def _macs(
    mac: str,
    source: dict[str, Any],
    destination: dict[str, Any],
    network: dict[str, Any],
    iptables: dict[str, Any],
) -> None:
    """`MAC=` is destination MAC, source MAC and EtherType (then possibly more header bytes)."""
    parsed = _parse_mac(mac)
    if parsed is None:
        return
    destination["mac"], source["mac"], ether_type = parsed
    if ether_type is not None:
        iptables["ether_type"] = ether_type
        if ether_type in _NETWORK_TYPES:
            network["type"] = _NETWORK_TYPES[ether_type]


@lru_cache(maxsize=1024)
def _parse_mac(mac: str) -> tuple[str, str, int | None] | None:
    octets = mac.split(":")
    if len(octets) < 12 or not all(len(octet) == 2 for octet in octets[:14]):
        return None
    ether_type = None
    if len(octets) >= 14:
        ether_type = _to_int("".join(octets[12:14]), True)
    return "-".join(octets[:6]).upper(), "-".join(octets[6:12]).upper(), ether_type
