"""The streaming detection stage: the `detect` consumer of the events spool.

Every event is evaluated against every enabled rule as it arrives; matches become alert
documents appended to the alerts spool. Matches also feed the correlation engine
(`detections.correlation`), whose alerts are appended with them; a rule referenced only by
correlations without `generate: true` raises no alert of its own. The cursor advances only
after the alerts are spooled, so a crash never skips evaluation (a replay may re-raise an
alert: same id; correlation state is in memory and starts afresh after a restart).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import orjson
from prometheus_client import Counter

from detections.alerts import build_alert
from detections.correlation import CorrelationEngine, CorrelationReport
from detections.sigma.loader import RuleSet, load_rules
from detections.sigma.matcher import CompileReport, EventView, Matcher

if TYPE_CHECKING:
    from detections.catalog import RuleCatalog
from socmon.consumer import BatchConsumer
from socmon.logging import kv
from socmon.spool import Record, Spool

log = logging.getLogger("socmon.detections")

BUILTIN_RULES = Path(__file__).parent / "rules"

EVALUATED = Counter(
    "socmon_detect_evaluated_events_total", "Events evaluated by the streaming matcher"
)
MATCHES = Counter("socmon_detect_matches_total", "Rule matches", ["rule_id"])
SUPPRESSED = Counter(
    "socmon_detect_suppressed_matches_total",
    "Rule matches dropped by a false-positive exception (tuning)",
    ["rule_id"],
)

# The correlation engine built with each matcher by `load_matcher`, found by `DetectStage`
# when it is not given one, so callers that only pass the matcher get correlation too.
_ENGINES: WeakKeyDictionary[Matcher, CorrelationEngine] = WeakKeyDictionary()


def load_matcher(
    rule_dirs: Sequence[Path] = (), *, lateness: float | None = None
) -> tuple[Matcher, RuleSet, CompileReport]:
    """Load socmon's own rules plus `rule_dirs`; every failure is reported, none is fatal.

    The correlation rules are resolved against the compiled rules at the same time; the engine
    is attached to the matcher (`correlation_engine(matcher)`), its report logged like the
    matcher's.
    """
    ruleset = load_rules([BUILTIN_RULES, *rule_dirs])
    matcher, report = Matcher.from_ruleset(ruleset)
    options: dict[str, Any] = {} if lateness is None else {"lateness": lateness}
    engine, correlations = CorrelationEngine.from_ruleset(ruleset, report.compiled, **options)
    _ENGINES[matcher] = engine
    for err in ruleset.errors:
        log.warning("rule not loaded %s", kv(path=err.path, reason=err.reason))
    for rule_id, path, reason in report.unsupported:
        log.warning("rule unsupported %s", kv(rule_id=rule_id, path=path, reason=reason))
    for rule_id, path, reason in correlations.unsupported:
        log.warning("correlation unsupported %s", kv(rule_id=rule_id, path=path, reason=reason))
    log.info(
        "rules ready %s",
        kv(
            compiled=len(report.compiled),
            unsupported=len(report.unsupported),
            errors=len(ruleset.errors),
            correlations=len(correlations.compiled),
            correlations_unsupported=len(correlations.unsupported),
        ),
    )
    return matcher, ruleset, report


def correlation_engine(matcher: Matcher) -> CorrelationEngine | None:
    """The correlation engine `load_matcher` built with `matcher` (None for other matchers)."""
    return _ENGINES.get(matcher)


def correlation_report(matcher: Matcher) -> CorrelationReport | None:
    """Which correlations run and which were left out (with the reason)."""
    engine = _ENGINES.get(matcher)
    return engine.report if engine is not None else None


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
        correlations: CorrelationEngine | None = None,
        catalog: RuleCatalog | None = None,
    ) -> None:
        super().__init__(events, consumer, batch=batch)
        self.alerts = alerts
        self.matcher = matcher
        self.correlations = correlations or correlation_engine(matcher)
        self.catalog = catalog
        """When given, the running rules (enable/disable through the API takes effect at the
        next batch), their false-positive exceptions, and their match counts."""

    def handle(self, records: list[Record]) -> None:
        found: list[dict[str, Any]] = []
        engine = self.correlations
        event: dict[str, Any] | None = None
        catalog = self.catalog
        matcher = catalog.matcher if catalog is not None else self.matcher
        for rec in records:
            event = orjson.loads(rec.payload)
            view = EventView(event)  # shared by the matcher and the correlation engine
            matched = matcher.match(view)
            if catalog is not None and matched:
                kept = [r for r in matched if not catalog.suppressed(r.id, view)]
                for rule in matched:
                    if rule not in kept:
                        SUPPRESSED.labels(rule.id).inc()
                    else:
                        catalog.record_match(rule.id)
                matched = kept
            for rule in matched:
                MATCHES.labels(rule.id).inc()
                if engine is None or engine.generates(rule):
                    found.append(build_alert(rule, event))
            if engine is not None and matched:
                found.extend(engine.feed_matches(matched, event, view))
        if engine is not None and event is not None:
            # Event time moves on with every event, matched or not: windows of lt/lte/eq
            # conditions close and idle groups are evicted even when nothing matches.
            found.extend(engine.advance(event))
        EVALUATED.inc(len(records))
        if found:
            self.alerts.append(found, lambda doc, _seq: orjson.dumps(doc))
