"""PAN-OS against Elastic's expected documents (`ecs-conformance/panw/panos`).

The one known mismatch: the THREAT sample's `@timestamp`, which Elastic's test produced in a
+09:30 zone its config does not state (the record has no offset).
"""

from __future__ import annotations

from collectors.panos import parse
from tests.collectors.conformance import load_cases, run_cases, vendor_path_or_skip

VENDOR = "panw/panos"
MIN_FIELD_AGREEMENT = 95.0


def test_conformance() -> None:
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert result.documents_compared == 18
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
    assert [(m.file, m.record, m.field) for m in result.mismatches] == [
        ("test-panw-panos-threat-url-no-xff-sample.log", 1, "@timestamp")
    ]
