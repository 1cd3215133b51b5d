"""SigmaHQ regression data as a conformance run: every sample must trigger its own rule.

SigmaHQ ships, for many rules, an EVTX file recorded while the attack ran
(``regression_data/<folder>/<rule>/info.yml`` names the rule id and the sample). ``socmon rules
regress PATH`` loads every rule under PATH, compiles them as the streaming engine does (field
mapping included), reads each sample with the real EVTX reader and Windows parser — the same
ECS documents a collector would spool — and checks that the prefiltered matcher returns the
rule for at least one of the sample's events. Rules the engine cannot run are listed with the
reason; nothing is skipped silently.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from collectors.parsing import SourceContext
from collectors.windows.importer import EvtxUnreadable, evtx_records
from collectors.windows.parse import parse as parse_windows
from detections.sigma.loader import load_rules
from detections.sigma.matcher import Matcher

RULE_FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting", "rules-placeholder")


@dataclass
class SampleResult:
    rule_id: str
    title: str
    sample: str
    status: str
    """passed, missed (no event matched), unsupported (rule not compiled), error (sample),
    untested (info.yml declares no regression test)"""
    reason: str = ""
    events: int = 0


@dataclass
class RegressReport:
    rules_with_samples: int = 0
    supported: int = 0
    samples: list[SampleResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for s in self.samples if s.status == status)

    @property
    def checked(self) -> int:
        return self.count("passed") + self.count("missed")

    @property
    def support_ratio(self) -> float:
        return self.supported / self.rules_with_samples if self.rules_with_samples else 0.0

    @property
    def pass_ratio(self) -> float:
        return self.count("passed") / self.checked if self.checked else 0.0

    def ok(self, min_support: float = 0.97) -> bool:
        """Every supported rule fires on its samples, and enough rules are supported."""
        return (
            self.count("missed") == 0
            and self.count("error") == 0
            and self.support_ratio >= min_support
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rules_with_samples": self.rules_with_samples,
            "supported": self.supported,
            "support_ratio": round(self.support_ratio, 4),
            "checked": self.checked,
            "passed": self.count("passed"),
            "missed": self.count("missed"),
            "unsupported": self.count("unsupported"),
            "errors": self.count("error"),
            "samples": [asdict(s) for s in self.samples],
        }


def sample_events(path: Path) -> Iterator[dict[str, Any]]:
    """The ECS documents of one regression sample (EVTX, or its JSON export)."""
    ctx = SourceContext()
    if path.suffix.lower() == ".evtx":
        for item in evtx_records(path, threads=1):
            if isinstance(item, tuple):
                yield parse_windows(item[1], ctx)
        return
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        obj, pos = decoder.raw_decode(text, pos)
        for record in obj if isinstance(obj, list) else [obj]:
            yield parse_windows(orjson.dumps(record).decode(), ctx)


def _samples(root: Path, info: Path, data: dict[str, Any]) -> list[Path]:
    out: list[Path] = []
    for test in data.get("regression_tests_info") or []:
        rel = test.get("path")
        if rel and (root / rel).is_file():
            out.append(root / rel)
        elif rel and (info.parent / Path(rel).name).is_file():
            out.append(info.parent / Path(rel).name)
    if not out:  # older layout: the sample sits next to info.yml
        out = sorted(info.parent.glob("*.evtx"))
    return out


def run_regression(root: Path) -> RegressReport:
    """Run SigmaHQ's regression data under ``root`` (a SigmaHQ checkout) against its rules."""
    folders = [root / f for f in RULE_FOLDERS if (root / f).is_dir()]
    ruleset = load_rules(folders)
    matcher, compile_report = Matcher.from_ruleset(ruleset)
    titles = {str(r.rule.id): r.rule.title for r in ruleset.rules}
    compiled = set(compile_report.compiled_ids)
    unsupported = {rid: reason for rid, _, reason in compile_report.unsupported}
    load_errors = {e.rule_id: e.reason for e in ruleset.errors if e.rule_id}

    report = RegressReport()
    for info in sorted((root / "regression_data").rglob("info.yml")):
        data = yaml.safe_load(info.read_text(encoding="utf-8")) or {}
        for meta in data.get("rule_metadata") or []:
            rule_id = str(meta.get("id"))
            title = titles.get(rule_id, meta.get("title", ""))
            report.rules_with_samples += 1
            samples = _samples(root, info, data)
            rel_info = str(info.relative_to(root))
            if rule_id not in compiled:
                reason = unsupported.get(rule_id) or load_errors.get(rule_id) or "rule not found"
                report.samples.append(SampleResult(rule_id, title, rel_info, "unsupported", reason))
                continue
            report.supported += 1
            if not data.get("regression_tests_info"):
                reason = "info.yml declares no regression test"
                report.samples.append(SampleResult(rule_id, title, rel_info, "untested", reason))
                continue
            if not samples:
                report.samples.append(
                    SampleResult(rule_id, title, rel_info, "error", "no sample file found")
                )
                continue
            for sample in samples:
                report.samples.append(_check(matcher, rule_id, title, root, sample))
    return report


def _check(matcher: Matcher, rule_id: str, title: str, root: Path, sample: Path) -> SampleResult:
    rel = str(sample.relative_to(root))
    events = 0
    try:
        for event in sample_events(sample):
            events += 1
            if any(r.id == rule_id for r in matcher.match(event)):
                return SampleResult(rule_id, title, rel, "passed", events=events)
    except (EvtxUnreadable, OSError, ValueError) as e:
        return SampleResult(rule_id, title, rel, "error", str(e), events)
    return SampleResult(rule_id, title, rel, "missed", "no event of the sample matched", events)


def cmd_regress(args: argparse.Namespace) -> int:
    root = Path(args.path)
    if not (root / "regression_data").is_dir():
        print(
            f"socmon: error: {root}: no regression_data folder (a SigmaHQ checkout?)",
            file=sys.stderr,
        )
        return 2
    report = run_regression(root)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for s in report.samples:
            if s.status != "passed":
                print(f"{s.status:<11} {s.rule_id}  {s.title}\n            {s.sample}: {s.reason}")
        print(
            f"rules with samples: {report.rules_with_samples}; supported: {report.supported} "
            f"({report.support_ratio:.1%}); samples checked: {report.checked}; "
            f"passed: {report.count('passed')} ({report.pass_ratio:.1%}); "
            f"missed: {report.count('missed')}; errors: {report.count('error')}"
        )
    return 0 if report.ok() else 1


def add_regress_parser(rules_sub: Any) -> None:
    """``socmon rules regress PATH [--json]`` under the ``rules`` command group."""
    regress = rules_sub.add_parser(
        "regress", help="run SigmaHQ regression samples: each must trigger its rule"
    )
    regress.add_argument("path", help="a SigmaHQ checkout (with rules/ and regression_data/)")
    regress.add_argument("--json", action="store_true", help="the full report as JSON")
    regress.set_defaults(func=cmd_regress)
