"""socmon's own detection rules (`detections/rules/`): each loads, compiles, is complete, and
fires on a real or realistic log line through the real parser and the matcher.

Every rule file `detections/rules/<area>/<name>.yml` has a samples file
`tests/detections/own_rules/<area>/<name>.samples.yml` (see `detections/rules/README.md`):
`positive` lines must fire the rule, `negative` lines (near misses) must not. A sample is one of

- `origin: real`: line `line` (1-based) of the corpus file `corpus`, unchanged;
- `origin: derived`: that line with the `edits` ([old, new] pairs, each `old` occurring exactly
  once) applied; the edits are the whole difference from the real line;
- `origin: capture`: `raw` built around an HTTP request that occurs verbatim (`request`) in the
  corpus packet capture `capture`;
- `origin: written`: `raw` written from the vendor's documented message format, where the
  corpus holds no message of that kind (`note` names the source).

Corpus lines are read at test time (never copied into the repository); without the corpus the
samples that need it are skipped with the reason.
"""

from __future__ import annotations

import uuid
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from collectors.parsing import SourceContext
from collectors.registry import DATASETS, PARSERS
from detections.engine import BUILTIN_RULES
from detections.sigma.loader import RuleSet, load_rules, rule_files
from detections.sigma.mapping import is_native
from detections.sigma.matcher import CompiledRule, CompileReport, EventView, Matcher
from soc_api.labels import INCIDENT_CATEGORY
from socmon.corpus import corpus_dir

SAMPLES = Path(__file__).parent / "own_rules"
SAMPLE_SUFFIX = ".samples.yml"
RULE_FILES = rule_files([BUILTIN_RULES])
LEVELS = ("informational", "low", "medium", "high", "critical")
ORIGINS = ("real", "derived", "capture", "written")
# Every dataset a socmon parser writes (error-log lines of the web servers set their own).
KNOWN_DATASETS = {*DATASETS.values(), "apache.error", "nginx.error"}


def _rel(path: Path) -> str:
    return path.relative_to(BUILTIN_RULES).as_posix()


def samples_path(rule_file: Path) -> Path:
    return SAMPLES / Path(_rel(rule_file)).with_suffix(SAMPLE_SUFFIX)


@cache
def ruleset() -> RuleSet:
    return load_rules([BUILTIN_RULES])


@cache
def compiled() -> tuple[Matcher, CompileReport]:
    return Matcher.from_ruleset(ruleset())


def correlated_names() -> set[str]:
    """Names of the detection rules a correlation counts (they raise no alert of their own)."""
    names: set[str] = set()
    for loaded in ruleset().correlations:
        for ref in loaded.rule.rules or ():
            names.add(str(ref.reference))
    return names


def rules_of(rule_file: Path) -> list[CompiledRule]:
    _, report = compiled()
    return [r for r in report.compiled if r.path == rule_file]


# --------------------------------------------------------------------------- the rule set


def test_rule_files_found() -> None:
    areas = {Path(_rel(p)).parts[0] for p in RULE_FILES}
    assert {"network", "router", "linux", "web"} <= areas
    assert len(RULE_FILES) >= 20


def test_all_rules_load_and_compile() -> None:
    rs = ruleset()
    assert [(e.path.name, e.reason) for e in rs.errors] == []
    assert set(rs.files) == set(RULE_FILES)
    _, report = compiled()
    assert report.unsupported == []
    assert report.partial == []
    loaded_ids = {str(r.rule.id) for r in rs.rules}
    assert set(report.compiled_ids) == loaded_ids


def test_rules_are_written_against_socmon_ecs() -> None:
    """Dotted ECS fields only (no keyword search, no Sigma taxonomy names), so no mapping
    rewrites them, and an explicit `event.dataset` that a socmon parser really writes."""
    offenders: dict[str, str] = {}
    for loaded in ruleset().rules:
        if not is_native(loaded.rule):
            offenders[loaded.path.name] = "reads a field that is not a dotted ECS name"
    for rule in compiled()[1].compiled:
        datasets = rule.required.get("event.dataset")
        if not datasets:
            offenders[rule.path.name if rule.path else rule.id] = "no event.dataset condition"
        elif unknown := {d for d in datasets if d not in KNOWN_DATASETS}:
            offenders[rule.path.name if rule.path else rule.id] = f"unknown datasets {unknown}"
    assert offenders == {}


def test_ids_are_unique_uuids() -> None:
    rs = ruleset()
    ids = [str(r.rule.id) for r in rs.rules] + [str(c.rule.id) for c in rs.correlations]
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert [i for i, n in Counter(ids).items() if n > 1] == []


def _metadata_problems(rule: Any, *, alerting: bool) -> list[str]:
    problems: list[str] = []
    if not rule.title or not rule.description or not rule.author or rule.date is None:
        problems.append("title, description, author and date are required")
    if rule.level is None or str(rule.level) not in LEVELS:
        problems.append(f"level {rule.level} is not one of {LEVELS}")
    if not rule.falsepositives:
        problems.append("no falsepositives")
    if not alerting:
        return problems
    tags = [str(t).lower() for t in rule.tags]
    techniques = [t for t in tags if t.startswith("attack.t") and t[8:9].isdigit()]
    tactics = [t for t in tags if t.startswith("attack.") and t not in techniques]
    if not techniques or not tactics:
        problems.append(f"needs an ATT&CK tactic and technique tag, has {tags}")
    groups = [t.rsplit(".", 1)[1].upper() for t in tags if t.startswith("socmon.group.")]
    if len(groups) != 1 or groups[0] not in INCIDENT_CATEGORY:
        problems.append(f"needs exactly one socmon.group.<A1..C5> tag, has {groups}")
    return problems


def test_every_alerting_rule_is_complete() -> None:
    """Level, description, false positives, ATT&CK and Decision 05/2017 group tags; alerting
    detection rules say how their alerts group into incidents (`group_by`)."""
    helpers = correlated_names()
    problems: dict[str, list[str]] = {}
    for loaded in ruleset().rules:
        rule = loaded.rule
        alerting = rule.name not in helpers
        found = _metadata_problems(rule, alerting=alerting)
        group_by = rule.custom_attributes.get("group_by")
        if alerting and not (
            isinstance(group_by, list) and group_by and all(isinstance(f, str) for f in group_by)
        ):
            found.append("group_by must be a non-empty list of field names")
        if found:
            problems[f"{loaded.path.name}:{rule.title}"] = found
    for correlation in ruleset().correlations:
        found = _metadata_problems(correlation.rule, alerting=True)
        if not correlation.rule.group_by:
            found.append("a correlation needs group-by")
        if found:
            problems[f"{correlation.path.name}:{correlation.rule.title}"] = found
    assert problems == {}


def test_every_rule_file_has_samples_and_no_sample_is_orphaned() -> None:
    missing = [_rel(p) for p in RULE_FILES if not samples_path(p).is_file()]
    assert missing == [], f"rule files without {SAMPLE_SUFFIX}: {missing}"
    expected = {samples_path(p) for p in RULE_FILES}
    orphans = sorted(str(p) for p in SAMPLES.rglob(f"*{SAMPLE_SUFFIX}") if p not in expected)
    assert orphans == []


def test_sample_files_are_not_loaded_as_rules() -> None:
    """Samples live outside `detections/rules/`: the loader reads every `*.yml` there."""
    assert not any(p.name.endswith(SAMPLE_SUFFIX) for p in RULE_FILES)


# --------------------------------------------------------------------------- the samples


def _corpus_file(relative: str) -> Path:
    base = corpus_dir()
    if base is None:
        pytest.skip("test corpus not found: set SOCMON_CORPUS or place shared/corpus")
    path = base / relative
    assert path.is_file(), f"corpus file {relative} is missing"
    return path


def sample_line(sample: dict[str, Any]) -> str:
    """The raw log line of a sample, read from the corpus where it comes from there."""
    origin = sample.get("origin")
    assert origin in ORIGINS, f"origin {origin!r} is not one of {ORIGINS}"
    assert sample.get("note"), "every sample says what it shows (note)"
    if origin in ("real", "derived"):
        assert "raw" not in sample, "a corpus sample is read from the corpus, not copied"
        # Split on newlines only: str.splitlines() would also cut at U+001D, which enriched
        # audit records use as a separator.
        lines = _corpus_file(sample["corpus"]).read_text(encoding="utf-8").split("\n")
        line: str = lines[int(sample["line"]) - 1].rstrip("\r")
        edits = sample.get("edits") or []
        assert bool(edits) == (origin == "derived"), "derived samples, and only they, edit"
        for old, new in edits:
            assert line.count(old) == 1, f"edit {old!r} must occur once in the corpus line"
            line = line.replace(old, new)
        return line
    raw = sample["raw"]
    assert isinstance(raw, str) and raw
    if origin == "capture":
        request = sample["request"]
        assert request in raw, "the captured request is part of the line"
        assert request.encode() in _corpus_file(sample["capture"]).read_bytes()
    return raw


def parse_sample(sample: dict[str, Any]) -> dict[str, Any]:
    parser = sample.get("parser")
    assert parser in PARSERS, f"unknown parser {parser!r}"
    return PARSERS[parser](sample_line(sample), SourceContext())


def expected_rule(rule_file: Path, samples: dict[str, Any], sample: dict[str, Any]) -> str:
    """The id of the rule a sample is about: the file's only alerting detection rule, or the
    detection rule named by `rule` (files with a correlation and its counted rule)."""
    in_file = rules_of(rule_file)
    wanted = sample.get("rule", samples.get("rule"))
    if wanted is not None:
        ids = [r.id for r in in_file if r.id == str(wanted)]
        assert ids, f"rule {wanted} is not a detection rule of {rule_file.name}"
        return ids[0]
    assert len(in_file) == 1, f"{rule_file.name} has several detection rules: name one (rule:)"
    return in_file[0].id


def load_samples(rule_file: Path) -> dict[str, Any]:
    path = samples_path(rule_file)
    if not path.is_file():
        pytest.fail(f"{_rel(rule_file)} has no samples file {path}")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert set(data) <= {"rule", "positive", "negative"}
    assert data.get("positive"), "at least one positive sample"
    assert data.get("negative"), "at least one negative (near-miss) sample"
    return data


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=_rel)
def test_rule_samples(rule_file: Path) -> None:
    """Positives fire the rule and give its incident a grouping value; negatives do not fire."""
    samples = load_samples(rule_file)
    matcher, _ = compiled()
    for n, sample in enumerate(samples["positive"], 1):
        rule_id = expected_rule(rule_file, samples, sample)
        doc = parse_sample(sample)
        fired = {r.id for r in matcher.match(doc)}
        assert rule_id in fired, f"positive {n} ({sample['note']}) did not fire; doc: {doc}"
        rule = next(r for r in rules_of(rule_file) if r.id == rule_id)
        group_by = rule.custom.get("group_by")
        if group_by:
            view = EventView(doc)
            assert any(view.present(f) for f in group_by), f"positive {n}: no group_by field"
    for n, sample in enumerate(samples["negative"], 1):
        rule_id = expected_rule(rule_file, samples, sample)
        doc = parse_sample(sample)
        fired = {r.id for r in matcher.match(doc)}
        assert rule_id not in fired, f"negative {n} ({sample['note']}) fired; doc: {doc}"
