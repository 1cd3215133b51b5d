"""`socmon rules regress`: SigmaHQ's regression samples through the real EVTX reader, Windows
parser, field mapping and prefiltered matcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from detections.regress import add_regress_parser, run_regression, sample_events
from detections.sigma.loader import load_rules
from detections.sigma.matcher import Matcher
from socmon.corpus import corpus_dir


def _sigma() -> Path:
    base = corpus_dir()
    if base is None or not (base / "sigma" / "regression_data").is_dir():
        pytest.skip("corpus not found (set SOCMON_CORPUS): SigmaHQ regression data needed")
    return base / "sigma"


def test_every_supported_rule_fires_on_its_own_sample() -> None:
    report = run_regression(_sigma())
    print(
        f"\nSigmaHQ regression: {json.dumps({k: v for k, v in report.as_dict().items() if k != 'samples'})}"
    )
    assert report.rules_with_samples >= 150
    assert report.checked >= 150
    missed = [f"{s.rule_id} {s.sample}: {s.reason}" for s in report.samples if s.status == "missed"]
    assert missed == []
    assert report.count("error") == 0
    assert report.support_ratio >= 0.97
    # Anything not checked says why.
    for s in report.samples:
        if s.status not in ("passed", "missed"):
            assert s.reason, s


def test_prefilters_agree_with_evaluating_every_rule_on_the_samples() -> None:
    sigma = _sigma()
    samples = sorted((sigma / "regression_data" / "rules" / "windows").rglob("*.evtx"))[:60]
    folders = [sigma / "rules" / "windows"]
    matcher, _ = Matcher.from_ruleset(load_rules(folders))
    seen = 0
    for sample in samples:
        for event in sample_events(sample):
            seen += 1
            assert matcher.match(event) == [r for r in matcher.rules if r.matches(event)]
    assert seen >= 60


def test_regress_command_reports_a_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_regress_parser(parser.add_subparsers())
    args = parser.parse_args(["regress", str(tmp_path)])
    assert args.func(args) == 2
    assert "no regression_data folder" in capsys.readouterr().err
