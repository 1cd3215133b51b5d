"""The streaming detection stage: the `detect` consumer of the events spool.

Every event is evaluated against every enabled rule as it arrives; matches become alert
documents appended to the alerts spool. The cursor advances only after the alerts are
spooled, so a crash never skips evaluation (a replay may re-raise an alert: same id).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import Counter

from detections.alerts import build_alert
from detections.sigma.loader import RuleSet, load_rules
from detections.sigma.matcher import CompileReport, Matcher
from socmon.consumer import BatchConsumer
from socmon.logging import kv
from socmon.spool import Record, Spool

log = logging.getLogger("socmon.detections")

BUILTIN_RULES = Path(__file__).parent / "rules"

EVALUATED = Counter(
    "socmon_detect_evaluated_events_total", "Events evaluated by the streaming matcher"
)
MATCHES = Counter("socmon_detect_matches_total", "Rule matches", ["rule_id"])


def load_matcher(rule_dirs: Sequence[Path] = ()) -> tuple[Matcher, RuleSet, CompileReport]:
    """Load socmon's own rules plus `rule_dirs`; every failure is reported, none is fatal."""
    ruleset = load_rules([BUILTIN_RULES, *rule_dirs])
    matcher, report = Matcher.from_ruleset(ruleset)
    for err in ruleset.errors:
        log.warning("rule not loaded %s", kv(path=err.path, reason=err.reason))
    for rule_id, path, reason in report.unsupported:
        log.warning("rule unsupported %s", kv(rule_id=rule_id, path=path, reason=reason))
    log.info(
        "rules ready %s",
        kv(
            compiled=len(report.compiled),
            unsupported=len(report.unsupported),
            errors=len(ruleset.errors),
        ),
    )
    return matcher, ruleset, report


class DetectStage(BatchConsumer):
    """The `detect` consumer: matches become alerts in the alerts spool."""

    component = "detect"

    def __init__(
        self,
        events: Spool,
        alerts: Spool,
        matcher: Matcher,
        *,
        consumer: str = "detect",
        batch: int = 1000,
    ) -> None:
        super().__init__(events, consumer, batch=batch)
        self.alerts = alerts
        self.matcher = matcher

    def handle(self, records: list[Record]) -> None:
        found: list[dict[str, Any]] = []
        for rec in records:
            event = orjson.loads(rec.payload)
            for rule in self.matcher.match(event):
                MATCHES.labels(rule.id).inc()
                found.append(build_alert(rule, event))
        EVALUATED.inc(len(records))
        if found:
            self.alerts.append(found, lambda doc, _seq: orjson.dumps(doc))
