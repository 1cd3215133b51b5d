"""The rule catalog: every rule file accounted for, selection policy, tuning, match counts, CLI."""

from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from detections.catalog import (
    CORRELATION_PENDING,
    RULE_STATUSES,
    LogsourceSelector,
    RuleCatalog,
    RuleOverride,
    RulePolicy,
    add_rules_parser,
)
from detections.engine import BUILTIN_RULES
from socmon.corpus import corpus_dir

LOGIN_FAILURE = "4fc818db-0000-4000-8000-000000000001"  # fixture rule, level medium
ADMIN_PORT_DENIED = "d68a873f-0000-4000-8000-000000000002"  # fixture rule, level high


def sigma() -> Path:
    corpus = corpus_dir()
    if corpus is None:
        pytest.skip("the shared corpus is not available (socmon.corpus.corpus_dir())")
    return corpus / "sigma"


def corpus_subset() -> list[Path]:
    """Real SigmaHQ rules: network devices (some unsupported sources), placeholders, BITS."""
    return [
        sigma() / "rules" / "network",
        sigma() / "rules-placeholder" / "windows",
        sigma() / "rules" / "windows" / "builtin" / "bits_client",
    ]


def rule_yaml(
    rule_id: str, *, status: str = "experimental", level: str = "medium", **extra: str
) -> str:
    tags = extra.get("tags", "    - attack.execution\n    - attack.t1059.001")
    product = extra.get("product", "fortigate")
    return f"""title: Test rule {rule_id[:8]}
id: {rule_id}
status: {status}
tags:
{tags}
logsource:
    category: firewall
    product: {product}
detection:
    selection:
        event.dataset: fortinet.fortigate
        event.action: {extra.get("action", "deny")}
    condition: selection
level: {level}
"""


def write_fixture_rules(root: Path) -> Path:
    """Two FortiGate rules of our own (socmon's shipped rules change as the project grows)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "login_failure.yml").write_text(
        rule_yaml(
            LOGIN_FAILURE, action="login", tags="    - attack.credential_access\n    - attack.t1110"
        ),
        encoding="utf-8",
    )
    (root / "port_denied.yml").write_text(
        rule_yaml(ADMIN_PORT_DENIED, level="high", tags="    - attack.initial_access"),
        encoding="utf-8",
    )
    return root


GLOBAL_FILTER = "5e1ad9c0-6a40-4a3f-8b8f-2f6f0e0c9a11"
GLOBAL_FILTER_YAML = f"""title: Ignore the jump host
id: {GLOBAL_FILTER}
logsource:
    category: firewall
    product: fortigate
filter:
    rules:
        - {LOGIN_FAILURE}
    selection:
        source.ip: 10.0.0.9
    condition: not selection
"""

BROKEN = {
    "bad_yaml.yml": "title: x\ndetection: [unclosed\n",
    "not_mapping.yml": "- just\n- a list\n",
    "empty.yml": "",
    "no_condition.yml": (
        "title: No condition\nid: 8d0b3a4e-4e5e-4a43-9d0c-6f0e3b6f7e10\n"
        "logsource:\n    product: windows\ndetection:\n    selection:\n        EventID: 1\n"
    ),
    "missing_selection.yml": (
        "title: Missing selection\nid: 0b6a5f0e-8f5c-4f8d-9a3b-6e1f1b0c2d31\n"
        "logsource:\n    product: windows\ndetection:\n    selection:\n        EventID: 1\n"
        "    condition: selection and other\n"
    ),
    "bad_utf8.yml": b"title: caf\xe9\n",
}


def write_broken(root: Path) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in BROKEN.items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        paths.append(path)
    return paths


def login_failure(user: str = "alice", ip: str = "203.0.113.9") -> dict[str, Any]:
    return {
        "@timestamp": "2026-11-23T10:00:00Z",
        "event": {
            "dataset": "fortinet.fortigate",
            "category": ["authentication"],
            "action": "login",
            "outcome": "failure",
        },
        "source": {"ip": ip},
        "user": {"name": user},
    }


def test_every_rule_file_is_accounted_for(tmp_path: Path) -> None:
    broken = write_broken(tmp_path / "broken")
    extra = tmp_path / "extra"
    extra.mkdir()
    # A second file reusing an id already loaded is an error, not a silent overwrite.
    (extra / "dup.yml").write_text(rule_yaml(LOGIN_FAILURE), encoding="utf-8")
    (extra / "filter.yml").write_text(GLOBAL_FILTER_YAML, encoding="utf-8")
    (extra / "no_id.yml").write_text(rule_yaml("x").replace("id: x\n", ""), encoding="utf-8")
    fixture = write_fixture_rules(tmp_path / "fixture")
    paths = [BUILTIN_RULES, fixture, *corpus_subset(), tmp_path / "broken", extra]
    paths.append(tmp_path / "missing")
    catalog = RuleCatalog.load(paths)

    files = set(catalog.files)
    accounted = {e.path for e in catalog.entries}
    assert files == accounted
    assert len(files) > 60
    assert all(e.status in RULE_STATUSES for e in catalog.entries)
    assert all(e.reason for e in catalog.entries if e.status != "compiled")
    counts = catalog.counts()
    assert sum(counts.values()) == len(catalog.entries)

    errors = {e.path for e in catalog.entries if e.status == "error"}
    assert set(broken) <= errors
    assert tmp_path / "missing" in errors and extra / "dup.yml" in errors
    dup = next(e for e in catalog.entries if e.path == extra / "dup.yml")
    assert "already used" in (dup.reason or "") and dup.key != LOGIN_FAILURE
    flt = catalog.get(GLOBAL_FILTER)
    assert flt is not None and flt.kind == "filter" and flt.status == "compiled"
    # The global filter was applied to the rule it names.
    assert LOGIN_FAILURE not in {r.id for r in catalog.matcher.match(login_failure(ip="10.0.0.9"))}
    assert LOGIN_FAILURE in {r.id for r in catalog.matcher.match(login_failure())}
    bad_yaml = next(e for e in catalog.entries if e.path.name == "bad_yaml.yml")
    assert bad_yaml.reason and bad_yaml.reason.startswith("invalid YAML") and bad_yaml.line
    no_id = next(e for e in catalog.entries if e.path == extra / "no_id.yml")
    assert no_id.status == "compiled" and no_id.key == str(extra / "no_id.yml")

    # Real SigmaHQ rules the matcher cannot evaluate are listed with the matcher's reason.
    unsupported = [e for e in catalog.entries if e.status == "unsupported"]
    assert any("placeholder" in (e.reason or "") for e in unsupported)
    assert any(e.path.is_relative_to(sigma() / "rules" / "network") for e in unsupported)

    # The matcher holds exactly the compiled detection rules.
    running = {r.id for r in catalog.matcher.rules}
    compiled = {e.key for e in catalog.entries if e.status == "compiled" and e.kind == "detection"}
    assert running == compiled and LOGIN_FAILURE in running


def test_default_policy_follows_sigma_status(tmp_path: Path) -> None:
    ids = {
        "deprecated": "11111111-1111-4111-8111-111111111111",
        "unsupported": "22222222-2222-4222-8222-222222222222",
        "experimental": "33333333-3333-4333-8333-333333333333",
        "stable": "44444444-4444-4444-8444-444444444444",
    }
    for status, rule_id in ids.items():
        (tmp_path / f"{status}.yml").write_text(rule_yaml(rule_id, status=status), "utf-8")
    catalog = RuleCatalog.load([tmp_path])
    status = {k: catalog.get(v).status for k, v in ids.items()}  # type: ignore[union-attr]
    assert status == {
        "deprecated": "filtered",
        "unsupported": "filtered",
        "experimental": "compiled",
        "stable": "compiled",
    }
    reason = catalog.get(ids["deprecated"]).reason  # type: ignore[union-attr]
    assert reason == "Sigma status 'deprecated' is excluded"
    assert {r.id for r in catalog.matcher.rules} == {ids["experimental"], ids["stable"]}


def test_policy_selects_by_level_logsource_and_tags(tmp_path: Path) -> None:
    low = "55555555-5555-4555-8555-555555555555"
    paloalto = "66666666-6666-4666-8666-666666666666"
    more = tmp_path / "more"
    more.mkdir()
    (more / "low.yml").write_text(rule_yaml(low, level="low"), "utf-8")
    (more / "pa.yml").write_text(
        rule_yaml(paloalto, level="high", product="paloalto", tags="    - attack.t1110"), "utf-8"
    )
    paths = [write_fixture_rules(tmp_path / "fixture"), more]

    by_level = RuleCatalog.load(paths, RulePolicy(min_level="medium"))
    assert by_level.get(low).status == "filtered"  # type: ignore[union-attr]
    assert "below the minimum medium" in (by_level.get(low).reason or "")  # type: ignore[union-attr]
    assert by_level.get(LOGIN_FAILURE).status == "compiled"  # type: ignore[union-attr]

    by_source = RuleCatalog.load(
        paths, RulePolicy(logsources=[LogsourceSelector(product="FortiGate")])
    )
    assert by_source.get(paloalto).status == "filtered"  # type: ignore[union-attr]
    assert by_source.get(low).status == "compiled"  # type: ignore[union-attr]
    excluded = RuleCatalog.load(
        paths, RulePolicy(exclude_logsources=[LogsourceSelector(product="paloalto")])
    )
    assert excluded.get(paloalto).reason == "logsource product=paloalto is excluded"  # type: ignore[union-attr]

    # Tags select by dotted prefix: attack.t1059 takes in attack.t1059.001.
    by_tag = RuleCatalog.load(paths, RulePolicy(tags=["attack.t1059"]))
    assert by_tag.get(low).status == "compiled"  # type: ignore[union-attr]
    assert by_tag.get(paloalto).status == "filtered"  # type: ignore[union-attr]
    assert by_tag.get(LOGIN_FAILURE).status == "filtered"  # type: ignore[union-attr]
    no_brute = RuleCatalog.load(paths, RulePolicy(exclude_tags=["attack.t1110"]))
    assert no_brute.get(LOGIN_FAILURE).status == "filtered"  # type: ignore[union-attr]
    assert no_brute.get(paloalto).status == "filtered"  # type: ignore[union-attr]

    # Explicit ids: enabled beats a selector, disabled beats everything.
    explicit = RuleCatalog.load(
        paths,
        RulePolicy(min_level="critical", enabled=[LOGIN_FAILURE], disabled=[ADMIN_PORT_DENIED]),
    )
    assert explicit.get(LOGIN_FAILURE).status == "compiled"  # type: ignore[union-attr]
    denied = explicit.get(ADMIN_PORT_DENIED)
    assert denied is not None and denied.status == "disabled" and not denied.enabled
    assert {r.id for r in explicit.matcher.rules} == {LOGIN_FAILURE}
    # Filtered and disabled rules stay listed.
    assert {e.path for e in explicit.entries} == set(explicit.files)


def test_policy_is_checked_when_configured() -> None:
    with pytest.raises(ValueError, match="unknown Sigma status"):
        RulePolicy(exclude_statuses=["retired"])
    with pytest.raises(ValueError, match="non-empty mapping"):
        RulePolicy(tuning={LOGIN_FAILURE: [{}]})
    policy = RulePolicy.model_validate(
        {"tuning": {LOGIN_FAILURE: {"user.name": "svc_backup"}}, "min_level": "low"}
    )
    assert policy.exceptions(LOGIN_FAILURE) == [{"user.name": ["svc_backup"]}]


def test_tuning_suppresses_false_positives(tmp_path: Path) -> None:
    policy = RulePolicy(
        tuning={
            LOGIN_FAILURE: [
                {"user.name": ["SVC_*"]},
                {"user.name": "alice", "source.ip": ["10.0.0.5", "10.0.0.6"]},
            ]
        }
    )
    catalog = RuleCatalog.load([write_fixture_rules(tmp_path)], policy)
    for event in (login_failure("svc_backup"), login_failure("alice", "10.0.0.6")):
        assert [r.id for r in catalog.matcher.match(event)] == [LOGIN_FAILURE]
        assert catalog.suppressed(LOGIN_FAILURE, event)
    # Every field of an exception must match; other rules are never suppressed.
    assert not catalog.suppressed(LOGIN_FAILURE, login_failure("alice", "203.0.113.9"))
    assert not catalog.suppressed(LOGIN_FAILURE, login_failure("bob"))
    assert not catalog.suppressed(ADMIN_PORT_DENIED, login_failure("svc_backup"))
    # Nested and flat dotted keys resolve alike (the matcher's EventView).
    assert policy.suppressed(LOGIN_FAILURE, {"user.name": "svc_x"})


def test_api_overrides_win_and_rebuild_the_matcher(tmp_path: Path) -> None:
    policy = RulePolicy(
        disabled=[ADMIN_PORT_DENIED], tuning={LOGIN_FAILURE: [{"user.name": ["alice"]}]}
    )
    catalog = RuleCatalog.load([write_fixture_rules(tmp_path)], policy)
    assert {r.id for r in catalog.matcher.rules} == {LOGIN_FAILURE}

    catalog.set_override(ADMIN_PORT_DENIED, RuleOverride(enabled=True))
    catalog.set_override(LOGIN_FAILURE, RuleOverride(enabled=False, exceptions=[]))
    assert {r.id for r in catalog.matcher.rules} == {ADMIN_PORT_DENIED}
    login = catalog.get(LOGIN_FAILURE)
    assert login is not None and login.status == "disabled"
    assert not catalog.suppressed(LOGIN_FAILURE, login_failure("alice"))

    catalog.set_override(LOGIN_FAILURE, None)  # back to the configuration
    assert login.status == "compiled" and catalog.suppressed(LOGIN_FAILURE, login_failure())
    catalog.apply_overrides({})
    assert catalog.get(ADMIN_PORT_DENIED).status == "disabled"  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        catalog.set_override("no-such-rule", RuleOverride(enabled=True))


def test_match_counts_are_thread_safe(tmp_path: Path) -> None:
    catalog = RuleCatalog.load([write_fixture_rules(tmp_path)])
    start = datetime(2026, 11, 23, tzinfo=UTC)

    def work(n: int) -> None:
        for i in range(500):
            catalog.record_match(LOGIN_FAILURE, start + timedelta(seconds=n * 1000 + i))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entry = catalog.get(LOGIN_FAILURE)
    assert entry is not None and entry.match_count == 4000
    assert entry.last_match == start + timedelta(seconds=7 * 1000 + 499)
    assert catalog.get(ADMIN_PORT_DENIED).match_count == 0  # type: ignore[union-attr]
    catalog.record_match("unknown-rule")  # ignored, not an error


CORRELATION = """title: Password guessing against the firewall
id: {id}
status: experimental
correlation:
    type: event_count
    rules:
        - {ref}
    group-by:
        - source.ip
    timespan: 10m
    condition:
        gte: 10
level: high
"""


def test_correlation_rules_are_listed(tmp_path: Path) -> None:
    good, bad = "77777777-7777-4777-8777-777777777777", "88888888-8888-4888-8888-888888888888"
    corr_dir = tmp_path / "corr"
    corr_dir.mkdir()
    (corr_dir / "corr.yml").write_text(CORRELATION.format(id=good, ref=LOGIN_FAILURE), "utf-8")
    (corr_dir / "corr_bad.yml").write_text(
        CORRELATION.format(id=bad, ref="99999999-9999-4999-8999-999999999999"), "utf-8"
    )
    catalog = RuleCatalog.load([write_fixture_rules(tmp_path / "fixture"), corr_dir])
    corr, broken = catalog.get(good), catalog.get(bad)
    assert corr is not None and broken is not None
    assert corr.kind == "correlation" and corr.level == "high"
    assert (corr.status, corr.reason) == ("unsupported", CORRELATION_PENDING)
    assert broken.status == "error" and "not loaded" in (broken.reason or "")
    assert set(catalog.correlations) == {good} and catalog.running_correlations() == [good]

    # The correlation engine reports which correlations it runs.
    from detections.correlation import CorrelationEngine

    assert catalog.ruleset is not None
    _engine, report = CorrelationEngine.from_ruleset(catalog.ruleset, catalog.compiled_rules())
    catalog.report_correlation_report(report)
    assert corr.status == "compiled" and corr.reason is None
    assert broken.status == "error"
    catalog.set_override(good, RuleOverride(enabled=False))
    assert corr.status == "disabled" and catalog.running_correlations() == []
    catalog.report_correlations([], [(good, "value_count not supported")])
    assert corr.status == "unsupported" and corr.reason == "value_count not supported"


def run_check(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="socmon")
    sub = parser.add_subparsers(dest="command", required=True)
    rules = add_rules_parser(sub)
    assert isinstance(rules, argparse._SubParsersAction) and "check" in rules.choices
    args = parser.parse_args(["rules", "check", *argv])
    code: int = args.func(args)
    return code


def test_rules_check_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixture = write_fixture_rules(tmp_path / "fixture")
    good = [fixture, sigma() / "rules-placeholder" / "windows"]
    assert run_check([str(p) for p in good]) == 0
    out = capsys.readouterr().out
    assert "0 error" in out and "unsupported" in out and "placeholder" in out
    assert "win_security_admin_logon.yml" in out  # each rule that will not run, with its path

    write_broken(tmp_path / "broken")
    assert run_check([str(fixture), str(tmp_path / "broken"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["error"] == len(BROKEN) and report["counts"]["compiled"] == 2
    assert report["files"] == len(BROKEN) + 2
    assert {r["path"] for r in report["rules"]} >= {str(tmp_path / "broken" / n) for n in BROKEN}
