"""Loading Sigma rule files: every file is either loaded or reported with its reason."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest
from sigma.correlations import SigmaCorrelationRule
from sigma.rule import SigmaRule

from detections.sigma import Matcher, RuleError, RuleLoadError, load_rules, rule_files
from socmon.corpus import corpus_dir
from socmon.errors import Location, SocmonError

GOOD = """\
title: Good rule
id: 0f6c1a4e-9b7d-4b1e-8f3a-2c5d6e7f8a90
name: good_rule
status: experimental
level: medium
logsource:
    product: test
detection:
    sel:
        event.action: deny
    condition: sel
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def reasons(errors: list[RuleError]) -> dict[str, str]:
    return {e.path.name: e.reason for e in errors}


def test_loads_files_and_directories_recursively(tmp_path: Path) -> None:
    write(tmp_path / "a.yml", GOOD)
    write(tmp_path / "sub" / "deeper" / "b.yaml", GOOD.replace("0f6c1a4e", "1f6c1a4e"))
    write(tmp_path / "notes.txt", "not a rule")
    single = write(tmp_path.parent / f"{tmp_path.name}-single.yml", GOOD)

    rs = load_rules([tmp_path, single])

    assert rs.errors == []
    assert sorted(r.path.name for r in rs.rules) == ["a.yml", "b.yaml", single.name]
    assert all(isinstance(r.rule, SigmaRule) for r in rs.rules)
    assert rs.rules[0].rule.title == "Good rule"
    assert len(rs.files) == 3
    assert rule_files([tmp_path]) == [tmp_path / "a.yml", tmp_path / "sub" / "deeper" / "b.yaml"]


def test_bad_files_are_reported_with_path_and_reason_and_good_ones_still_load(
    tmp_path: Path,
) -> None:
    write(tmp_path / "good.yml", GOOD)
    write(tmp_path / "invalid_yaml.yml", "title: x\n  detection: [\n")
    write(
        tmp_path / "missing_detection.yml",
        """\
        title: No detection
        id: 2a2a2a2a-0000-4000-8000-000000000002
        logsource: {product: test}
        """,
    )
    write(
        tmp_path / "unknown_modifier.yml",
        """\
        title: Unknown modifier
        logsource: {product: test}
        detection:
            sel: {event.action|xyz: deny}
            condition: sel
        """,
    )
    write(
        tmp_path / "bad_condition.yml",
        """\
        title: Condition names a missing detection
        logsource: {product: test}
        detection:
            sel: {event.action: deny}
            condition: sel and filter
        """,
    )
    write(
        tmp_path / "duplicate_key.yml",
        """\
        title: Duplicate key
        logsource: {product: test}
        detection:
            sel: {a: 1}
            sel: {b: 2}
            condition: sel
        """,
    )
    write(tmp_path / "empty.yml", "\n")
    write(tmp_path / "list.yml", "- just\n- a list\n")
    (tmp_path / "latin1.yml").write_bytes(b"title: caf\xe9\n")
    missing = tmp_path / "does-not-exist.yml"

    rs = load_rules([tmp_path, missing])

    assert [r.path.name for r in rs.rules] == ["good.yml"]
    got = reasons(rs.errors)
    assert got["invalid_yaml.yml"].startswith("invalid YAML: mapping values are not allowed")
    assert got["missing_detection.yml"] == "Sigma rule must have a detection definitions"
    assert got["unknown_modifier.yml"] == "Unknown modifier 'xyz'"
    assert got["bad_condition.yml"] == (
        "invalid condition: Detection 'filter' not defined in detections"
    )
    assert "Duplicate key 'sel'" in got["duplicate_key.yml"]
    assert got["empty.yml"] == "file contains no rule"
    assert got["list.yml"] == "YAML document 1 is not a mapping"
    assert got["latin1.yml"].startswith("not UTF-8 text")
    assert got["does-not-exist.yml"] == "file not found"
    assert len(rs.errors) == 9
    by_name = {e.path.name: e for e in rs.errors}
    assert by_name["invalid_yaml.yml"].line == 2
    assert by_name["missing_detection.yml"].rule_id == "2a2a2a2a-0000-4000-8000-000000000002"
    assert all(e.path.parent == tmp_path for e in rs.errors)


def test_collect_errors_false_raises_the_first_error(tmp_path: Path) -> None:
    write(tmp_path / "a_good.yml", GOOD)
    bad = write(tmp_path / "b_bad.yml", "title: x\n  detection: [\n")
    write(tmp_path / "c_bad.yml", "- list\n")

    with pytest.raises(RuleLoadError) as caught:
        load_rules([tmp_path], collect_errors=False)

    error = caught.value
    assert isinstance(error, SocmonError)
    assert error.source == Location(bad, 2)
    assert error.msg.startswith("invalid YAML")
    assert str(error).startswith(f"{bad}:2: invalid YAML")


def test_correlation_rules_are_kept_aside_not_errors(tmp_path: Path) -> None:
    write(tmp_path / "base.yml", GOOD)
    write(
        tmp_path / "many_denies.yml",
        """\
        title: Many denies from one source
        id: 3b3b3b3b-0000-4000-8000-000000000003
        correlation:
            type: event_count
            rules:
                - good_rule
            group-by:
                - source.ip
            timespan: 5m
            condition:
                gte: 20
        level: high
        """,
    )
    rs = load_rules([tmp_path])
    assert rs.errors == []
    assert [r.path.name for r in rs.rules] == ["base.yml"]
    assert len(rs.correlations) == 1
    correlation = rs.correlations[0]
    assert isinstance(correlation.rule, SigmaCorrelationRule)
    assert correlation.path.name == "many_denies.yml"
    assert correlation.rule.group_by == ["source.ip"]


def test_multi_document_file_with_global_action(tmp_path: Path) -> None:
    write(
        tmp_path / "multi.yml",
        """\
        action: global
        title: Shared
        logsource: {product: test}
        detection:
            sel: {event.action: deny}
            condition: sel
        ---
        id: 4c4c4c4c-0000-4000-8000-000000000001
        level: low
        ---
        id: 4c4c4c4c-0000-4000-8000-000000000002
        level: high
        """,
    )
    rs = load_rules([tmp_path])
    assert rs.errors == []
    assert [str(r.rule.level) for r in rs.rules] == ["low", "high"]
    assert {r.path.name for r in rs.rules} == {"multi.yml"}


def test_one_bad_rule_in_a_multi_document_file_keeps_the_other(tmp_path: Path) -> None:
    write(
        tmp_path / "two.yml",
        """\
        title: First
        id: 5d5d5d5d-0000-4000-8000-000000000001
        logsource: {product: test}
        detection:
            sel: {a: 1}
            condition: sel
        ---
        title: Second
        id: 5d5d5d5d-0000-4000-8000-000000000002
        logsource: {product: test}
        detection:
            sel: {a|nope: 1}
            condition: sel
        """,
    )
    rs = load_rules([tmp_path])
    assert [r.rule.title for r in rs.rules] == ["First"]
    assert [(e.rule_id, e.reason) for e in rs.errors] == [
        ("5d5d5d5d-0000-4000-8000-000000000002", "Unknown modifier 'nope'")
    ]


def test_global_filters_are_applied_to_the_rules_they_select(tmp_path: Path) -> None:
    write(tmp_path / "rule.yml", GOOD)
    write(
        tmp_path / "filter.yml",
        """\
        title: Ignore the scanner
        logsource: {product: test}
        filter:
            rules:
                - good_rule
            selection:
                source.ip: 10.0.0.99
            condition: not selection
        """,
    )
    rs = load_rules([tmp_path])
    assert rs.errors == []
    assert [f.path.name for f in rs.filters] == ["filter.yml"]
    matcher, report = Matcher.from_ruleset(rs)
    assert report.unsupported == []
    deny = {"event": {"action": "deny"}, "source": {"ip": "10.0.0.1"}}
    assert matcher.match(deny) == report.compiled
    assert matcher.match({**deny, "source": {"ip": "10.0.0.99"}}) == []


def test_utf16le_modifier_is_unknown_to_pysigma(tmp_path: Path) -> None:
    # The Sigma specification lists `utf16le` as the name of `wide`; pySigma 1.5 knows only
    # `wide`, so such a rule is reported rather than silently dropped.
    write(
        tmp_path / "utf16le.yml",
        """\
        title: utf16le
        logsource: {product: test}
        detection:
            sel: {blob|utf16le|base64: cmd}
            condition: sel
        """,
    )
    rs = load_rules([tmp_path])
    assert reasons(rs.errors) == {"utf16le.yml": "Unknown modifier 'utf16le'"}


def test_every_sigmahq_rule_is_loaded_or_reported_and_compiled_or_reported() -> None:
    base = corpus_dir()
    if base is None:
        pytest.skip("corpus not found (set SOCMON_CORPUS): the SigmaHQ rules are needed")
    rules_dir = base / "sigma" / "rules"
    files = rule_files([rules_dir])

    rs = load_rules([rules_dir])
    matcher, report = Matcher.from_ruleset(rs)

    # Every file is accounted for: loaded (as rule, correlation or filter) or an error.
    loaded_paths = {r.path for r in rs.rules} | {c.path for c in rs.correlations}
    loaded_paths |= {f.path for f in rs.filters}
    error_paths = {e.path for e in rs.errors}
    assert rs.files == files
    unaccounted = sorted(set(files) - loaded_paths - error_paths)
    assert unaccounted == [], f"files neither loaded nor reported: {unaccounted[:20]}"
    assert all(e.reason for e in rs.errors)

    # Every loaded rule is accounted for: compiled (once per route) or unsupported with a reason.
    compiled_ids = report.compiled_ids
    assert len(compiled_ids) + len(report.unsupported) == len(rs.rules)
    assert all(reason for _, _, reason in report.unsupported)
    assert len(matcher) == len(report.compiled)

    by_reason = Counter(e.reason for e in rs.errors)
    tally = [
        f"SigmaHQ rules/: {len(files)} files, {len(rs.rules)} rules loaded, "
        f"{len(rs.correlations)} correlations, {len(rs.errors)} load errors",
        *(f"  load error x{n}: {reason}" for reason, n in by_reason.most_common()),
        f"compiled {len(report.compiled)}, unsupported {len(report.unsupported)}",
        *(f"  unsupported x{n}: {reason}" for reason, n in report.reasons().most_common()),
        f"index: {sum(matcher.indexed_fields.values())} rules indexed on "
        f"{len(matcher.indexed_fields)} fields, {matcher.unindexed_count} unindexed",
    ]
    print("\n" + "\n".join(tally))
    # Rules for log sources socmon collects compile; the rest say which source they lack.
    windows = [r for r in rs.rules if r.rule.logsource.product == "windows"]
    windows_ids = {str(r.rule.id) for r in windows}
    assert len(windows_ids & set(compiled_ids)) >= 0.99 * len(windows), "\n".join(tally)
    for _, _, reason in report.unsupported:
        assert "no socmon source carries" in reason or "not supported" in reason, reason
