"""The rule catalog: one account of every rule file, what became of it, and how often it fired.

:class:`RuleCatalog` loads rule files (SigmaHQ layout or socmon's own ``detections/rules/``),
applies the selection policy (:class:`RulePolicy`, from the configuration, with the changes
stored through the API merged over it) and compiles the selected detection rules into one
:class:`~detections.sigma.matcher.Matcher`. Every rule file ends up in :attr:`RuleCatalog.entries`
with one status and its reason; nothing is dropped without appearing there:

- ``compiled``: selected and evaluated by the streaming matcher;
- ``unsupported``: the matcher (or the correlation engine) cannot evaluate it exactly;
- ``error``: the file or rule did not load (bad YAML, invalid rule, duplicate id…);
- ``disabled``: switched off by rule id (configuration ``disabled`` or through the API);
- ``filtered``: left out by the policy's Sigma status, level, logsource or tag selection.

When several apply, the first in the order error, unsupported, disabled, filtered wins (enabling
an unsupported rule would not make it run); ``enabled`` says separately whether the policy
selects the rule.

Tuning (false-positive exceptions) is a post-match check: :meth:`RulePolicy.suppressed` and
:meth:`RuleCatalog.suppressed` evaluate a rule's exceptions on the matched event with the
matcher's own field resolution (:class:`~detections.sigma.matcher.EventView`), so the matcher
is untouched. An exception is a mapping ``field → values``; it applies when every field has one
of its values (case-insensitive, ``*`` is a wildcard); any applying exception suppresses the match.

Match counts and last match times are kept in memory since the catalog was built.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from detections.sigma.loader import LoadedRule, RuleSet, load_rules
from detections.sigma.matcher import CompiledRule, EventView, Matcher

RuleStatus = Literal["compiled", "unsupported", "error", "disabled", "filtered"]
RULE_STATUSES: tuple[RuleStatus, ...] = ("compiled", "unsupported", "error", "disabled", "filtered")
RuleKind = Literal["detection", "correlation", "filter"]
LEVELS = ("informational", "low", "medium", "high", "critical")
SIGMA_STATUSES = ("stable", "test", "experimental", "deprecated", "unsupported")

Exception_ = dict[str, list[str]]
"""One false-positive exception: field → values (all fields must match, any value)."""

CORRELATION_PENDING = "no correlation engine has reported on this correlation rule"


# ---------------------------------------------------------------------------------------------
# Policy


def normalise_exception(raw: Mapping[str, Any]) -> Exception_:
    """Check one exception and return it as ``{field: [values…]}``; raises ``ValueError``."""
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError("an exception is a non-empty mapping of field names to values")
    out: Exception_ = {}
    for name, values in raw.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError("exception field names must be non-empty strings")
        items = values if isinstance(values, list | tuple) else [values]
        if not items:
            raise ValueError(f"exception field {name!r} has no value")
        texts: list[str] = []
        for v in items:
            if v is None or isinstance(v, dict | list | tuple):
                raise ValueError(f"exception field {name!r}: values must be strings or numbers")
            texts.append(str(v).lower() if isinstance(v, bool) else str(v))
        out[name.strip()] = texts
    return out


@lru_cache(maxsize=4096)
def _value_test(value: str) -> Callable[[str], bool]:
    """A case-insensitive test of one event text against an exception value (``*`` = any)."""
    low = value.lower()
    if "*" not in low:
        return low.__eq__
    pattern = re.compile(".*".join(re.escape(part) for part in low.split("*")), re.DOTALL)
    return lambda text: pattern.fullmatch(text) is not None


def _exception_applies(exc: Exception_, view: EventView) -> bool:
    for name, values in exc.items():
        texts = view.lower(name)
        if not any(_value_test(v)(t) for v in values for t in texts):
            return False
    return True


class LogsourceSelector(BaseModel):
    """A logsource to select; unset parts match anything (compared case-insensitively)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str | None = None
    product: str | None = None
    service: str | None = None

    def selects(self, logsource: Mapping[str, str | None]) -> bool:
        for part in ("category", "product", "service"):
            want = getattr(self, part)
            if want is not None and (logsource.get(part) or "").lower() != want.lower():
                return False
        return True

    def __str__(self) -> str:
        parts = (f"{p}={getattr(self, p)}" for p in ("category", "product", "service"))
        return ",".join(p for p in parts if not p.endswith("=None")) or "any"


class RulePolicy(BaseModel):
    """Which rules run, and their false-positive exceptions (``rules_policy`` in the config).

    Selection follows SigmaHQ's meaning of ``status``: ``deprecated`` and ``unsupported`` rules
    are left out by default; ``stable``, ``test`` and ``experimental`` rules (and rules without
    a status) run. Tags select by dotted prefix: ``attack.t1059`` also selects
    ``attack.t1059.001``. An id in ``enabled`` runs even when a selector would leave it out;
    an id in ``disabled`` never runs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    include_statuses: list[str] = Field(
        default_factory=list, description="Sigma statuses to run; empty = all not excluded"
    )
    exclude_statuses: list[str] = Field(default_factory=lambda: ["deprecated", "unsupported"])
    min_level: Literal["informational", "low", "medium", "high", "critical"] | None = None
    logsources: list[LogsourceSelector] = Field(
        default_factory=list, description="run only rules with one of these; empty = all"
    )
    exclude_logsources: list[LogsourceSelector] = Field(default_factory=list)
    tags: list[str] = Field(
        default_factory=list, description="run only rules with one of these tags; empty = all"
    )
    exclude_tags: list[str] = Field(default_factory=list)
    enabled: list[str] = Field(default_factory=list, description="rule ids always run")
    disabled: list[str] = Field(default_factory=list, description="rule ids never run")
    tuning: dict[str, list[Exception_]] = Field(
        default_factory=dict, description="rule id → false-positive exceptions"
    )

    _enabled: frozenset[str] = PrivateAttr(default=frozenset())
    _disabled: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("include_statuses", "exclude_statuses")
    @classmethod
    def _statuses(cls, v: list[str]) -> list[str]:
        unknown = [s for s in v if s.lower() not in SIGMA_STATUSES]
        if unknown:
            raise ValueError(f"unknown Sigma status {unknown[0]!r}; known: {SIGMA_STATUSES}")
        return [s.lower() for s in v]

    @field_validator("tags", "exclude_tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        return [t.strip().lower() for t in v if t.strip()]

    @field_validator("tuning", mode="before")
    @classmethod
    def _tuning(cls, v: Any) -> Any:
        if not isinstance(v, Mapping):
            return v
        out: dict[str, list[Exception_]] = {}
        for rule_id, excs in v.items():
            items = [excs] if isinstance(excs, Mapping) else excs
            if not isinstance(items, list):
                raise ValueError(f"tuning of {rule_id}: a list of exceptions is expected")
            out[str(rule_id)] = [normalise_exception(e) for e in items]
        return out

    def model_post_init(self, __context: Any) -> None:
        self._enabled = frozenset(self.enabled)
        self._disabled = frozenset(self.disabled)

    # -- selection -------------------------------------------------------------------------

    def selection(self, entry: RuleEntry) -> tuple[bool, str | None, RuleStatus | None]:
        """(runs, why not, status when not): the policy's decision on one rule."""
        keys = {entry.key, *([entry.id] if entry.id else [])}
        if keys & self._disabled:
            return False, "disabled by rule id", "disabled"
        if keys & self._enabled:
            return True, None, None
        reason = self._filter_reason(entry)
        if reason is not None:
            return False, reason, "filtered"
        return True, None, None

    def _filter_reason(self, entry: RuleEntry) -> str | None:
        status = (entry.sigma_status or "").lower()
        if status and status in self.exclude_statuses:
            return f"Sigma status {status!r} is excluded"
        if self.include_statuses and status not in self.include_statuses:
            return f"Sigma status {status or 'missing'!r} is not selected"
        if self.min_level is not None:
            level = (entry.level or "").lower()
            if level not in LEVELS:
                return f"no level (minimum {self.min_level})"
            if LEVELS.index(level) < LEVELS.index(self.min_level):
                return f"level {level} is below the minimum {self.min_level}"
        if entry.kind == "detection":
            excluded = next(
                (s for s in self.exclude_logsources if s.selects(entry.logsource)), None
            )
            if excluded is not None:
                return f"logsource {excluded} is excluded"
            if self.logsources and not any(s.selects(entry.logsource) for s in self.logsources):
                return "logsource is not selected"
        tags = [t.lower() for t in entry.tags]
        bad = next((t for t in self.exclude_tags if _has_tag(tags, t)), None)
        if bad is not None:
            return f"tag {bad} is excluded"
        if self.tags and not any(_has_tag(tags, t) for t in self.tags):
            return f"none of the selected tags ({', '.join(self.tags)})"
        return None

    # -- tuning ----------------------------------------------------------------------------

    def exceptions(self, rule_id: str) -> list[Exception_]:
        return self.tuning.get(rule_id, [])

    def suppressed(self, rule_id: str, event: Mapping[str, Any] | EventView) -> bool:
        """True when one of the rule's false-positive exceptions applies to the event."""
        excs = self.tuning.get(rule_id)
        if not excs:
            return False
        view = event if isinstance(event, EventView) else EventView(event)
        return any(_exception_applies(e, view) for e in excs)

    def merged(self, overrides: Mapping[str, RuleOverride]) -> RulePolicy:
        """This policy with per-rule changes (from the database) laid over it; they win."""
        enabled, disabled = list(self.enabled), list(self.disabled)
        tuning = dict(self.tuning)
        for rule_id, ov in overrides.items():
            if ov.enabled is not None:
                enabled = [r for r in enabled if r != rule_id]
                disabled = [r for r in disabled if r != rule_id]
                (enabled if ov.enabled else disabled).append(rule_id)
            if ov.exceptions is not None:
                tuning[rule_id] = ov.exceptions
        merged = self.model_copy(
            update={"enabled": enabled, "disabled": disabled, "tuning": tuning}
        )
        merged._enabled, merged._disabled = frozenset(enabled), frozenset(disabled)
        return merged


def _has_tag(tags: Sequence[str], wanted: str) -> bool:
    return any(t == wanted or t.startswith(wanted + ".") for t in tags)


@dataclass(frozen=True)
class RuleOverride:
    """A per-rule change made through the API; ``None`` leaves the configuration's choice."""

    enabled: bool | None = None
    exceptions: list[Exception_] | None = None


# ---------------------------------------------------------------------------------------------
# Catalog entries


@dataclass
class RuleEntry:
    """One rule (or one unloadable file) and what became of it."""

    key: str
    """The rule id; for a rule without one (or an unloadable file), its path."""
    kind: RuleKind
    path: Path
    status: RuleStatus
    reason: str | None = None
    id: str | None = None
    title: str = ""
    level: str | None = None
    sigma_status: str | None = None
    logsource: dict[str, str | None] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    line: int | None = None
    enabled: bool = False
    """Whether the selection policy lets the rule run (it runs when also compiled)."""
    problem: str | None = None
    """Why it cannot be loaded or evaluated, whatever the policy says."""
    broken: bool = False
    """The problem is a load error (status error), not an unsupported construct."""
    notes: list[str] = field(default_factory=list)
    """Parts left out of a rule that still runs (e.g. one event route it cannot be mapped to)."""
    match_count: int = 0
    last_match: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "path": str(self.path),
            "line": self.line,
            "status": self.status,
            "reason": self.reason,
            "enabled": self.enabled,
            "level": self.level,
            "sigma_status": self.sigma_status,
            "logsource": dict(self.logsource),
            "tags": list(self.tags),
            "notes": list(self.notes),
            "match_count": self.match_count,
            "last_match": self.last_match.isoformat() if self.last_match else None,
        }


def _compile(
    rules: list[tuple[RuleEntry, LoadedRule]], options: Mapping[str, Any]
) -> dict[str, list[CompiledRule]]:
    """Compile with the matcher's own entry point; record unsupported rules on their entries.

    A rule may compile to several copies (one per event route); all go under its key.
    """
    by_origin = {(e.key, e.path): e for e, _ in rules}
    _, report = Matcher.from_ruleset(RuleSet(rules=[loaded for _, loaded in rules]), **options)
    compiled: dict[str, list[CompiledRule]] = {}
    for rule in report.compiled:
        entry = by_origin.get((rule.id, rule.path)) if rule.path is not None else None
        if entry is None:  # the matcher named the rule differently: find it by file
            entry = next((e for e, _ in rules if e.path == rule.path), None)
        if entry is not None:
            compiled.setdefault(entry.key, []).append(rule)
    for rule_id, path, reason in report.unsupported:
        entry = by_origin.get((rule_id, path)) if path is not None else None
        if entry is not None:
            entry.problem = reason
    for rule_id, path, note in getattr(report, "partial", ()):
        entry = by_origin.get((rule_id, path)) if path is not None else None
        if entry is not None:
            entry.notes.append(note)
    for entry, _ in rules:
        if entry.key not in compiled and entry.problem is None:
            entry.problem = "the matcher did not compile this rule"
    return compiled


def _meta(rule: SigmaRule | SigmaCorrelationRule) -> dict[str, Any]:
    return {
        "id": str(rule.id) if rule.id else None,
        "title": rule.title or "",
        "level": str(rule.level) if rule.level is not None else None,
        "sigma_status": str(rule.status) if rule.status is not None else None,
        "tags": tuple(str(t) for t in rule.tags),
    }


# ---------------------------------------------------------------------------------------------
# Catalog


class RuleCatalog:
    """Every rule file, its status, and the matcher over the rules that run (thread-safe)."""

    def __init__(
        self,
        entries: list[RuleEntry],
        compiled: Mapping[str, Sequence[CompiledRule]],
        policy: RulePolicy,
        files: Sequence[Path] = (),
        correlations: Mapping[str, SigmaCorrelationRule] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._entries = {e.key: e for e in entries}
        self._order = [e.key for e in entries]
        self._compiled = {k: list(v) for k, v in compiled.items()}
        self._correlations = dict(correlations or {})
        self._correlation_results: dict[str, str | None] = {}
        self.files = list(files)
        self.base_policy = policy
        self.overrides: dict[str, RuleOverride] = {}
        self.policy = policy
        self.matcher = Matcher([])
        self.ruleset: RuleSet | None = None
        """What was loaded (for the correlation engine), when built by :meth:`from_ruleset`."""
        self._refresh()

    @classmethod
    def load(
        cls,
        paths: Sequence[Path],
        policy: RulePolicy | None = None,
        *,
        overrides: Mapping[str, RuleOverride] | None = None,
        **compile_options: Any,
    ) -> RuleCatalog:
        """Load and compile every rule under ``paths``; no failure is fatal.

        ``compile_options`` go to :meth:`Matcher.from_ruleset` (``field_map``, ``mapping``,
        ``placeholders``…).
        """
        catalog = cls.from_ruleset(load_rules(list(paths)), policy, **compile_options)
        if overrides:
            catalog.apply_overrides(overrides)
        return catalog

    @classmethod
    def from_ruleset(
        cls,
        ruleset: RuleSet,
        policy: RulePolicy | None = None,
        **compile_options: Any,
    ) -> RuleCatalog:
        """Account for every rule of ``ruleset``; selected or not, each loaded rule is compiled."""
        entries: list[RuleEntry] = []
        compilable: list[tuple[RuleEntry, LoadedRule]] = []
        correlations: dict[str, SigmaCorrelationRule] = {}
        seen: dict[str, Path] = {}
        names: set[str] = set()

        def add(entry: RuleEntry) -> RuleEntry:
            key = entry.key
            if key in seen and not entry.broken:
                entry.problem, entry.broken = f"rule id already used by {seen[key]}", True
            n = 1
            while key in seen:
                n += 1
                key = f"{entry.key}#{n}"
            entry.key = key
            seen[key] = entry.path
            entries.append(entry)
            return entry

        for loaded in ruleset.rules:
            meta = _meta(loaded.rule)
            ls = loaded.rule.logsource
            entry = add(
                RuleEntry(
                    key=meta["id"] or loaded.rule.name or str(loaded.path),
                    kind="detection",
                    path=loaded.path,
                    status="compiled",
                    logsource={
                        "category": ls.category,
                        "product": ls.product,
                        "service": ls.service,
                    },
                    **meta,
                )
            )
            if loaded.rule.name:
                names.add(loaded.rule.name)
            if not entry.broken:
                compilable.append((entry, loaded))

        compiled = _compile(compilable, compile_options)
        known = set(seen) | names
        for corr in ruleset.correlations:
            meta = _meta(corr.rule)
            entry = add(
                RuleEntry(
                    key=meta["id"] or corr.rule.name or str(corr.path),
                    kind="correlation",
                    path=corr.path,
                    status="unsupported",
                    **meta,
                )
            )
            if entry.broken:
                continue
            missing = [r.reference for r in corr.rule.rules or [] if r.reference not in known]
            if missing:
                entry.problem = f"references rules that are not loaded: {', '.join(missing)}"
                entry.broken = True
            else:
                correlations[entry.key] = corr.rule

        for flt in ruleset.filters:
            f = flt.filter
            add(
                RuleEntry(
                    key=str(f.id) if f.id else str(flt.path),
                    kind="filter",
                    path=flt.path,
                    status="compiled",
                    id=str(f.id) if f.id else None,
                    title=f.title or "",
                    sigma_status=str(f.status) if f.status is not None else None,
                    reason="global filter, applied to the rules it selects when loading",
                )
            )

        for err in ruleset.errors:
            key = err.rule_id or (f"{err.path}:{err.line}" if err.line else str(err.path))
            add(
                RuleEntry(
                    key=key,
                    kind="detection",
                    path=err.path,
                    status="error",
                    problem=err.reason,
                    broken=True,
                    id=err.rule_id,
                    title=err.path.stem,
                    line=err.line,
                )
            )
        catalog = cls(entries, compiled, policy or RulePolicy(), ruleset.files, correlations)
        catalog.ruleset = ruleset
        return catalog

    # -- reading ---------------------------------------------------------------------------

    @property
    def entries(self) -> list[RuleEntry]:
        with self._lock:
            return [self._entries[k] for k in self._order]

    def get(self, key: str) -> RuleEntry | None:
        with self._lock:
            return self._entries.get(key)

    def counts(self) -> dict[str, int]:
        """Entries per status (every status present, zero included)."""
        with self._lock:
            found = Counter(e.status for e in self._entries.values())
        return {s: found.get(s, 0) for s in RULE_STATUSES}

    def reasons(self, status: RuleStatus | None = None) -> Counter[str]:
        """How many entries (optionally of one status) share each reason."""
        with self._lock:
            return Counter(
                e.reason or ""
                for e in self._entries.values()
                if e.status != "compiled" and (status is None or e.status == status)
            )

    def exceptions(self, key: str) -> list[Exception_]:
        return self.policy.exceptions(key)

    def to_dict(self) -> dict[str, Any]:
        """The whole catalog as plain data (``rules check --json``)."""
        return {
            "files": len(self.files),
            "counts": self.counts(),
            "rules": [{**e.to_dict(), "exceptions": self.exceptions(e.key)} for e in self.entries],
        }

    # -- matching --------------------------------------------------------------------------

    def suppressed(self, rule_id: str, event: Mapping[str, Any] | EventView) -> bool:
        """A false-positive exception of the rule (configuration or API) applies to the event."""
        return self.policy.suppressed(rule_id, event)

    def record_match(self, rule_id: str, when: datetime | None = None) -> None:
        """Count one match of ``rule_id`` (safe to call from any thread)."""
        when = when or datetime.now(UTC)
        with self._lock:
            entry = self._entries.get(rule_id)
            if entry is None:
                return
            entry.match_count += 1
            if entry.last_match is None or when > entry.last_match:
                entry.last_match = when

    # -- changing --------------------------------------------------------------------------

    def apply_overrides(self, overrides: Mapping[str, RuleOverride]) -> None:
        """Replace every per-rule change (e.g. as read from the database) and re-select."""
        with self._lock:
            self.overrides = dict(overrides)
            self._refresh()

    def set_override(self, key: str, override: RuleOverride | None) -> RuleEntry:
        """Change one rule (``None`` = back to the configuration) and rebuild the matcher."""
        with self._lock:
            if key not in self._entries:
                raise KeyError(key)
            if override is None or override == RuleOverride():
                self.overrides.pop(key, None)
            else:
                self.overrides[key] = override
            self._refresh()
            return self._entries[key]

    def report_correlations(
        self, compiled: Iterable[str], unsupported: Iterable[tuple[str, str]] = ()
    ) -> None:
        """For the correlation engine: which correlation rules it runs, and which it cannot."""
        with self._lock:
            for key in compiled:
                self._correlation_results[key] = None
            for key, reason in unsupported:
                self._correlation_results[key] = reason
            self._refresh()

    def report_correlation_report(self, report: Any) -> None:
        """Take a ``detections.correlation.CorrelationReport`` (compiled, unsupported)."""
        self.report_correlations(
            (c.id for c in report.compiled),
            ((rule_id, reason) for rule_id, _path, reason in report.unsupported),
        )

    def compiled_rules(self) -> list[CompiledRule]:
        """Every compiled detection rule, running or not (in load order)."""
        with self._lock:
            return [r for k in self._order for r in self._compiled.get(k, ())]

    @property
    def correlations(self) -> dict[str, SigmaCorrelationRule]:
        """Loaded correlation rules whose references resolve, by key (for the correlation engine)."""
        return dict(self._correlations)

    def running_correlations(self) -> list[str]:
        """Correlation rules the policy selects (whether or not an engine runs them yet)."""
        with self._lock:
            return [k for k in self._correlations if self._entries[k].enabled]

    def _refresh(self) -> None:
        policy = self.base_policy.merged(self.overrides)
        for entry in self._entries.values():
            runs, why, status = policy.selection(entry)
            entry.enabled = runs
            if entry.kind == "filter":
                continue
            if entry.kind == "correlation" and entry.key in self._correlations:
                entry.problem = self._correlation_results.get(entry.key, CORRELATION_PENDING)
                entry.broken = False
            if entry.problem is not None:
                entry.status = "error" if entry.broken else "unsupported"
                entry.reason = entry.problem
            elif not runs:
                entry.status, entry.reason = status or "filtered", why
            else:
                entry.status, entry.reason = "compiled", None
        keys = [k for k in self._order if k in self._compiled and self._entries[k].enabled]
        self.policy = policy
        self.matcher = Matcher([rule for k in keys for rule in self._compiled[k]])


# ---------------------------------------------------------------------------------------------
# CLI: socmon rules check


def add_rules_parser(sub: argparse._SubParsersAction[Any]) -> argparse._SubParsersAction[Any]:
    """Add the ``rules`` command group to ``socmon``'s subcommands; returns its subparsers."""
    rules: argparse._SubParsersAction[Any] = sub.add_parser(
        "rules", help="detection rules"
    ).add_subparsers(dest="rules_command", required=True)
    check = rules.add_parser(
        "check",
        help="load and compile rules; print counts by status and every rule that will not run",
    )
    check.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="rule file or directory")
    check.add_argument("--json", action="store_true", help="print the full catalog as JSON")
    check.add_argument(
        "--no-policy",
        action="store_true",
        help="ignore the configured rules_policy (show load and compile results only)",
    )
    check.set_defaults(func=cmd_rules_check)
    return rules


def _configured_policy() -> RulePolicy:
    from socmon.config import get_settings

    policy = getattr(get_settings(), "rules_policy", None)
    if isinstance(policy, RulePolicy):
        return policy
    if isinstance(policy, Mapping):
        return RulePolicy.model_validate(policy)
    return RulePolicy()


def cmd_rules_check(args: argparse.Namespace) -> int:
    import os

    if getattr(args, "config", None):
        from socmon.config import get_settings

        os.environ["SOCMON_CONFIG"] = args.config
        get_settings.cache_clear()
    policy = RulePolicy() if args.no_policy else _configured_policy()
    catalog = RuleCatalog.load(args.paths, policy)
    check_correlations(catalog)
    counts = catalog.counts()
    if args.json:
        json.dump(catalog.to_dict(), sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print_check(catalog, sys.stdout)
    return 1 if counts["error"] else 0


def check_correlations(catalog: RuleCatalog) -> None:
    """Resolve the catalog's correlation rules with the correlation engine and record the result."""
    if catalog.ruleset is None or not catalog.ruleset.correlations:
        return
    from detections.correlation import CorrelationEngine

    _engine, report = CorrelationEngine.from_ruleset(catalog.ruleset, catalog.compiled_rules())
    catalog.report_correlation_report(report)


def print_check(catalog: RuleCatalog, out: Any) -> None:
    counts = catalog.counts()
    total = sum(counts.values())
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    print(f"{len(catalog.files)} files, {total} rules: {summary}", file=out)
    for status in RULE_STATUSES[1:]:
        reasons = catalog.reasons(status)
        if not reasons:
            continue
        print(f"\n{status} ({counts[status]}), by reason:", file=out)
        for reason, n in reasons.most_common():
            print(f"  {n:5d}  {reason}", file=out)
    shown = [e for e in catalog.entries if e.status != "compiled"]
    if shown:
        print("\nrules that will not run:", file=out)
    for e in shown:
        where = f"{e.path}:{e.line}" if e.line else str(e.path)
        print(f"  {e.status:<11} {where}  [{e.id or '-'}]  {e.reason}", file=out)
