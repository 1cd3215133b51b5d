"""Check Point against Elastic's expected documents (`ecs-conformance/checkpoint/firewall`)."""

from __future__ import annotations

from collectors.checkpoint import parse
from tests.collectors.conformance import load_cases, run_cases, vendor_path_or_skip

VENDOR = "checkpoint/firewall"
MIN_FIELD_AGREEMENT = 95.0


def test_conformance() -> None:
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert result.documents_compared == 14
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
    assert not result.mismatches, result.mismatches
