"""Load Sigma rule files with pySigma, keeping every file accounted for.

Each file is parsed on its own, so one broken file never stops the others: a file that is not
YAML, or a rule pySigma rejects, becomes a :class:`RuleError` naming the path and the reason,
and the rest still load. Detection rules become :class:`LoadedRule`; correlation rules and
global filters are kept aside (correlations are compiled by later work; filters are applied to
the detection rules they select, as pySigma does when it loads a rule set).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule
from sigma.rule.base import SigmaYAMLLoader

from socmon.errors import Location, SocmonError

RULE_SUFFIXES = (".yml", ".yaml")


class RuleLoadError(SocmonError):
    """A Sigma rule file could not be loaded (bad YAML, invalid rule, unreadable file)."""

    def __init__(
        self, msg: str, source: Location | None = None, rule_id: str | None = None
    ) -> None:
        super().__init__(msg, source)
        self.rule_id = rule_id


@dataclass(frozen=True)
class RuleError:
    """One file (or one rule inside a file) that did not load, and why."""

    path: Path
    reason: str
    rule_id: str | None = None
    line: int | None = None

    def to_exception(self) -> RuleLoadError:
        return RuleLoadError(self.reason, Location(self.path, self.line), self.rule_id)


@dataclass(frozen=True)
class LoadedRule:
    """A detection rule pySigma parsed without error, with the file it came from."""

    path: Path
    rule: SigmaRule


@dataclass(frozen=True)
class LoadedCorrelation:
    """A correlation rule (event_count, value_count, temporal…), kept for the correlation engine."""

    path: Path
    rule: SigmaCorrelationRule


@dataclass(frozen=True)
class LoadedFilter:
    """A Sigma global filter; already applied to the detection rules it selects."""

    path: Path
    filter: SigmaFilter


@dataclass
class RuleSet:
    """Everything found under the given paths: rules, correlations, filters and errors."""

    rules: list[LoadedRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    correlations: list[LoadedCorrelation] = field(default_factory=list)
    filters: list[LoadedFilter] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    """Every rule file that was read, whether it loaded or not."""


def rule_files(paths: Sequence[Path]) -> list[Path]:
    """Files named directly, plus ``*.yml``/``*.yaml`` found recursively under directories.

    A path that does not exist is returned as is, so that loading reports it as an error.
    """
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file())
            )
        else:
            found.append(path)
    return found


def load_rules(paths: Sequence[Path], *, collect_errors: bool = True) -> RuleSet:
    """Load every Sigma rule file under ``paths`` (files or directories).

    With ``collect_errors`` (the default) each failure becomes a :class:`RuleError` in
    ``RuleSet.errors`` and loading goes on; otherwise the first failure is raised as
    :class:`RuleLoadError`.
    """
    ruleset = RuleSet()
    for path in rule_files(paths):
        ruleset.files.append(path)
        for item in _load_file(path):
            if isinstance(item, RuleError):
                if not collect_errors:
                    raise item.to_exception()
                ruleset.errors.append(item)
            elif isinstance(item, LoadedRule):
                ruleset.rules.append(item)
            elif isinstance(item, LoadedCorrelation):
                ruleset.correlations.append(item)
            else:
                ruleset.filters.append(item)
    _apply_filters(ruleset, collect_errors)
    return ruleset


def _load_file(path: Path) -> list[RuleError | LoadedRule | LoadedCorrelation | LoadedFilter]:
    """Parse one file into loaded objects and errors; never raises for bad content."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [RuleError(path, "file not found")]
    except UnicodeDecodeError as e:
        return [RuleError(path, f"not UTF-8 text: {e}")]
    except OSError as e:
        return [RuleError(path, f"cannot read file: {e.strerror or e}")]

    try:
        documents = list(yaml.load_all(text, Loader=SigmaYAMLLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return [RuleError(path, f"invalid YAML: {_yaml_reason(e)}", line=line)]

    documents = [doc for doc in documents if doc is not None]
    if not documents:
        return [RuleError(path, "file contains no rule")]
    not_mappings = [i for i, doc in enumerate(documents, 1) if not isinstance(doc, dict)]
    if not_mappings:
        return [RuleError(path, f"YAML document {not_mappings[0]} is not a mapping")]

    try:
        collection = SigmaCollection.from_dicts(
            documents,
            collect_errors=True,
            source=SigmaRuleLocation(path),
            collect_filters=True,
            resolve_references=False,
        )
    except SigmaError as e:
        return [RuleError(path, _sigma_reason(e), _rule_id_of(documents))]
    except (TypeError, ValueError, AttributeError, KeyError) as e:
        # pySigma raises plain Python errors on some malformed structures (e.g. a list where
        # a mapping is expected); the file is reported rather than crashing the whole load.
        reason = f"malformed rule ({type(e).__name__}: {e})"
        return [RuleError(path, reason, _rule_id_of(documents))]

    out: list[RuleError | LoadedRule | LoadedCorrelation | LoadedFilter] = []
    rule_errors: list[SigmaError] = []
    for obj in (*collection.rules, *collection.filters):
        if obj.errors:
            rule_errors.extend(obj.errors)
            reason = "; ".join(_dedupe(_sigma_reason(e) for e in obj.errors))
            out.append(RuleError(path, reason, str(obj.id) if obj.id else None))
        elif isinstance(obj, SigmaRule):
            condition_error = _condition_error(obj)
            if condition_error is not None:
                out.append(RuleError(path, condition_error, str(obj.id) if obj.id else None))
            else:
                out.append(LoadedRule(path, obj))
        elif isinstance(obj, SigmaCorrelationRule):
            out.append(LoadedCorrelation(path, obj))
        elif isinstance(obj, SigmaFilter):
            out.append(LoadedFilter(path, obj))
    # Errors that belong to the file rather than to one rule (e.g. an unknown collection action).
    for error in collection.errors:
        if not any(error is known for known in rule_errors):
            out.append(RuleError(path, _sigma_reason(error)))
    if not out:
        out.append(RuleError(path, "file contains no rule"))
    return out


def _apply_filters(ruleset: RuleSet, collect_errors: bool) -> None:
    """Apply every loaded global filter to the detection rules it selects."""
    for loaded_filter in ruleset.filters:
        for loaded in ruleset.rules:
            try:
                # pySigma rewrites the rule's detections and condition in place.
                loaded_filter.filter.apply_on_rule(loaded.rule)
            except SigmaError as e:
                reason = f"filter cannot be applied to {loaded.path}: {_sigma_reason(e)}"
                filter_id = str(loaded_filter.filter.id) if loaded_filter.filter.id else None
                error = RuleError(loaded_filter.path, reason, filter_id)
                if not collect_errors:
                    raise error.to_exception() from e
                ruleset.errors.append(error)


def _condition_error(rule: SigmaRule) -> str | None:
    """pySigma parses conditions lazily; parse them now so a broken one is a load error."""
    try:
        for condition in rule.detection.parsed_condition:
            condition.parse()
    except SigmaError as e:
        return f"invalid condition: {_sigma_reason(e)}"
    return None


def _sigma_reason(error: SigmaError) -> str:
    """The message of a pySigma error without the location pySigma appends to ``str()``."""
    return str(error.args[0]) if error.args else type(error).__name__


def _yaml_reason(error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None)
    if isinstance(problem, str):
        context = getattr(error, "context", None)
        return f"{context}, {problem}" if isinstance(context, str) else problem
    return str(error)


def _rule_id_of(documents: list[Any]) -> str | None:
    rule_id = documents[0].get("id") if documents and isinstance(documents[0], dict) else None
    return str(rule_id) if rule_id is not None else None


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
