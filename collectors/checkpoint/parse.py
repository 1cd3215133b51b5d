"""Check Point syslog (`key:"value";` pairs) to ECS, as Elastic's `checkpoint` integration
(`checkpoint.firewall`) maps it.

Input: one message as Check Point's Log Exporter sends it: `<PRI>1 TIMESTAMP HOST APP PROCID
MSGID [key:"value"; key:"value"; ...]` (RFC 5424 with the pairs in place of structured data),
or the bracketed pair list alone. Output: the ECS document; fields Elastic keeps under
`checkpoint.*` stay there.

Deliberate differences from Elastic's pipeline (none changes a compared field of the
conformance corpus):

- Only the fields of the standard firewall, audit and login records are mapped (the table
  `_RENAMES`); e-mail, DLP and threat-emulation specifics stay under `checkpoint.*`.
- GeoIP / ASN enrichment is not produced; `packets` (the dropped-packet list of a packet-drop
  record) stays text under `checkpoint.packets` rather than `checkpoint.packets_dropped`.
- `log.syslog.*` carries the PRI; `event.dataset` / `event.module` are set
  ("checkpoint.firewall" / "checkpoint").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from itertools import compress, repeat
from typing import Any

from collectors.ecs import epoch_timestamp, format_timestamp, iana_protocol_name, normalize_ip
from collectors.parsing import EcsDoc, ParseError, SourceContext
from collectors.syslog.parse import split_pri

DATASET = "checkpoint.firewall"
_MAX_LONG = 2**63 - 1

_HEADER_RE = re.compile(r"\d{1,2} +(\d{4}-\d{2}-\d{2}T\S+|-) +(\S+) +\S+ +\S+ +\S+ +(?=\[)")
# A key starts after a non-key character (so a long run of key characters is scanned once).
# The value is `(?:[^"\\]|\\.)*` unrolled: the same text, without one alternation per character.
_PAIR_RE = re.compile(r'(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]+):"([^"\\]*(?:\\.[^"\\]*)*)"')
_ESCAPE_RE = re.compile(r"\\(.)")
# Keys Elastic's `kv` processor excludes.
_EXCLUDED = frozenset(
    (
        "flags",
        "layer_uuid",
        "originsicname",
        "__policy_id_tag",
        "version",
        "rounded_bytes",
        "db_tag",
        "update_service",
    )
)
# (checkpoint key, ECS field): the first key that is present sets the field.
_RENAMES: tuple[tuple[str, str], ...] = (
    ("src", "source.ip"),
    ("client_ip", "source.ip"),
    ("dst", "destination.ip"),
    ("uid", "source.user.id"),
    ("administrator", "source.user.name"),
    ("source_user_name", "source.user.name"),
    ("mac_source_address", "source.mac"),
    ("src_machine_name", "source.domain"),
    ("machine", "source.domain"),
    ("destination_dns_hostname", "destination.domain"),
    ("dst_machine_name", "destination.domain"),
    ("src_user_group", "source.user.group.name"),
    ("usercheck_incident_uid", "destination.user.id"),
    ("service_name", "destination.service.name"),
    ("mac_destination_address", "destination.mac"),
    ("loguid", "event.id"),
    ("packet_capture", "event.url"),
    ("start_time", "event.start"),
    ("first_detection", "event.start"),
    ("last_detection", "event.end"),
    ("app_risk", "event.risk_score"),
    ("file_name", "file.name"),
    ("file_type", "file.type"),
    ("file_md5", "file.hash.md5"),
    ("file_sha1", "file.hash.sha1"),
    ("file_sha256", "file.hash.sha256"),
    ("user_group", "group.name"),
    ("os_version", "host.os.version"),
    ("os_name", "host.os.name"),
    ("method", "http.request.method"),
    ("referrer", "http.request.referrer"),
    ("service_id", "network.application"),
    ("app_name", "network.application"),
    ("ifdir", "network.direction"),
    ("layer_name", "network.name"),
    ("client_inbound_interface", "observer.ingress.interface.name"),
    ("client_outbound_interface", "observer.egress.interface.name"),
    ("origin", "observer.name"),
    ("origin_ip", "observer.ip"),
    ("endpoint_ip", "observer.ip"),
    ("outzone", "observer.egress.zone"),
    ("security_outzone", "observer.egress.zone"),
    ("inzone", "observer.ingress.zone"),
    ("security_inzone", "observer.ingress.zone"),
    ("update_version", "observer.version"),
    ("process_name", "process.name"),
    ("parent_process_name", "process.parent.name"),
    ("matched_category", "rule.category"),
    ("categories", "rule.category"),
    ("malware_action", "rule.description"),
    ("malware_rule_id", "rule.id"),
    ("app_rule_id", "rule.id"),
    ("objectname", "rule.name"),
    ("rule_name", "rule.name"),
    ("malware_rule_name", "rule.name"),
    ("app_rule_name", "rule.name"),
    ("dlp_rule_name", "rule.name"),
    ("smartdefence_profile", "rule.ruleset"),
    ("policy", "rule.ruleset"),
    ("rule_uid", "rule.uuid"),
    ("url", "url.original"),
    ("resource", "url.original"),
    ("http_host", "url.domain"),
    ("user_agent", "user_agent.original"),
    ("industry_reference", "vulnerability.id"),
    ("device_name", "host.name"),
    ("device_type", "host.type"),
)
# (checkpoint key, ECS field) converted to a long; "0" means "no translation" for NAT ports.
_LONGS: tuple[tuple[str, str], ...] = (
    ("client_outbound_packets", "source.packets"),
    ("server_outbound_packets", "destination.packets"),
    ("client_outbound_bytes", "source.bytes"),
    ("sent_byte", "source.bytes"),
    ("server_outbound_bytes", "destination.bytes"),
    ("received_bytes", "destination.bytes"),
    ("service", "destination.port"),
    ("xlatedport", "destination.nat.port"),
    ("s_port", "source.port"),
    ("xlatesport", "source.nat.port"),
    ("sequencenum", "event.sequence"),
    ("severity", "event.severity"),
    ("file_size", "file.size"),
    ("bytes", "network.bytes"),
    ("packets", "network.packets"),
)
_PATHS = {field: tuple(field.split(".")) for _, field in (*_RENAMES, *_LONGS)}
# The tables' keys alone, to select the entries present in C.
_RENAME_KEYS = tuple(key for key, _ in _RENAMES)
_LONG_KEYS = tuple(key for key, _ in _LONGS)
# Excluded keys that are dropped (`originsicname` is kept as it is).
_EXCLUDED_DROPPED = _EXCLUDED - {"originsicname"}
_NAT_PORTS = frozenset(("xlatedport", "xlatesport"))
_IP_FIELDS = frozenset(("source.ip", "destination.ip", "observer.ip"))
# Keys moved to ECS without keeping a copy under `checkpoint.*`, besides the renamed ones.
_DROPPED = frozenset(("time", "type", "product", "xlatesrc", "xlatedst", "proto", "contextnum"))
_ALLOWED_ACTIONS = frozenset(("Accept", "Allow"))
_DENIED_ACTIONS = frozenset(("Drop", "Reject", "Block", "Prevent"))
_ALERT_ACTIONS = frozenset(("Prevent", "Detect", "Quarantine"))
_FAILED_LOGIN_PREFIX = "Administrator failed to log in: "
# Keys kept under `checkpoint.*` with Elastic's names.
_VENDOR_NAMES = {"originsicname": "origin_sic_name"}


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One Check Point syslog message to an ECS document; ParseError when it holds no pairs."""
    priority: int | None = None
    header_time: str | None = None
    body = message
    if message.startswith("<"):
        try:
            pri, rest = split_pri(message)
        except ParseError:
            pri, rest = None, message
        header = _HEADER_RE.match(rest) if pri is not None else None
        if header is not None:
            priority = pri
            header_time = None if header.group(1) == "-" else header.group(1)
            body = rest[header.end() :]
    pairs = _PAIR_RE.findall(body)
    fields: dict[str, str] = dict(pairs)
    if len(fields) == len(pairs) and "\\" not in body:
        # Every key once and no escape (the usual record): the same result, built in C.
        origin = fields.get("originsicname")
        fields = dict(zip(fields, map(str.strip, fields.values(), repeat(" ")), strict=True))
        if origin is not None:
            fields["originsicname"] = origin
        if not _EXCLUDED_DROPPED.isdisjoint(fields):
            for key in _EXCLUDED_DROPPED.intersection(fields):
                del fields[key]
        if "" in fields.values():
            for key in [key for key, value in fields.items() if not value]:
                if key != "originsicname":
                    del fields[key]
    else:
        fields = {}
        for key, value in pairs:
            if key in _EXCLUDED:
                if key == "originsicname":
                    fields[key] = value
                continue
            if "\\" in value:
                value = _ESCAPE_RE.sub(r"\1", value)
            value = value.strip(" ")
            if value:
                fields.setdefault(key, value)
    if not fields:
        raise ParseError('no key:"value" pairs in Check Point message')
    return _build(message, fields, priority, header_time, ctx)


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    """`target[a][b][c] = value` for the dotted `path` "a.b.c" unless already set."""
    node = target
    *parents, last = _PATHS.get(path) or path.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node.setdefault(last, value)


def _has(doc: EcsDoc, path: str) -> bool:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _to_long(text: str) -> int | None:
    if text.isdecimal() and text.isascii() and len(text) <= 19:
        number = int(text)
        return number if number <= _MAX_LONG else None
    return None


def _time(text: str) -> str | None:
    """UNIX seconds or ISO 8601 (UTC when it has no offset)."""
    if text.isdecimal():
        return epoch_timestamp(text)
    if len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_timestamp(moment)


def _build(
    original: str,
    cp: dict[str, str],
    priority: int | None,
    header_time: str | None,
    ctx: SourceContext,
) -> EcsDoc:
    doc: EcsDoc = {}
    timestamp = _time(cp["time"]) if "time" in cp else None
    if timestamp is None and header_time is not None:
        timestamp = _time(header_time)
    if timestamp is not None:
        doc["@timestamp"] = timestamp
    event: dict[str, Any] = {"dataset": DATASET, "module": "checkpoint"}
    doc["event"] = event
    observer: dict[str, Any] = {"vendor": "Checkpoint"}
    doc["observer"] = observer
    observer["type"] = cp.get("type", "firewall")
    if "product" in cp:
        observer["product"] = cp["product"]
    if priority is not None:
        doc["log"] = {
            "syslog": {
                "priority": priority,
                "facility": {"code": priority >> 3},
                "severity": {"code": priority & 7},
            }
        }

    moved: set[str] = set()
    done: set[str] = set()  # ECS fields set by the tables: the first key present wins
    for key, field in compress(_RENAMES, map(cp.__contains__, _RENAME_KEYS)):
        if field not in done:
            value: Any = cp[key]
            if key == "machine" and value == "localhost":
                continue  # Elastic names no source domain for a local session
            if field in _IP_FIELDS:
                value = normalize_ip(value)
                if value is None:
                    continue
            _put(doc, field, value)
            moved.add(key)
            done.add(field)
    for key, field in compress(_LONGS, map(cp.__contains__, _LONG_KEYS)):
        if field not in done:
            number = _to_long(cp[key])
            if number is not None and not (key in _NAT_PORTS and number == 0):
                _put(doc, field, number)
                moved.add(key)
                done.add(field)
    for key, field in (("xlatesrc", "source.nat.ip"), ("xlatedst", "destination.nat.ip")):
        if key in cp and cp[key] != "0.0.0.0":
            address = normalize_ip(cp[key])
            if address is not None:
                _put(doc, field, address)
    if "proto" in cp:
        network = doc.setdefault("network", {})
        network["iana_number"] = cp["proto"]
        transport = iana_protocol_name(cp["proto"])
        if transport is not None:
            network["transport"] = transport
    if "ifname" in cp:
        direction = doc.get("network", {}).get("direction")
        side = {"inbound": "ingress", "outbound": "egress"}.get(direction or "")
        if side is not None and not _has(observer, f"{side}.interface.name"):
            _put(observer, f"{side}.interface.name", cp["ifname"])
            moved.add("ifname")

    _classify(cp, doc, event)
    message = cp.get("message") or cp.get("reason") or cp.get("subject")
    if message is not None:
        doc["message"] = message
    _totals(doc)
    _related(doc)

    vendor: dict[str, Any] = {}
    for key, value in cp.items():
        if key in moved or key in _DROPPED or key in ("message", "subject", "action"):
            continue
        vendor[_VENDOR_NAMES.get(key, key)] = value
    if vendor:
        doc["checkpoint"] = vendor
    event["original"] = original
    return doc


def _classify(cp: dict[str, str], doc: EcsDoc, event: dict[str, Any]) -> None:
    """`event.kind` / `category` / `type` / `outcome` / `action`, and the login fields."""
    rule_action = cp.get("rule_action")
    operation = cp.get("operation")
    categories: list[str] = []
    types: list[str] = []
    event["kind"] = "alert" if rule_action in _ALERT_ACTIONS else "event"
    action = cp.get("action")
    if rule_action in _ALLOWED_ACTIONS:
        event["outcome"] = "success"
        types += ["allowed", "connection"]
    elif rule_action in _DENIED_ACTIONS:
        event["outcome"] = "success"
        types += ["connection", "denied"]
    if "malware_action" in cp:
        categories.append("malware")
    if rule_action in ("Detect", "Prevent"):
        categories.append("intrusion_detection")
    failed = cp.get("audit_status") == "Failure"
    if operation in ("Log In", "Log Out"):
        categories.append("authentication")
        if operation == "Log In":
            types = ["start"]
            action = "logon-failed" if failed else "logged-in"
        else:
            types = ["end"]
            action = "logged-out"
        event["outcome"] = "failure" if failed else "success"
        info = cp.get("additional_info", "")
        if failed and info.startswith(_FAILED_LOGIN_PREFIX):
            event["reason"] = info[len(_FAILED_LOGIN_PREFIX) :]
        if "operation_number" in cp:
            event["code"] = cp["operation_number"]
        if "Expert Shell" in cp.get("product", "") or info.startswith("SSH connection"):
            doc.setdefault("network", {})["protocol"] = "ssh"
    else:
        categories.insert(0, "network")
        if action == "Log In":
            event["outcome"] = "success"
            categories.append("authentication")
            types.append("allowed")
            action = "logged-in"
        elif action == "Failed Log In":
            event["outcome"] = "failure"
            categories.append("authentication")
            types.append("denied")
            action = "logon-failed"
    if action is not None:
        event["action"] = action
    event["category"] = categories
    if types:
        event["type"] = types
    source = doc.get("source")
    if source is not None and "user" in source and "name" in source["user"]:
        user = {"name": source["user"]["name"].lower()}
        domain = cp.get("domain_name")
        if domain is not None and operation in ("Log In", "Log Out"):
            source["user"]["domain"] = domain
            user["domain"] = domain.lower()
        doc["user"] = user


def _totals(doc: EcsDoc) -> None:
    source = doc.get("source") or {}
    destination = doc.get("destination") or {}
    network = doc.get("network") or {}
    for name in ("bytes", "packets"):
        if name in source and name in destination and name not in network:
            total = source[name] + destination[name]
            if total <= _MAX_LONG:
                network[name] = total
    if network:
        doc["network"] = network


def _related(doc: EcsDoc) -> None:
    source = doc.get("source") or {}
    destination = doc.get("destination") or {}
    ips: list[str] = []
    for side in (source, destination):
        if "ip" in side:
            ips.append(side["ip"])
        nat = side.get("nat")
        if nat is not None and "ip" in nat:
            ips.append(nat["ip"])
    users = [
        side["user"]["name"]
        for side in (source, destination)
        if "user" in side and "name" in side["user"]
    ]
    related: dict[str, Any] = {}
    if ips:
        related["ip"] = list(dict.fromkeys(ips))
    if users:
        related["user"] = list(dict.fromkeys(users))
    if related:
        doc["related"] = related
