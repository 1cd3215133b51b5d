"""ECS conformance of the auditd parser against Elastic's `auditd/log` documents."""

from __future__ import annotations

from collectors.auditd import parse
from tests.collectors.conformance import load_cases, run_cases, vendor_path_or_skip

VENDOR = "auditd/log"
MIN_FIELD_AGREEMENT = 95.0


def test_auditd_conformance() -> None:
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert result.documents_compared == 9  # test-auditd-useradd.log: lines 1-8 only
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
