"""Sigma correlation rules evaluated on the stream of base-rule matches, by event time.

The matcher finds which detection rules an event matches; :class:`CorrelationEngine` receives
those matches (``feed``/``feed_matches``) and keeps, per correlation rule and group-by values,
just enough state to decide the correlation's condition within its ``timespan``:

- ``event_count``: the sorted (time, event id) of the group's matches;
- ``value_count``: the condition ``field``'s distinct values, each with its first and last time;
- ``temporal`` / ``temporal_ordered``: per referenced rule, its latest match times (at most
  :data:`SLOT_CAP`), enough to find one match of every rule, in the rules' order for
  ``temporal_ordered`` (ties in event time are broken by arrival order).

Semantics:

*Windows.* ``gt``/``gte`` conditions (they can only become true as matches arrive) are decided
on a sliding window: after each match, the window is the ``timespan`` ending at the group's
newest event time, both ends included. When the condition holds the correlation fires at once,
the group's state is cleared and the group stays quiet until its newest event is more than
``timespan`` past the last event of that alert: at most one alert per group per ``timespan``,
and no event is reported twice. ``lt``/``lte``/``eq``/``neq`` can change until the window is
over, so they use tumbling windows opened by a group's first match, ``[start, start +
timespan]``, decided once the watermark has passed the window's end (a group with no match has
no window and never fires).

*Event time.* Times come from ``@timestamp``. The watermark is the highest event time seen
(``advance`` is also given the last event of every batch, matched or not) minus ``lateness``.
A match older than the watermark is late: counted (``socmon_correlation_late_events_total``)
and not used at all, so it can neither fire nor reopen a window that is already decided.
Matches within ``lateness`` of the newest event may arrive out of order; they are inserted in
time order and count in the window that ends at their group's newest event. An event more than
``max_future`` seconds ahead of the wall clock is still used for its group but does not move
the watermark (one device with a wrong clock or time zone must not make every other source
late); its group correlates on its own times (a group mixing such events with correct ones
would see the correct ones fall out of its window).

*Memory.* A group idle for longer than ``timespan`` behind the watermark is evicted; each
correlation keeps at most ``max_groups`` groups (the least recently used is evicted, counted
with ``reason="cap"``), each group at most ``max_events`` event entries or distinct values.
State lives in memory only: a restart starts every window afresh.

*Group-by.* Fields are read from the ECS event as the matcher reads them (nested or dotted
keys); ``aliases`` give the field name per referenced rule. A match whose event lacks a group-by
field (or the ``value_count`` field) is skipped and counted. A multi-valued field groups by the
set of its values.

*Chaining.* A correlation may reference correlations; when the inner one fires, its alert (with
the group-by values at their field paths, timed at its last event) is fed to the outer ones.

*generate.* A rule (or correlation) referenced by correlations is alerted on by itself only if
one of those correlations has ``generate: true`` (the specification's default is that only the
correlation is alerted on). Correlations that are unsupported do not count, so a rule is never
silenced by a correlation that is not running.

Unsupported constructs are never dropped silently: :class:`CorrelationReport` lists each with
the rule id, path and reason, like :class:`~detections.sigma.matcher.CompileReport`.
"""

from __future__ import annotations

import logging
import operator
import time
from bisect import bisect_right, insort
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from heapq import heappop, heappush
from pathlib import Path
from typing import Any, TypeAlias

from prometheus_client import Counter
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)

from detections.alerts import build_correlation_alert, correlation_alert_id
from detections.sigma.loader import RuleSet
from detections.sigma.matcher import CompiledRule, EventView
from socmon.ecs import set_field

log = logging.getLogger("socmon.detections.correlation")

DEFAULT_LATENESS = 300.0
DEFAULT_MAX_FUTURE = 3600.0
DEFAULT_MAX_GROUPS = 50_000
DEFAULT_MAX_EVENTS = 10_000
SLOT_CAP = 64
"""Latest match times kept per referenced rule of a temporal correlation."""
EVENT_IDS_CAP = 100
"""Contributing event ids carried by one correlation alert."""

LATE = Counter(
    "socmon_correlation_late_events_total",
    "Base-rule matches older than the correlation watermark, not correlated",
)
SKIPPED = Counter(
    "socmon_correlation_skipped_matches_total",
    "Base-rule matches a correlation could not use, with the reason",
    ["reason"],
)
EVICTED = Counter(
    "socmon_correlation_evicted_groups_total",
    "Correlation groups whose state was dropped",
    ["reason"],
)
DROPPED_STATE = Counter(
    "socmon_correlation_dropped_entries_total",
    "Oldest entries dropped from a correlation group at its size cap",
)
FIRED = Counter(
    "socmon_correlation_fired_total",
    "Correlation conditions met (chained inner correlations included)",
    ["rule_id"],
)

_OPS: dict[str, Callable[[int, int], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "neq": operator.ne,
}
_SUPPORTED_TYPES = {
    SigmaCorrelationType.EVENT_COUNT: "event_count",
    SigmaCorrelationType.VALUE_COUNT: "value_count",
    SigmaCorrelationType.TEMPORAL: "temporal",
    SigmaCorrelationType.TEMPORAL_ORDERED: "temporal_ordered",
}


class UnsupportedCorrelation(Exception):
    """A correlation rule the engine cannot evaluate; the reason goes to the report."""


# ---------------------------------------------------------------------------------------------
# Compiled correlations

Source: TypeAlias = "CompiledRule | CompiledCorrelation"


@dataclass(frozen=True, eq=False)
class CompiledCorrelation:
    """A correlation rule with its references resolved (compared by identity)."""

    id: str
    title: str
    level: str
    tags: tuple[str, ...]
    path: Path | None
    type: str
    """event_count, value_count, temporal or temporal_ordered"""
    sources: tuple[Source, ...]
    """The referenced rules, in the order of ``rules`` (the order temporal_ordered requires)."""
    group_by: tuple[str, ...]
    """Group-by names as the rule spells them (aliases included)."""
    group_fields: tuple[tuple[str, ...], ...]
    """Per source position, the event fields read for ``group_by`` (aliases applied)."""
    value_fields: tuple[str | None, ...]
    """Per source position, the event field a value_count counts."""
    timespan: float
    op: str
    count: int
    generate: bool
    custom: Mapping[str, Any] = field(default_factory=dict)
    sigma_rule: SigmaCorrelationRule | None = field(default=None, repr=False)

    @property
    def sliding(self) -> bool:
        """Decided as matches arrive (gt/gte) rather than when the window is over."""
        return self.op in ("gt", "gte")

    @property
    def value_field(self) -> str | None:
        """The value_count field as the rule names it (alias or field)."""
        return self.custom.get("value_field")

    def holds(self, value: int) -> bool:
        return _OPS[self.op](value, self.count)


@dataclass
class CorrelationReport:
    """Correlations ready to run, and those left out with the reason (never silently)."""

    compiled: list[CompiledCorrelation] = field(default_factory=list)
    unsupported: list[tuple[str, Path | None, str]] = field(default_factory=list)
    """(rule id, path, reason)"""


@dataclass(frozen=True)
class CorrelationHit:
    """One firing of a correlation for one group: what the alert document reports."""

    correlation: CompiledCorrelation
    group: dict[str, Any]
    """group-by name → value (a list when the field had several values)"""
    count: int
    """events (event_count), distinct values (value_count) or distinct rules (temporal)"""
    first: float
    last: float
    event_ids: tuple[str, ...]
    values: tuple[str, ...] = ()
    """value_count: the distinct values counted (at most EVENT_IDS_CAP)"""
    rule_ids: tuple[str, ...] = ()
    """The ids of the referenced rules whose matches contributed."""


def _rule_key(obj: Source) -> str:
    return obj.id


def _references(rule: SigmaCorrelationRule) -> list[str]:
    return [ref.reference for ref in rule.rules or []]


def _correlation_id(rule: SigmaCorrelationRule, path: Path | None) -> str:
    if rule.id is not None:
        return str(rule.id)
    if rule.name:
        return str(rule.name)
    return str(path) if path is not None else rule.title


class _Resolver:
    """Resolves correlation references (``id`` or ``name``) to compiled rules/correlations."""

    def __init__(self, ruleset: RuleSet, compiled_rules: Sequence[CompiledRule]) -> None:
        self.targets: dict[str, list[tuple[Path | None, object]]] = {}
        self.missing: dict[str, str] = {}
        for rule in compiled_rules:
            keys = {rule.id}
            if rule.sigma_rule is not None:
                if rule.sigma_rule.id is not None:
                    keys.add(str(rule.sigma_rule.id))
                if rule.sigma_rule.name:
                    keys.add(str(rule.sigma_rule.name))
            for key in keys:
                self.targets.setdefault(key, []).append((rule.path, rule))
        compiled_sigma = {id(r.sigma_rule) for r in compiled_rules if r.sigma_rule is not None}
        for loaded in ruleset.rules:
            if id(loaded.rule) in compiled_sigma:
                continue
            reason = "is not evaluated by the matcher (see the unsupported rules)"
            for name in (loaded.rule.id, loaded.rule.name):
                if name is not None:
                    self.missing.setdefault(str(name), reason)
        for error in ruleset.errors:
            if error.rule_id:
                self.missing.setdefault(error.rule_id, f"did not load: {error.reason}")
        for loaded_corr in ruleset.correlations:
            corr = loaded_corr.rule
            for corr_key in {str(corr.id) if corr.id else None, corr.name}:
                if corr_key:
                    self.targets.setdefault(corr_key, []).append((loaded_corr.path, corr))

    def resolve(self, reference: str, path: Path | None) -> object:
        candidates = self.targets.get(reference, [])
        unique = list({id(obj): (p, obj) for p, obj in candidates}.values())
        if len(unique) > 1:
            # Names are unique per correlation file by the specification: prefer the same file.
            unique = [(p, obj) for p, obj in unique if p == path] or unique
        if len(unique) == 1:
            return unique[0][1]
        if len(unique) > 1:
            raise UnsupportedCorrelation(
                f"reference '{reference}' is ambiguous ({len(unique)} rules)"
            )
        if reference in self.missing:
            raise UnsupportedCorrelation(f"referenced rule '{reference}' {self.missing[reference]}")
        raise UnsupportedCorrelation(f"referenced rule '{reference}' not found")


def _compile_all(ruleset: RuleSet, compiled_rules: Sequence[CompiledRule]) -> CorrelationReport:
    resolver = _Resolver(ruleset, compiled_rules)
    paths = {id(lc.rule): lc.path for lc in ruleset.correlations}
    done: dict[int, CompiledCorrelation | UnsupportedCorrelation] = {}
    visiting: set[int] = set()

    def build(rule: SigmaCorrelationRule) -> CompiledCorrelation:
        key = id(rule)
        if key in done:
            result = done[key]
            if isinstance(result, UnsupportedCorrelation):
                raise result
            return result
        if key in visiting:
            raise UnsupportedCorrelation("correlation references itself (a cycle of references)")
        visiting.add(key)
        try:
            compiled = _compile_one(rule, paths.get(key), resolver, build)
        except UnsupportedCorrelation as e:
            done[key] = e
            raise
        finally:
            visiting.discard(key)
        done[key] = compiled
        return compiled

    report = CorrelationReport()
    for loaded in ruleset.correlations:
        try:
            report.compiled.append(build(loaded.rule))
        except UnsupportedCorrelation as e:
            rule_id = _correlation_id(loaded.rule, loaded.path)
            report.unsupported.append((rule_id, loaded.path, str(e)))
    return report


def _compile_one(
    rule: SigmaCorrelationRule,
    path: Path | None,
    resolver: _Resolver,
    build: Callable[[SigmaCorrelationRule], CompiledCorrelation],
) -> CompiledCorrelation:
    kind = _SUPPORTED_TYPES.get(rule.type)
    if kind is None:
        raise UnsupportedCorrelation(f"correlation type '{rule.type}' not supported")
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise UnsupportedCorrelation("extended (boolean) correlation conditions not supported")
    if rule.rules is None or not rule.rules:
        raise UnsupportedCorrelation("correlation references no rule")
    op = condition.op.name.lower()
    if op not in _OPS:
        raise UnsupportedCorrelation(f"condition operator '{op}' not supported")

    sources: list[Source] = []
    for reference in _references(rule):
        target = resolver.resolve(reference, path)
        if isinstance(target, SigmaCorrelationRule):
            try:
                sources.append(build(target))
            except UnsupportedCorrelation as e:
                raise UnsupportedCorrelation(
                    f"referenced correlation '{reference}' is unsupported: {e}"
                ) from e
        else:
            assert isinstance(target, CompiledRule)
            sources.append(target)

    # aliases: alias name -> {source object id -> field}
    alias_fields: dict[str, dict[int, str]] = {}
    for alias in rule.aliases:
        per_source: dict[int, str] = {}
        for ref, field_name in alias.mapping.items():
            target = resolver.resolve(ref.reference, path)
            matching = [
                s
                for s in sources
                if s is target or (s.sigma_rule is not None and s.sigma_rule is target)
            ]
            if not matching:
                raise UnsupportedCorrelation(
                    f"alias '{alias.alias}' names rule '{ref.reference}', "
                    "which the correlation does not reference"
                )
            for s in matching:
                per_source[id(s)] = str(field_name)
        alias_fields[alias.alias] = per_source

    def field_for(name: str, source: Source) -> str:
        per_source = alias_fields.get(name)
        if per_source is None:
            return name
        if id(source) not in per_source:
            raise UnsupportedCorrelation(
                f"alias '{name}' gives no field for rule '{_rule_key(source)}'"
            )
        return per_source[id(source)]

    group_by = tuple(rule.group_by or ())
    group_fields = tuple(tuple(field_for(g, s) for g in group_by) for s in sources)

    value_field: str | None = None
    value_fields: tuple[str | None, ...] = tuple(None for _ in sources)
    if kind == "value_count":
        fieldref = condition.fieldref
        if isinstance(fieldref, list):
            if len(fieldref) != 1:
                raise UnsupportedCorrelation("value_count over several fields not supported")
            fieldref = fieldref[0]
        if not fieldref:
            raise UnsupportedCorrelation("value_count without a field")
        value_field = str(fieldref)
        value_fields = tuple(field_for(value_field, s) for s in sources)

    if kind == "temporal_ordered":
        n = len(sources)
        if not (
            (op == "gte" and condition.count == n) or (op == "gt" and condition.count == n - 1)
        ):
            raise UnsupportedCorrelation(
                "temporal_ordered needs every referenced rule (condition gte: "
                f"{n}); a partial count has no defined order"
            )
    if kind == "temporal" and condition.count > len(sources) and op in ("gt", "gte", "eq"):
        raise UnsupportedCorrelation(
            f"temporal condition {op} {condition.count} can never hold with "
            f"{len(sources)} referenced rules"
        )

    return CompiledCorrelation(
        id=_correlation_id(rule, path),
        title=rule.title,
        level=str(rule.level) if rule.level is not None else "",
        tags=tuple(str(t) for t in rule.tags),
        path=path,
        type=kind,
        sources=tuple(sources),
        group_by=group_by,
        group_fields=group_fields,
        value_fields=value_fields,
        timespan=float(rule.timespan.seconds),
        op=op,
        count=int(condition.count),
        generate=bool(rule.generate),
        custom={"value_field": value_field} if value_field else {},
        sigma_rule=rule,
    )


# ---------------------------------------------------------------------------------------------
# State

Entry = tuple[float, int, str]
"""(event time, arrival sequence, event id)"""


def _entry_key(entry: Entry) -> tuple[float, int]:
    return (entry[0], entry[1])


@dataclass
class _Group:
    group: dict[str, Any]
    newest: float = float("-inf")
    quiet_after: float = float("-inf")
    """Sliding mode: no alert until the newest event is later than this."""
    reported: float = float("-inf")
    """Sliding mode: matches at or before this time were in an alert already."""
    window_start: float | None = None
    """Tumbling mode: start of the open window."""
    epoch: int = 0
    entries: list[Entry] = field(default_factory=list)
    values: OrderedDict[str, list[Any]] = field(default_factory=OrderedDict)
    """value → [first time, last time, last event id], ordered by last time"""
    slots: list[list[Entry]] = field(default_factory=list)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_time(event: Mapping[str, Any]) -> float | None:
    """``@timestamp`` as Unix seconds; None when absent or not an ISO 8601 time."""
    value = event.get("@timestamp")
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


class CorrelationEngine:
    """Stateful evaluation of compiled correlations over base-rule matches."""

    def __init__(
        self,
        correlations: Sequence[CompiledCorrelation],
        *,
        lateness: float = DEFAULT_LATENESS,
        max_future: float = DEFAULT_MAX_FUTURE,
        max_groups: int = DEFAULT_MAX_GROUPS,
        max_events: int = DEFAULT_MAX_EVENTS,
        clock: Callable[[], float] = time.time,
        report: CorrelationReport | None = None,
    ) -> None:
        self.correlations = list(correlations)
        self.lateness = lateness
        self.max_future = max_future
        self.max_groups = max_groups
        self.max_events = max_events
        self.clock = clock
        self.report = report or CorrelationReport(compiled=list(correlations))
        self.stats: Tally[str] = Tally()
        """late, future, skipped:<reason>, evicted:<reason>, dropped, alerts (for tests, logs)"""
        self._index = {id(c): i for i, c in enumerate(self.correlations)}
        self._groups: list[OrderedDict[tuple[Any, ...], _Group]] = [
            OrderedDict() for _ in self.correlations
        ]
        self._closes: list[tuple[float, int, int, tuple[Any, ...], int]] = []
        self._tiebreak = 0
        self._seq = 0
        self._max: float | None = None
        # source (rule or correlation) -> [(correlation index, positions)]
        self._consumers: dict[int, list[tuple[int, tuple[int, ...]]]] = {}
        referenced: dict[int, list[bool]] = {}
        for ci, corr in enumerate(self.correlations):
            positions: dict[int, list[int]] = {}
            for pos, source in enumerate(corr.sources):
                positions.setdefault(id(source), []).append(pos)
                referenced.setdefault(id(source), []).append(corr.generate)
            for source_id, pos_list in positions.items():
                self._consumers.setdefault(source_id, []).append((ci, tuple(pos_list)))
        self._silenced = {sid for sid, gens in referenced.items() if not any(gens)}

    @classmethod
    def from_ruleset(
        cls,
        ruleset: RuleSet,
        compiled_rules: Sequence[CompiledRule],
        **options: Any,
    ) -> tuple[CorrelationEngine, CorrelationReport]:
        """Resolve every correlation of ``ruleset`` against ``compiled_rules``.

        Correlations that cannot run (unknown or unsupported reference, unsupported type or
        condition, a cycle) are listed in the report with the reason.
        """
        report = _compile_all(ruleset, compiled_rules)
        return cls(report.compiled, report=report, **options), report

    # -- what the detect stage asks

    def generates(self, rule: CompiledRule | CompiledCorrelation) -> bool:
        """Whether ``rule``'s own matches become alerts (see ``generate`` in the module doc)."""
        return id(rule) not in self._silenced

    @property
    def watermark(self) -> float | None:
        return None if self._max is None else self._max - self.lateness

    def group_count(self) -> int:
        return sum(len(groups) for groups in self._groups)

    # -- input

    def feed(
        self, rule: CompiledRule, event: Mapping[str, Any], view: EventView | None = None
    ) -> list[dict[str, Any]]:
        """One base-rule match; returns the correlation alert documents it completes."""
        return self.feed_matches([rule], event, view)

    def feed_matches(
        self,
        rules: Iterable[CompiledRule],
        event: Mapping[str, Any],
        view: EventView | None = None,
    ) -> list[dict[str, Any]]:
        """Every rule ``event`` matched (the event counts once per correlation).

        ``view`` is the matcher's view of the same event, if the caller has it: its field
        caches are then shared.
        """
        wanted = [rule for rule in rules if id(rule) in self._consumers]
        if not wanted:
            return []
        ts = event_time(event)
        if ts is None:
            self._skip("no_timestamp")
            return []
        watermark = self.watermark
        if watermark is not None and ts < watermark:
            self.stats["late"] += 1
            LATE.inc()
            return []
        hits = self._advance(ts)
        if view is None:
            view = EventView(event)
        hits.extend(self._dispatch(wanted, view, ts, str(event.get("_id", ""))))
        return self._alerts(hits)

    def advance(self, event: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Move event time on with any event (matched or not); returns alerts of closed windows."""
        ts = event_time(event)
        if ts is None:
            return []
        return self._alerts(self._advance(ts, count_future=False))

    # -- internals

    def _skip(self, reason: str) -> None:
        self.stats[f"skipped:{reason}"] += 1
        SKIPPED.labels(reason).inc()

    def _advance(self, ts: float, *, count_future: bool = True) -> list[CorrelationHit]:
        if ts > self.clock() + self.max_future:
            if count_future:
                self.stats["future"] += 1
            return []
        if self._max is not None and ts <= self._max:
            return []
        self._max = ts
        watermark = ts - self.lateness
        hits = self._close_windows(watermark)
        self._evict_idle(watermark)
        return hits

    def _dispatch(
        self, sources: Sequence[Source], view: EventView, ts: float, event_id: str
    ) -> list[CorrelationHit]:
        """Update every correlation referencing one of ``sources`` (all matched by one event)."""
        self._seq += 1
        targets: dict[int, set[int]] = {}
        for source in sources:
            for ci, positions in self._consumers.get(id(source), ()):
                targets.setdefault(ci, set()).update(positions)
        hits: list[CorrelationHit] = []
        for ci in sorted(targets):
            for hit in self._update(ci, sorted(targets[ci]), view, ts, event_id, self._seq):
                hits.append(hit)
                hits.extend(self._chain(hit))
        return hits

    def _chain(self, hit: CorrelationHit) -> list[CorrelationHit]:
        """Feed a fired correlation to the correlations that reference it."""
        if id(hit.correlation) not in self._consumers:
            return []
        doc: dict[str, Any] = {"@timestamp": _iso(hit.last)}
        for name, value in hit.group.items():
            set_field(doc, name, value)
        return self._dispatch(
            [hit.correlation], EventView(doc), hit.last, correlation_alert_id(hit)
        )

    def _group_key(
        self, corr: CompiledCorrelation, pos: int, view: EventView
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        key: list[Any] = []
        shown: dict[str, Any] = {}
        for name, field_name in zip(corr.group_by, corr.group_fields[pos], strict=True):
            texts = view.text(field_name)
            if not texts:
                return None
            if len(texts) == 1:
                key.append(texts[0])
                shown[name] = view.values(field_name)[0]
            else:
                key.append(tuple(sorted(set(texts))))
                shown[name] = list(view.values(field_name))
        return tuple(key), shown

    def _update(
        self,
        ci: int,
        positions: Sequence[int],
        view: EventView,
        ts: float,
        event_id: str,
        seq: int,
    ) -> list[CorrelationHit]:
        corr = self.correlations[ci]
        groups = self._groups[ci]
        touched: dict[tuple[Any, ...], _Group] = {}
        for pos in positions:
            value_field = corr.value_fields[pos]
            if value_field is not None and not view.text(value_field):
                self._skip("missing_value_field")
                continue
            found = self._group_key(corr, pos, view)
            if found is None:
                self._skip("missing_group_field")
                continue
            key, shown = found
            group = groups.get(key)
            if group is None:
                if len(groups) >= self.max_groups:
                    groups.popitem(last=False)
                    self.stats["evicted:cap"] += 1
                    EVICTED.labels("cap").inc()
                group = groups[key] = _Group(group=shown)
                if corr.type in ("temporal", "temporal_ordered"):
                    group.slots = [[] for _ in corr.sources]
            else:
                groups.move_to_end(key)
            if ts <= group.reported:
                self._skip("reported_window")
                continue
            if corr.type == "event_count" and key in touched:
                continue  # the event counts once, whichever referenced rules it matched
            self._record(corr, group, pos, view, ts, event_id, seq)
            if group.newest < ts:
                group.newest = ts
            if not corr.sliding and group.window_start is None:
                self._open_window(ci, key, group, ts)
            elif not corr.sliding and group.window_start is not None:
                group.window_start = min(group.window_start, ts)
            touched[key] = group
        hits: list[CorrelationHit] = []
        if corr.sliding:
            for group in touched.values():
                hit = self._evaluate_sliding(corr, group)
                if hit is not None:
                    hits.append(hit)
        return hits

    def _record(
        self,
        corr: CompiledCorrelation,
        group: _Group,
        pos: int,
        view: EventView,
        ts: float,
        event_id: str,
        seq: int,
    ) -> None:
        entry = (ts, seq, event_id)
        if corr.type == "event_count":
            insort(group.entries, entry, key=_entry_key)
            if len(group.entries) > self.max_events:
                del group.entries[0]
                self._dropped()
            return
        if corr.type == "value_count":
            value_field = corr.value_fields[pos]
            assert value_field is not None
            texts = view.text(value_field)
            values = group.values
            for text in texts:
                known = values.get(text)
                if known is None:
                    values[text] = [ts, ts, event_id]
                    if ts < group.newest:
                        # Out of order: keep the dict ordered by last time for pruning.
                        group.values = values = OrderedDict(
                            sorted(values.items(), key=lambda kv: kv[1][1])
                        )
                elif ts >= known[1]:
                    known[1], known[2] = ts, event_id
                    values.move_to_end(text)
                else:
                    known[0] = min(known[0], ts)
            while len(values) > self.max_events:
                values.popitem(last=False)
                self._dropped()
            return
        slot = group.slots[pos]
        insort(slot, entry, key=_entry_key)
        if len(slot) > SLOT_CAP:
            del slot[0]
            self._dropped()

    def _dropped(self) -> None:
        self.stats["dropped"] += 1
        DROPPED_STATE.inc()

    def _prune(self, corr: CompiledCorrelation, group: _Group, lo: float) -> None:
        """Forget what lies before ``lo`` (sliding mode: before the window)."""
        if corr.type == "event_count":
            i = bisect_right(group.entries, (lo, -1), key=_entry_key)
            if i:
                del group.entries[:i]
        elif corr.type == "value_count":
            values = group.values
            while values:
                first_value = next(iter(values.values()))
                if first_value[1] >= lo:
                    break
                values.popitem(last=False)
        else:
            for slot in group.slots:
                i = bisect_right(slot, (lo, -1), key=_entry_key)
                if i:
                    del slot[:i]

    def _measure(
        self, corr: CompiledCorrelation, group: _Group, lo: float, hi: float
    ) -> CorrelationHit | None:
        """The condition's count over ``[lo, hi]``, as a hit (not yet checked)."""
        ids: list[str] = []
        values_out: tuple[str, ...] = ()
        rule_ids: list[str] = []
        if corr.type == "event_count":
            a = bisect_right(group.entries, (lo, -1), key=_entry_key)
            b = bisect_right(group.entries, (hi, 1 << 62), key=_entry_key)
            window = group.entries[a:b]
            if not window:
                return None
            count, first, last = len(window), window[0][0], window[-1][0]
            ids = [e[2] for e in window[:EVENT_IDS_CAP]]
            rule_ids = sorted({_rule_key(s) for s in corr.sources})
        elif corr.type == "value_count":
            inside = [
                (v, info) for v, info in group.values.items() if info[0] <= hi and info[1] >= lo
            ]
            if not inside:
                return None
            count = len(inside)
            first = min(max(info[0], lo) for _, info in inside)
            last = max(min(info[1], hi) for _, info in inside)
            ids = [str(info[2]) for _, info in inside[:EVENT_IDS_CAP]]
            values_out = tuple(v for v, _ in inside[:EVENT_IDS_CAP])
            rule_ids = sorted({_rule_key(s) for s in corr.sources})
        elif corr.type == "temporal":
            chosen: list[Entry] = []
            for pos, slot in enumerate(group.slots):
                b = bisect_right(slot, (hi, 1 << 62), key=_entry_key)
                if b and slot[b - 1][0] >= lo:
                    chosen.append(slot[b - 1])
                    rule_ids.append(_rule_key(corr.sources[pos]))
            if not chosen:
                return None
            count = len(chosen)
            first = min(e[0] for e in chosen)
            last = max(e[0] for e in chosen)
            ids = [e[2] for e in sorted(chosen, key=_entry_key)]
        else:
            chain = _ordered_chain(group.slots, lo, hi)
            if chain is None:
                return None
            count, first, last = len(chain), chain[0][0], chain[-1][0]
            ids = [e[2] for e in chain]
            rule_ids = [_rule_key(s) for s in corr.sources]
        return CorrelationHit(
            correlation=corr,
            group=dict(group.group),
            count=count,
            first=first,
            last=last,
            event_ids=tuple(ids),
            values=values_out,
            rule_ids=tuple(dict.fromkeys(rule_ids)),
        )

    def _evaluate_sliding(self, corr: CompiledCorrelation, group: _Group) -> CorrelationHit | None:
        hi = group.newest
        lo = hi - corr.timespan
        self._prune(corr, group, lo)
        if hi <= group.quiet_after:
            return None
        # After pruning, everything kept lies in [lo, hi]: count cheaply before building a hit.
        if corr.type == "event_count":
            cheap = len(group.entries)
        elif corr.type == "value_count":
            cheap = len(group.values)
        elif corr.type == "temporal":
            cheap = sum(1 for slot in group.slots if slot)
        else:
            cheap = len(corr.sources) if all(group.slots) else 0
        if not corr.holds(cheap):
            return None
        hit = self._measure(corr, group, lo, hi)
        if hit is None or not corr.holds(hit.count):
            return None
        # Fired: this window's matches are reported; quiet until the window has moved past.
        group.entries.clear()
        group.values.clear()
        for slot in group.slots:
            slot.clear()
        group.reported = hi
        group.quiet_after = hit.last + corr.timespan
        return hit

    def _open_window(self, ci: int, key: tuple[Any, ...], group: _Group, start: float) -> None:
        group.window_start = start
        self._tiebreak += 1
        corr = self.correlations[ci]
        heappush(self._closes, (start + corr.timespan, self._tiebreak, ci, key, group.epoch))

    def _close_windows(self, watermark: float) -> list[CorrelationHit]:
        hits: list[CorrelationHit] = []
        while self._closes and self._closes[0][0] < watermark:
            _end, _, ci, key, epoch = heappop(self._closes)
            group = self._groups[ci].get(key)
            if group is None or group.epoch != epoch or group.window_start is None:
                continue
            corr = self.correlations[ci]
            lo = group.window_start
            hi = lo + corr.timespan
            if hi >= watermark:  # the window moved earlier and back: not over yet
                self._tiebreak += 1
                heappush(self._closes, (hi, self._tiebreak, ci, key, epoch))
                continue
            hit = self._measure(corr, group, lo, hi)
            if hit is not None and corr.holds(hit.count):
                hits.append(hit)
                hits.extend(self._chain(hit))
            # Drop the decided window; what follows it opens the next one.
            self._prune(corr, group, hi + 1e-9)
            if corr.type == "value_count":
                for info in group.values.values():
                    info[0] = max(info[0], hi + 1e-9)
            group.epoch += 1
            group.window_start = None
            nxt = _earliest(corr, group)
            if nxt is not None:
                self._open_window(ci, key, group, nxt)
        return hits

    def _evict_idle(self, watermark: float) -> None:
        for ci, groups in enumerate(self._groups):
            corr = self.correlations[ci]
            cutoff = watermark - corr.timespan
            while groups:
                key, group = next(iter(groups.items()))
                if group.newest >= cutoff or (
                    group.window_start is not None
                    and group.window_start + corr.timespan >= watermark
                ):
                    break
                del groups[key]
                self.stats["evicted:idle"] += 1
                EVICTED.labels("idle").inc()

    def _alerts(self, hits: list[CorrelationHit]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for hit in hits:
            self.stats["alerts"] += 1
            FIRED.labels(hit.correlation.id).inc()
            if self.generates(hit.correlation):
                out.append(build_correlation_alert(hit))
        return out


def _earliest(corr: CompiledCorrelation, group: _Group) -> float | None:
    if corr.type == "event_count":
        return group.entries[0][0] if group.entries else None
    if corr.type == "value_count":
        return min((info[0] for info in group.values.values()), default=None)
    firsts = [slot[0][0] for slot in group.slots if slot]
    return min(firsts) if firsts else None


def _ordered_chain(slots: Sequence[Sequence[Entry]], lo: float, hi: float) -> list[Entry] | None:
    """One match per slot, in slot order, all within ``[lo, hi]`` (earliest choice each time).

    Choosing the earliest possible match at every step leaves the most room for the next
    ones, so a chain exists within the window exactly when this finds one.
    """
    chain: list[Entry] = []
    prev: tuple[float, int] = (lo, -1)
    for slot in slots:
        i = bisect_right(slot, prev, key=_entry_key)
        if i == len(slot) or slot[i][0] > hi:
            return None
        chain.append(slot[i])
        prev = _entry_key(slot[i])
    return chain
