"""ECS conformance of the Linux auth parser against Elastic's `system/auth` documents."""

from __future__ import annotations

from collectors.linux_auth import parse
from tests.collectors.conformance import load_cases, run_cases, vendor_path_or_skip

VENDOR = "system/auth"
MIN_FIELD_AGREEMENT = 95.0


def test_system_auth_conformance() -> None:
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert result.documents_compared == 23
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
