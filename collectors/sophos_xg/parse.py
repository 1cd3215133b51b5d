"""Sophos XG syslog (key=value) to ECS, as Elastic's `sophos` integration (`xg` stream) maps it.

Input: one message as received over syslog, with or without its `<PRI>`. Output: the ECS
document; the common fields for every log type, the firewall mapping for `log_type="Firewall"`
(the other log types keep their own fields under `sophos.xg.*`).

Context: `ctx.extra["mappings"]` (a list of `{serial_number, hostname}`) and
`ctx.extra["default"]` name the device in `host.name`, as the integration's `_conf` settings do;
`ctx.tz` is the zone of `date`/`time` (UTC when unset; the record's own `timezone` text is an
abbreviation such as "IST" and, as in Elastic's pipeline, not used).

Deliberate differences from Elastic's pipeline (none changes a compared field of the
conformance corpus):

- Addresses that do not parse as IPs, and numbers that do not parse, stay under `sophos.xg.*`
  instead of failing the document; zone types are trimmed (" LAN" -> "LAN").
- `event.dataset` / `event.module` are set ("sophos.xg" / "sophos"); `network.community_id` and
  GeoIP are not computed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from itertools import compress, repeat
from typing import Any

from collectors.ecs import format_timestamp, normalize_ip, wallclock_timestamp
from collectors.parsing import EcsDoc, ParseError, SourceContext

DATASET = "sophos.xg"

_PRI_RE = re.compile(r"<(\d{1,3})>\s*")
# Elastic's kv `field_split`: a space followed by a lower-case key and "=".
# Elastic's kv `field_split` is a space before a lower-case key and "="; splitting on
# ` key=` with the key captured yields keys and values alternately.
_KEY_SPLIT = re.compile(r" ([a-z0-9_\-]+)=").split
_KEY_RE = re.compile(r"[a-z0-9_\-]+=")
_FIRST_KEY_RE = re.compile(r"(?:^|\s)(?=[a-z0-9_\-]+=)")
_EMPTY_VALUES = frozenset(("", "-", "N/A"))
_LOG_LEVELS = {
    "0": "unknown",
    "1": "alert",
    "2": "critical",
    "3": "error",
    "4": "warning",
    "5": "notification",
    "6": "informational",
    "7": "debug",
}
_ALERT_CODES = frozenset(("03001", "05001", "05151", "00003", "00004"))
_INSIDE_ZONES = frozenset(("LAN", "DMZ", "VPN", "WiFi"))
_MAX_LONG = 2**63 - 1

# (Sophos key, endpoint, ECS field); endpoints are "source", "destination" and their "nat".
# Addresses: the first key present wins.
_IP_FIELDS = (
    ("src_ip", "source", "ip"),
    ("sourceip", "source", "ip"),
    ("dst_ip", "destination", "ip"),
    ("destinationip", "destination", "ip"),
    ("tran_src_ip", "source_nat", "ip"),
    ("src_trans_ip", "source_nat", "ip"),
    ("tran_dst_ip", "destination_nat", "ip"),
)
# Non-negative longs: a later key overwrites an earlier one, as in Elastic's pipeline.
_LONG_FIELDS = (
    ("src_port", "source", "port"),
    ("dst_port", "destination", "port"),
    ("tran_src_port", "source_nat", "port"),
    ("tran_dst_port", "destination_nat", "port"),
    ("sent_pkts", "source", "packets"),
    ("packets_sent", "source", "packets"),
    ("recv_pkts", "destination", "packets"),
    ("packets_received", "destination", "packets"),
    ("sent_bytes", "source", "bytes"),
    ("bytes_sent", "source", "bytes"),
    ("recv_bytes", "destination", "bytes"),
    ("bytes_received", "destination", "bytes"),
)


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One Sophos XG syslog message to an ECS document; ParseError when it holds no pairs."""
    body = message
    priority: int | None = None
    match = _PRI_RE.match(body)
    if match is not None:
        value = int(match.group(1))
        priority = value if value <= 191 else None
        body = body[match.end() :]
    if not _KEY_RE.match(body):
        # A syslog header before the pairs: start at the first key.
        first = _FIRST_KEY_RE.search(body)
        if first is None:
            raise ParseError("no key=value pairs in Sophos XG message")
        body = body[first.end() :]
    xg = _split_pairs(body)
    if not xg:
        raise ParseError("no key=value pairs in Sophos XG message")
    return _build(message, xg, priority, ctx)


def _split_pairs(body: str) -> dict[str, str]:
    """Elastic's kv processor: split before each ` key=` (the text starts with a key), values
    trimmed of double quotes, empty, "-" and "N/A" values dropped; the last occurrence of a key
    wins."""
    if "SSID" in body or "SysLog" in body:
        body = body.replace("clients_conn_SSID", "clients_conn_ssid").replace(
            "SysLog_SERVER_NAME", "syslog_server_name"
        )
    # ["", key1, value1, key2, value2, ...], all in C.
    parts = _KEY_SPLIT(" " + body)
    pairs = dict(zip(parts[1::2], map(str.strip, parts[2::2], repeat('"')), strict=True))
    if not _EMPTY_VALUES.isdisjoint(pairs.values()):
        # The keys with an empty value, selected in C (`compress`).
        for key in list(compress(pairs, map(_EMPTY_VALUES.__contains__, pairs.values()))):
            del pairs[key]
    return pairs


def _long(value: str | None) -> int | None:
    """A non-negative decimal that fits a long (surrounding spaces allowed), else None."""
    if value is None:
        return None
    if not value.isdecimal():
        value = value.strip()
        if not value.isdecimal():
            return None
    if len(value) > 19 or not value.isascii():
        return None
    number = int(value)
    return number if number <= _MAX_LONG else None


def _mac(value: str) -> str:
    return value.upper().replace(":", "-").replace(".", "-")


def _host_name(serial: str, extra: Mapping[str, Any]) -> str | None:
    """`host.name` from the configured serial-number mappings (Elastic's `_conf`)."""
    mappings = extra.get("mappings")
    if not isinstance(mappings, list):
        return None
    name = extra.get("default")
    for item in mappings:
        if isinstance(item, Mapping) and str(item.get("serial_number")) == serial:
            name = item.get("hostname")
            break
    return name if isinstance(name, str) and name else None


def _later(timestamp: str, seconds: int) -> str | None:
    """`timestamp` (as `format_timestamp` writes it) plus `seconds`; None when out of range."""
    if seconds == 0:
        return timestamp
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        return format_timestamp(moment + timedelta(seconds=seconds))
    except (ValueError, OverflowError):
        return None


def _build(original: str, xg: dict[str, str], priority: int | None, ctx: SourceContext) -> EcsDoc:
    pop = xg.pop
    event: dict[str, Any] = {}
    doc: EcsDoc = {}
    timestamp = None
    if "date" in xg and "time" in xg:
        # Cached per second; the offset is the context zone's (UTC when unset).
        timestamp = wallclock_timestamp(xg["date"], xg["time"], ctx.tz)
        if timestamp is not None:
            del xg["date"], xg["time"]
            doc["@timestamp"] = timestamp
    doc["event"] = event
    duration = _long(xg.get("duration"))
    if duration is not None and duration * 1_000_000_000 <= _MAX_LONG:
        del xg["duration"]
        event["duration"] = duration * 1_000_000_000
        if timestamp is not None:
            event["start"] = timestamp
            end = _later(timestamp, duration)
            if end is not None:
                event["end"] = end
    xg.pop("timezone", None)

    log: dict[str, Any] = {}
    if priority is not None:
        log["syslog"] = {
            "priority": priority,
            "facility": {"code": priority >> 3},
            "severity": {"code": priority & 7},
        }
    log_id = xg.get("log_id")
    if log_id is not None:
        # Elastic: drop the first 6 and the last 5 characters (010101600001 -> "6").
        severity = log_id[6:-5] if len(log_id) > 11 else ""
        level = _LOG_LEVELS.get(severity)
        if level is not None:
            log["level"] = level
        if severity.isdecimal() and len(severity) <= 18:
            event["severity"] = int(severity)
        event["code"] = log_id[-5:]
    if log:
        doc["log"] = log

    observer: dict[str, Any] = {"vendor": "Sophos", "product": "XG", "type": "firewall"}
    doc["observer"] = observer
    serial = pop("device_id", None)
    if serial is not None:
        observer["serial_number"] = serial
    for key, side in (("in_interface", "ingress"), ("out_interface", "egress")):
        name = pop(key, None)
        if name is not None:
            observer[side] = {"interface": {"name": name}}
    for key, side, copy in (
        ("srczonetype", "ingress", "src_zone_type"),
        ("dstzonetype", "egress", "dst_zone_type"),
    ):
        raw_zone = pop(key, None)
        if raw_zone is not None:
            xg[copy] = raw_zone
            if raw_zone.strip():
                observer.setdefault(side, {})["zone"] = raw_zone.strip()
    if serial is not None:
        host = _host_name(serial, ctx.extra)
        if host is not None:
            doc["host"] = {"name": host}
    for key in ("dir_disp", "srczone", "dstzone"):
        xg.pop(key, None)

    if xg.get("log_type") == "Firewall":
        _firewall(xg, doc, event, observer)
    else:
        _network_fields(xg, doc)

    related: dict[str, Any] = {}
    host_name = doc.get("host", {}).get("name")
    if host_name is not None:
        related["hosts"] = [host_name]
    source, destination = doc.get("source", {}), doc.get("destination", {})
    ips = (
        source.get("ip"),
        destination.get("ip"),
        source.get("nat", {}).get("ip"),
        destination.get("nat", {}).get("ip"),
    )
    unique_ips = list(dict.fromkeys(ip for ip in ips if ip is not None))
    if unique_ips:
        related["ip"] = unique_ips
    user = doc.get("source", {}).get("user", {}).get("name")
    if user is not None:
        related["user"] = [user]
    if related:
        doc["related"] = related
    event["dataset"] = DATASET
    event["module"] = "sophos"
    if xg:
        doc["sophos"] = {"xg": xg}
    event["original"] = original
    return doc


def _network_fields(xg: dict[str, str], doc: EcsDoc) -> None:
    """Addresses, ports, counters, users and rule of any log type."""
    source: dict[str, Any] = {}
    destination: dict[str, Any] = {}
    endpoints: dict[str, dict[str, Any]] = {
        "source": source,
        "destination": destination,
        "source_nat": {},
        "destination_nat": {},
    }
    for key, name, field in _IP_FIELDS:
        value = xg.get(key)
        if value is not None and field not in endpoints[name]:
            address = normalize_ip(value)
            if address is not None:
                del xg[key]
                endpoints[name][field] = address
    for key, name, field in _LONG_FIELDS:
        value = xg.get(key)
        if value is not None:
            number = _long(value)
            if number is not None:
                del xg[key]
                endpoints[name][field] = number
    for key, endpoint in (("src_mac", source), ("dst_mac", destination)):
        if key in xg:
            endpoint["mac"] = _mac(xg.pop(key))
    user: dict[str, Any] = {}
    if "user_name" in xg:
        user["name"] = xg.pop("user_name")
    if "user_gp" in xg:
        user["group"] = {"name": xg.pop("user_gp")}
    if user:
        source["user"] = user
    rule: dict[str, Any] = {}
    if "fw_rule_id" in xg:
        rule["id"] = xg.pop("fw_rule_id")
    if "policy_type" in xg:
        rule["ruleset"] = xg.pop("policy_type")
    if rule:
        doc["rule"] = rule
    network: dict[str, Any] = {}
    if "application" in xg:
        network["protocol"] = xg.pop("application").lower()
    if "protocol" in xg:
        network["transport"] = xg.pop("protocol").lower()
    for field in ("bytes", "packets"):
        if field in source or field in destination:
            total = source.get(field, 0) + destination.get(field, 0)
            if total <= _MAX_LONG:
                network[field] = total
    for name, endpoint in (("source", source), ("destination", destination)):
        nat = endpoints[name + "_nat"]
        if nat:
            endpoint["nat"] = nat
        if endpoint:
            doc[name] = endpoint
    if network:
        doc["network"] = network


def _firewall(
    xg: dict[str, str], doc: EcsDoc, event: dict[str, Any], observer: dict[str, Any]
) -> None:
    """The `firewall` sub-pipeline: event classification, endpoints, direction from zones."""
    event["kind"] = "event"
    subtype = xg.get("log_subtype")
    if subtype is not None:
        event["action"] = subtype.lower()
        event["outcome"] = "success"
    categories = []
    if event.get("code") in _ALERT_CODES:
        event["kind"] = "alert"
        categories.append("intrusion_detection")
    categories.append("network")
    event["category"] = categories
    types: list[str] = []
    connevent = xg.get("connevent")
    if connevent in ("Start", "Interim"):
        types += ["start", "allowed", "connection"]
    elif connevent == "Stop":
        types += ["end", "allowed", "connection"]
    if xg.get("status") == "Deny":
        types += ["denied", "connection"]
    if types:
        event["type"] = types
    _network_fields(xg, doc)
    ingress = observer.get("ingress", {}).get("zone")
    egress = observer.get("egress", {}).get("zone")
    direction = None
    if egress in _INSIDE_ZONES and ingress == "WAN":
        direction = "inbound"
    elif ingress in _INSIDE_ZONES and egress == "WAN":
        direction = "outbound"
    elif ingress in _INSIDE_ZONES and egress in _INSIDE_ZONES:
        direction = "internal"
    elif ingress == "WAN" and egress == "WAN":
        direction = "external"
    if direction is not None:
        doc.setdefault("network", {})["direction"] = direction
