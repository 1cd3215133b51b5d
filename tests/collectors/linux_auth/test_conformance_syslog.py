"""ECS conformance of the generic syslog parser against Elastic's `system/syslog` documents.

The parser keeps `event.dataset: syslog` (the tool's generic syslog source, which also carries
network devices); Elastic's `system.syslog` is not among the expected documents' fields.
"""

from __future__ import annotations

from collectors.syslog.parse import parse
from tests.collectors.conformance import load_cases, run_cases, vendor_path_or_skip

VENDOR = "system/syslog"
MIN_FIELD_AGREEMENT = 95.0


def test_system_syslog_conformance() -> None:
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert result.documents_compared == 5
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
