"""Alert documents: what a rule match becomes, written to the alerts index and to incidents."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from detections.sigma.matcher import CompiledRule

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
)


def alert_id(rule_id: str, event_id: str) -> str:
    return hashlib.blake2b(f"{rule_id}\x00{event_id}".encode(), digest_size=20).hexdigest()


def build_alert(rule: CompiledRule, event: Mapping[str, Any]) -> dict[str, Any]:
    """One alert document for `rule` matching `event` (the event's `_id` must be set)."""
    event_id = str(event.get("_id", ""))
    group_by = rule.custom.get("group_by") or []
    if isinstance(group_by, str):
        group_by = [group_by]
    source_event = event.get("event", {}) if isinstance(event.get("event"), Mapping) else {}
    doc: dict[str, Any] = {
        "@timestamp": event.get("@timestamp") or datetime.now(UTC).isoformat(),
        "message": rule.title,
        "event": {
            "kind": "alert",
            "dataset": "socmon.alerts",
            "severity": SEVERITY_SCORE.get(rule.level, 47),
            "original_dataset": source_event.get("dataset"),
            "action": source_event.get("action"),
        },
        "rule": {"id": rule.id, "name": rule.title, "ruleset": "sigma"},
        "tags": list(rule.tags),
        "socmon": {
            "alert": {
                "event_id": event_id,
                "level": rule.level,
                "tags": list(rule.tags),
                "group_by": [str(f) for f in group_by],
                "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "rule_path": str(rule.path) if rule.path else None,
            }
        },
    }
    for key in COPIED:
        if key in event:
            doc[key] = event[key]
    if isinstance(event.get("socmon"), Mapping) and "unit" in event["socmon"]:
        doc["socmon"]["unit"] = event["socmon"]["unit"]
    doc["_id"] = alert_id(rule.id, event_id)
    return doc
