"""Alert documents: what a rule match becomes, written to the alerts index and to incidents."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from detections.sigma.matcher import CompiledRule
from socmon.ecs import set_field

if TYPE_CHECKING:
    from detections.correlation import CorrelationHit

# Elastic Security's risk scores per Sigma level, used as event.severity.
SEVERITY_SCORE = {"informational": 21, "low": 21, "medium": 47, "high": 73, "critical": 99}
# ECS field sets copied from the matched event into the alert.
COPIED = (
    "source",
    "destination",
    "host",
    "user",
    "observer",
    "network",
    "process",
    "url",
    "file",
    "winlog",
    "threat",
    "dns",
    "http",
    "user_agent",
    "registry",
)
# Enrichment context copied from the event's `socmon` object: the owner unit (API scoping),
# the security level, and the inventory context of each side and of the reporting device
# (asset, zone, information systems).
SOCMON_CONTEXT = ("unit", "level", "source", "destination", "observer")


def alert_id(rule_id: str, event_id: str) -> str:
    return hashlib.blake2b(f"{rule_id}\x00{event_id}".encode(), digest_size=20).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def make_alert(
    *,
    alert_id: str,
    rule_id: str,
    title: str,
    level: str,
    tags: Sequence[str],
    group_by: Sequence[str],
    timestamp: str,
    event_id: str = "",
    ruleset: str = "sigma",
    fields: Mapping[str, Any] | None = None,
    rule_path: str | None = None,
) -> dict[str, Any]:
    """The one shape of an alert document (rule matches and socmon's own health alerts)."""
    doc: dict[str, Any] = {
        "@timestamp": timestamp,
        "message": title,
        "event": {
            "kind": "alert",
            "dataset": "socmon.alerts",
            "severity": SEVERITY_SCORE.get(level, 47),
        },
        "rule": {"id": rule_id, "name": title, "ruleset": ruleset},
        "tags": list(tags),
        "socmon": {
            "alert": {
                "id": alert_id,
                "event_id": event_id,
                "level": level,
                "tags": list(tags),
                "group_by": [str(f) for f in group_by],
                "created": _now(),
                "rule_path": rule_path,
            }
        },
    }
    for key, value in (fields or {}).items():
        if key == "socmon" and isinstance(value, Mapping):
            doc["socmon"].update({k: v for k, v in value.items() if k != "alert"})
        elif key == "event" and isinstance(value, Mapping):
            doc["event"].update({k: v for k, v in value.items() if k not in doc["event"]})
        else:
            doc[key] = value
    doc["_id"] = alert_id
    return doc


def group_by_of(custom: Mapping[str, Any]) -> list[str]:
    """A rule's `group_by` custom key as a list of field names."""
    group_by = custom.get("group_by") or []
    return [group_by] if isinstance(group_by, str) else list(group_by)


def event_fields(event: Mapping[str, Any]) -> dict[str, Any]:
    """What an alert carries of the event that matched: its ECS field sets, the dataset and
    action, and the enrichment context (unit, level, inventory context per side)."""
    source_event = event.get("event", {}) if isinstance(event.get("event"), Mapping) else {}
    fields: dict[str, Any] = {key: event[key] for key in COPIED if key in event}
    fields["event"] = {
        "original_dataset": source_event.get("dataset"),
        "action": source_event.get("action"),
    }
    context = event.get("socmon")
    if isinstance(context, Mapping):
        fields["socmon"] = {k: context[k] for k in SOCMON_CONTEXT if k in context}
    return fields


def build_alert(rule: CompiledRule, event: Mapping[str, Any]) -> dict[str, Any]:
    """One alert document for `rule` matching `event` (the event's `_id` must be set)."""
    event_id = str(event.get("_id", ""))
    return make_alert(
        alert_id=alert_id(rule.id, event_id),
        rule_id=rule.id,
        title=rule.title,
        level=rule.level,
        tags=rule.tags,
        group_by=group_by_of(rule.custom),
        timestamp=str(event.get("@timestamp") or _now()),
        event_id=event_id,
        fields=event_fields(event),
        rule_path=str(rule.path) if rule.path else None,
    )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def correlation_alert_id(hit: CorrelationHit) -> str:
    """Deterministic: the same correlation, group and contributing events give the same id."""
    body = orjson.dumps(
        [hit.correlation.id, hit.group, hit.first, hit.last, list(hit.event_ids)],
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
        default=str,
    )
    return hashlib.blake2b(body, digest_size=20).hexdigest()


def build_correlation_alert(hit: CorrelationHit) -> dict[str, Any]:
    """One alert document for a correlation that fired for one group.

    The group-by values are set at their field paths (``source.ip`` → ``{"source": {"ip":
    …}}``) and listed in ``socmon.alert.group_by``, so incidents group correlation alerts as
    they group single-rule alerts. ``@timestamp`` is the last contributing event's time;
    ``event.start``/``event.end`` span the contributing events; ``socmon.correlation`` holds
    the type, count, group, referenced rule ids and up to 100 contributing event ids.
    """
    corr = hit.correlation
    fields: dict[str, Any] = {}
    for name, value in hit.group.items():
        set_field(fields, name, value)
    correlation: dict[str, Any] = {
        "type": corr.type,
        "count": hit.count,
        "condition": {corr.op: corr.count},
        "timespan": corr.timespan,
        "group": dict(hit.group),
        "first": _iso(hit.first),
        "last": _iso(hit.last),
        "rules": list(hit.rule_ids),
        "event_ids": list(hit.event_ids),
    }
    if corr.value_field:
        correlation["field"] = corr.value_field
        correlation["values"] = list(hit.values)
    socmon = fields.get("socmon")
    fields["socmon"] = {**(socmon if isinstance(socmon, dict) else {}), "correlation": correlation}
    event = fields.get("event")
    fields["event"] = {
        **(event if isinstance(event, dict) else {}),
        "start": _iso(hit.first),
        "end": _iso(hit.last),
    }
    aid = correlation_alert_id(hit)
    return make_alert(
        alert_id=aid,
        rule_id=corr.id,
        title=corr.title,
        level=corr.level,
        tags=corr.tags,
        group_by=corr.group_by,
        timestamp=_iso(hit.last),
        event_id=hit.event_ids[-1] if hit.event_ids else "",
        ruleset="sigma-correlation",
        fields=fields,
        rule_path=str(corr.path) if corr.path else None,
    )
