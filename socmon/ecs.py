"""ECS helpers and the index templates socmon installs for events, alerts and dead letters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Fields that carry IP addresses in socmon's documents (ECS).
IP_FIELDS = (
    "client.ip",
    "destination.ip",
    "destination.nat.ip",
    "host.ip",
    "observer.ip",
    "related.ip",
    "server.ip",
    "source.ip",
    "source.nat.ip",
)
DATE_FIELDS = ("@timestamp", "event.created", "event.ingested", "event.start", "event.end")
LONG_FIELDS = (
    "client.port",
    "destination.bytes",
    "destination.packets",
    "destination.port",
    "destination.nat.port",
    "event.duration",
    "event.severity",
    "network.bytes",
    "network.packets",
    "process.pid",
    "server.port",
    "source.bytes",
    "source.packets",
    "source.port",
    "source.nat.port",
)


def get_field(doc: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """Read a dotted ECS field from a nested document; a flat dotted key also counts."""
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return doc.get(dotted, default) if isinstance(doc, Mapping) else default
        node = node[part]
    return node


def set_field(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Set a dotted ECS field in a nested document, creating (or replacing non-dict) parents."""
    *parents, leaf = dotted.split(".")
    node = doc
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def _properties(fields: tuple[str, ...], mapping: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for dotted in fields:
        parts = dotted.split(".")
        node = props
        for part in parts[:-1]:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[parts[-1]] = dict(mapping)
    return props


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key in out and isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def base_mappings() -> dict[str, Any]:
    """Mappings shared by events and alerts: ECS types right for ip, date and numbers."""
    props: dict[str, Any] = {}
    props = _merge(props, _properties(IP_FIELDS, {"type": "ip"}))
    props = _merge(props, _properties(DATE_FIELDS, {"type": "date"}))
    props = _merge(props, _properties(LONG_FIELDS, {"type": "long"}))
    props = _merge(
        props,
        {
            "message": {"type": "text"},
            "event": {"properties": {"original": {"type": "keyword", "index": False}}},
            "tags": {"type": "keyword"},
        },
    )
    return {
        "dynamic_templates": [
            {
                "strings_as_keyword": {
                    "match_mapping_type": "string",
                    "mapping": {"type": "keyword", "ignore_above": 1024},
                }
            }
        ],
        "properties": props,
    }


def events_template(*, data_stream: bool) -> dict[str, Any]:
    """Events of every namespace: `logs-<dataset>-<namespace>` (Elastic's naming scheme).

    One template for all namespaces, as Elastic's own `logs` template: patterns that end in
    different namespaces would overlap (`logs-*-a*` and `logs-*-ab*`), which the server refuses.
    Priority 200 places it above Elastic's built-in `logs` template (100).
    """
    body: dict[str, Any] = {
        "index_patterns": ["logs-*-*"],
        "priority": 200,
        "template": {"mappings": base_mappings(), "settings": {"index": {"number_of_replicas": 0}}},
        "_meta": {"managed_by": "socmon"},
    }
    if data_stream:
        body["data_stream"] = {}
    return body


def alerts_template() -> dict[str, Any]:
    mappings = base_mappings()
    mappings["properties"] = _merge(
        mappings["properties"],
        _properties(("kibana.alert.original_time", "socmon.alert.created"), {"type": "date"}),
    )
    return {
        "index_patterns": ["socmon-alerts-*"],
        "priority": 200,
        "template": {"mappings": mappings, "settings": {"index": {"number_of_replicas": 0}}},
        "_meta": {"managed_by": "socmon"},
    }


def deadletter_template() -> dict[str, Any]:
    """Dead letters keep the rejected document as an unindexed blob plus the reason."""
    return {
        "index_patterns": ["socmon-deadletter-*"],
        "priority": 200,
        "template": {
            "mappings": {
                "dynamic": False,
                "properties": {
                    "@timestamp": {"type": "date"},
                    "error": {
                        "properties": {"message": {"type": "text"}, "type": {"type": "keyword"}}
                    },
                    "socmon": {
                        "properties": {"target": {"type": "keyword"}, "doc_id": {"type": "keyword"}}
                    },
                    "document": {"type": "object", "enabled": False},
                },
            },
            "settings": {"index": {"number_of_replicas": 0}},
        },
        "_meta": {"managed_by": "socmon"},
    }


def sources_template() -> dict[str, Any]:
    """Source health documents, one per (collector host, source), replaced on every publish."""
    return {
        "index_patterns": ["socmon-sources-*"],
        "priority": 200,
        "template": {
            "mappings": {
                "dynamic_templates": [
                    {
                        "strings_as_keyword": {
                            "match_mapping_type": "string",
                            "mapping": {"type": "keyword"},
                        }
                    }
                ],
                "properties": {
                    "@timestamp": {"type": "date"},
                    "first_seen": {"type": "double"},
                    "last_seen": {"type": "double"},
                    "eps": {"type": "double"},
                    "events": {"type": "long"},
                    "bytes": {"type": "long"},
                    "parse_failures": {"type": "long"},
                    "drops": {"type": "long"},
                },
            },
            "settings": {"index": {"number_of_replicas": 0}},
        },
        "_meta": {"managed_by": "socmon"},
    }
