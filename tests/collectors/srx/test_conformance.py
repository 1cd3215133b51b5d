"""Juniper SRX parser against Elastic's expected documents (`ecs-conformance/juniper_srx/log`).

Skipped, with the reason, when the corpus is not available (`socmon.corpus.corpus_dir()`).
"""

from __future__ import annotations

from collectors.srx import parse
from tests.collectors.conformance import load_cases, run_cases, vendor_path_or_skip

VENDOR = "juniper_srx/log"
MIN_FIELD_AGREEMENT = 95.0


def test_conformance() -> None:
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert result.documents_compared > 0
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches


def test_pipeline_failures_are_scored_apart() -> None:
    """8 of the 18 expected documents of `test-sample.log` record an Elastic pipeline failure:
    they are not compared, and the parser must only not crash on them."""
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert len(result.pipeline_failure_records) == 8
    assert not result.crashes
