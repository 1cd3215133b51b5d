"""Suricata EVE JSON (one object per line) to ECS, as Elastic's `suricata` integration maps it.

Input: one EVE record (`alert`, `flow`, `dns`, `http`, `tls`, `fileinfo`, `ssh`, `stats`, ...).
Output: the ECS document; the rest of the record stays under `suricata.eve.*`.

Deliberate differences from Elastic's pipeline (none changes a compared field of the
conformance corpus):

- `@timestamp` (and `event.start`/`event.end`) are written in UTC with millisecond precision; a
  timestamp without an offset is read in `ctx.tz` (UTC when unset). A record without a valid
  `timestamp` gets no `@timestamp` (Elastic fails the document).
- `event.created` is not set (Elastic copies the ingest time).
- `network.community_id`, GeoIP, `user_agent.*` parsing, `dns.question.registered_domain` and the
  x509 subject/issuer split are not computed.
- `event.dataset` / `event.module` are set ("suricata.eve" / "suricata").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from collectors.ecs import format_timestamp, normalize_ip
from collectors.parsing import EcsDoc, ParseError, SourceContext

DATASET = "suricata.eve"

# Per event type: what Elastic's pipeline sets (event.kind, event.category, event.type,
# network.protocol). Types not listed keep kind "event" and category ["network"].
_EVENT_TYPES: dict[str, dict[str, Any]] = {
    "alert": {"kind": "alert", "category": ["network", "intrusion_detection"]},
    "dns": {"type": ["protocol"], "protocol": "dns"},
    "flow": {"type": ["connection"]},
    "ftp": {"type": ["protocol"], "protocol": "ftp"},
    "ftp_data": {"type": ["protocol"], "protocol": "ftp"},
    "http": {"category": ["network", "web"], "type": ["access", "protocol"], "protocol": "http"},
    "http2": {"category": ["network", "web"], "type": ["access", "protocol"], "protocol": "http"},
    "mqtt": {"type": ["protocol"], "protocol": "mqtt"},
    "smb": {"type": ["protocol"], "protocol": "smb"},
    "ssh": {"type": ["protocol"], "protocol": "ssh"},
    "stats": {"kind": "metric"},
    "tftp": {"type": ["protocol"], "protocol": "tftp"},
    "tls": {"type": ["protocol"], "protocol": "tls"},
    "rdp": {"type": ["protocol"], "protocol": "rdp"},
    "rfb": {"type": ["protocol"], "protocol": "rdp"},
}
_NO_PROTOCOL = frozenset({"failed", "template", "template-rust"})
_FLOW_STATE_TYPES = {"new": "start", "closed": "end"}
# (EVE flow key, ECS endpoint, ECS field)
_FLOW_COUNTERS = (
    ("pkts_toclient", "destination", "packets"),
    ("pkts_toserver", "source", "packets"),
    ("bytes_toclient", "destination", "bytes"),
    ("bytes_toserver", "source", "bytes"),
)
_MAX_LONG = 2**63 - 1
_MAX_TEXT_DATE = 64
_ONE_MICROSECOND = timedelta(microseconds=1)


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One EVE JSON record to an ECS document; ParseError when it is not a JSON object."""
    try:
        eve = json.loads(message, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        raise ParseError(f"not a JSON record: {str(error)[:120]}") from None
    if not isinstance(eve, dict):
        raise ParseError("EVE record is not a JSON object")
    return _build(message, eve, ctx)


def _long(value: Any) -> int | None:
    """A JSON integer (or decimal text) that fits a long; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -_MAX_LONG - 1 <= value <= _MAX_LONG else None
    if isinstance(value, str) and value.isdecimal() and value.isascii() and len(value) <= 19:
        number = int(value)
        return number if number <= _MAX_LONG else None
    return None


def _port(value: Any) -> int | None:
    number = _long(value)
    return number if number is not None and 0 <= number <= 65535 else None


def _text(value: Any) -> str | None:
    """A JSON string or number as text (Elastic's mustache templates); None otherwise."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _time(value: Any, tz: tzinfo) -> str | None:
    """An ISO 8601 EVE time as UTC text with milliseconds; None when it is not one."""
    if not isinstance(value, str) or not 10 <= len(value) <= _MAX_TEXT_DATE:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    try:
        return format_timestamp(moment.astimezone(UTC))
    except OverflowError:
        return None


def _section(eve: dict[str, Any], key: str) -> dict[str, Any]:
    value = eve.get(key)
    return value if isinstance(value, dict) else {}


def _build(original: str, eve: dict[str, Any], ctx: SourceContext) -> EcsDoc:
    tz = ctx.tz or UTC
    event: dict[str, Any] = {"kind": "event", "category": ["network"]}
    doc: EcsDoc = {}
    timestamp = _time(eve.get("timestamp"), tz)
    if timestamp is not None:
        doc["@timestamp"] = timestamp
        del eve["timestamp"]
    doc["event"] = event
    doc["observer"] = {"vendor": "OISF", "product": "Suricata", "type": "ids"}
    source: dict[str, Any] = {}
    destination: dict[str, Any] = {}
    network: dict[str, Any] = {}

    ether = _section(eve, "ether")
    for key, endpoint in (("src_mac", source), ("dest_mac", destination)):
        mac = ether.pop(key, None)
        if isinstance(mac, str) and mac:
            endpoint["mac"] = mac
    for key, endpoint in (("src_ip", source), ("dest_ip", destination)):
        address = _text(eve.get(key))
        if address is not None:
            del eve[key]
            endpoint["address"] = address
            ip = normalize_ip(address)
            if ip is not None:
                endpoint["ip"] = ip
    for key, endpoint in (("src_port", source), ("dest_port", destination)):
        port = _port(eve.get(key))
        if port is not None:
            del eve[key]
            endpoint["port"] = port
    proto = eve.pop("proto", None)
    if isinstance(proto, str) and proto:
        network["transport"] = proto.lower()
    if "flow_id" in eve and _text(eve["flow_id"]) is not None:
        eve["flow_id"] = _text(eve["flow_id"])

    event_type = eve.get("event_type")
    if isinstance(event_type, str):
        event_type = eve["event_type"] = event_type.lower()
        params = _EVENT_TYPES.get(event_type)
        if params is not None:
            for key in ("kind", "category", "type"):
                if key in params:
                    event[key] = list(params[key]) if key != "kind" else params[key]
            if "protocol" in params:
                network["protocol"] = params["protocol"]
    app_proto = eve.pop("app_proto", None)
    if isinstance(app_proto, str) and app_proto:
        app_proto = app_proto.lower()
        if app_proto == "ftp-data":
            network["protocol"] = "ftp"
        elif app_proto not in _NO_PROTOCOL:
            network["protocol"] = app_proto

    http = _section(eve, "http")
    if http:
        _http_fields(http, event_type, doc, event, destination, network)
    hashes: list[str] = []
    if network.get("protocol") == "tls":
        hashes = _tls_fields(_section(eve, "tls"), doc, destination, tz)
    if network.get("protocol") == "dns":
        _dns_fields(_section(eve, "dns"), doc)

    flow = _section(eve, "flow")
    state = flow.get("state")
    state_type = _FLOW_STATE_TYPES.get(state) if isinstance(state, str) else None
    if state_type is not None:
        event.setdefault("type", []).append(state_type)

    fileinfo = _section(eve, "fileinfo")
    file: dict[str, Any] = {}
    if _text(fileinfo.get("filename")) is not None:
        file["path"] = _text(fileinfo.pop("filename"))
    size = _long(fileinfo.get("size"))
    if size is not None:
        del fileinfo["size"]
        file["size"] = size
    if file:
        doc["file"] = file

    alert = _section(eve, "alert")
    if alert:
        _alert_fields(alert, doc, event)

    totals = {"bytes": 0, "packets": 0}
    for key, endpoint_name, field in _FLOW_COUNTERS:
        count = _long(flow.get(key))
        if count is not None:
            del flow[key]
            (source if endpoint_name == "source" else destination)[field] = count
            totals[field] += count
    for field, total in totals.items():
        if 0 < total <= _MAX_LONG:
            network[field] = total
    start = _time(flow.get("start"), tz)
    end = _time(flow.get("end"), tz)
    if start is not None:
        del flow["start"]
        event["start"] = start
    if end is not None:
        del flow["end"]
        event["end"] = end
    if start is not None and end is not None:
        begun = datetime.fromisoformat(start)
        ended = datetime.fromisoformat(end)
        if begun <= ended:
            event["duration"] = (ended - begun) // _ONE_MICROSECOND * 1000

    for name, section in (("source", source), ("destination", destination)):
        if section:
            doc[name] = section
    if network:
        doc["network"] = network
    resolved = doc.get("dns", {}).get("resolved_ip", [])
    related_ips = [
        ip for ip in (*resolved, source.get("ip"), destination.get("ip")) if ip is not None
    ]
    related: dict[str, Any] = {}
    if "domain" in destination:
        related["hosts"] = [destination["domain"]]
    if hashes:
        related["hash"] = hashes
    if related_ips:
        related["ip"] = list(dict.fromkeys(related_ips))
    if related:
        doc["related"] = related
    event["dataset"] = DATASET
    event["module"] = "suricata"
    for key in [key for key, value in eve.items() if value == {}]:
        del eve[key]  # sections whose every field moved to ECS
    doc["suricata"] = {"eve": eve}
    event["original"] = original
    return doc


def _split_url(original: str) -> dict[str, str]:
    """`url.path`, `url.query`, `url.fragment` of an EVE `http.url` (Elastic's grok
    `[^?#]*(?:\\?[^#]*)?(?:#.*)?`; empty parts are left out)."""
    parts: dict[str, str] = {}
    rest, hash_sign, fragment = original.partition("#")
    path, question, query = rest.partition("?")
    if path:
        parts["path"] = path
    if question and query:
        parts["query"] = query
    if hash_sign and fragment:
        parts["fragment"] = fragment
    return parts


def _http_fields(
    http: dict[str, Any],
    event_type: Any,
    doc: EcsDoc,
    event: dict[str, Any],
    destination: dict[str, Any],
    network: dict[str, Any],
) -> None:
    status = _long(http.get("status"))
    if event_type == "http" and status is not None:
        event["outcome"] = "success" if status < 400 else "failure"
    port = _port(http.get("http_port"))
    if port is not None:
        http["http_port"] = port
    request: dict[str, Any] = {}
    response: dict[str, Any] = {}
    method = _text(http.pop("http_method", None))
    if method is not None:
        request["method"] = method
    if status is not None:
        del http["status"]
        response["status_code"] = status
    hostname = _text(http.pop("hostname", None))
    if hostname is not None:
        destination["domain"] = hostname
    url: dict[str, Any] = {}
    if network.get("protocol") == "http" and "domain" in destination:
        url["domain"] = destination["domain"]
    original = _text(http.pop("url", None))
    if original is not None:
        url["original"] = original
        url.update(_split_url(original))
    if url:
        doc["url"] = url
    referrer = _text(http.pop("http_refer", None))
    if referrer is not None:
        request["referrer"] = referrer
    length = _long(http.get("length"))
    if length is not None:
        del http["length"]
        response["body"] = {"bytes": length}
    agent = _text(http.pop("http_user_agent", None))
    if agent is not None:
        doc["user_agent"] = {"original": agent}
    if request or response:
        doc["http"] = {
            key: value for key, value in (("request", request), ("response", response)) if value
        }


def _tls_fields(
    tls_eve: dict[str, Any], doc: EcsDoc, destination: dict[str, Any], tz: tzinfo
) -> list[str]:
    """Set `tls.*` (and `destination.domain` from the SNI); the hashes for `related.hash`."""
    tls: dict[str, Any] = {}
    server: dict[str, Any] = {}
    client: dict[str, Any] = {}
    version = tls_eve.get("version")
    if isinstance(version, str) and version != "UNDETERMINED":
        protocol, space, number = version.partition(" ")
        if space and protocol and number and " " not in number:
            tls["version_protocol"] = protocol.lower()
            tls["version"] = number
    sni = tls_eve.get("sni")
    if isinstance(sni, str) and sni.endswith("."):
        sni = tls_eve["sni"] = sni[:-1]
    for key, field in (("subject", "subject"), ("issuerdn", "issuer")):
        value = _text(tls_eve.get(key))
        if value is not None:
            server[field] = value
    resumed = tls_eve.get("session_resumed")
    if isinstance(resumed, bool):
        tls["resumed"] = resumed
    fingerprint = _text(tls_eve.get("fingerprint"))
    related_hashes = []
    if fingerprint is not None:
        sha1 = fingerprint.upper().replace(":", "")
        server["hash"] = {"sha1": sha1}
        related_hashes.append(sha1)
    if isinstance(sni, str) and sni:
        client["server_name"] = sni
        destination["domain"] = sni
    for key, target, field in (("ja3s", server, "ja3s"), ("ja3", client, "ja3")):
        digest = _text(_section(tls_eve, key).get("hash"))
        if digest is not None:
            target[field] = digest
            related_hashes.append(digest)
    x509: dict[str, Any] = {}
    serial = _text(tls_eve.get("serial"))
    if serial is not None:
        x509["serial_number"] = serial.replace(":", "")
    for key, field in (("notafter", "not_after"), ("notbefore", "not_before")):
        moment = _time(tls_eve.get(key), tz)
        if moment is not None:
            server[field] = moment
            x509[field] = moment
    if x509:
        server["x509"] = x509
    if server:
        tls["server"] = server
    if client:
        tls["client"] = client
    if tls:
        doc["tls"] = tls
    return related_hashes


def _dns_fields(dns_eve: dict[str, Any], doc: EcsDoc) -> None:
    dns: dict[str, Any] = {}
    kind = _text(dns_eve.get("type"))
    if kind is not None:
        dns["type"] = kind
    dns_id = _text(dns_eve.get("id"))
    if dns_id is not None:
        dns["id"] = dns_id
    rcode = _text(dns_eve.get("rcode"))
    if rcode is not None:
        dns["response_code"] = rcode
    name = _text(dns_eve.get("rrname"))
    if kind == "answer":
        answer: dict[str, Any] = {}
        for key, field in (("rrname", "name"), ("rrtype", "type"), ("rdata", "data")):
            value = _text(dns_eve.get(key))
            if value is not None:
                answer[field] = value
        ttl = _long(dns_eve.get("ttl"))
        if ttl is not None:
            answer["ttl"] = ttl
        if answer:
            dns["answers"] = [answer]
        data = answer.get("data")
        if isinstance(data, str) and normalize_ip(data) is not None:
            dns["resolved_ip"] = [normalize_ip(data)]
    elif name is not None:
        question: dict[str, Any] = {"name": name}
        rrtype = _text(dns_eve.get("rrtype"))
        if rrtype is not None:
            question["type"] = rrtype
        dns["question"] = question
    if dns:
        doc["dns"] = dns


def _alert_fields(alert: dict[str, Any], doc: EcsDoc, event: dict[str, Any]) -> None:
    category = _text(alert.get("category"))
    if category is not None:
        doc["message"] = category
    rule: dict[str, Any] = {}
    for key, field in (("category", "category"), ("signature_id", "id"), ("signature", "name")):
        value = _text(alert.get(key))
        if value is not None:
            rule[field] = value
    if rule:
        doc["rule"] = rule
    action = _text(alert.pop("action", None))
    if action is not None:
        event.setdefault("type", []).append("denied" if action == "blocked" else action)
    severity = _long(alert.get("severity"))
    if severity is not None:
        del alert["severity"]
        event["severity"] = severity
