"""Conformance of the Suricata EVE parser with Elastic's expected documents (`suricata/eve`).

The corpus has 13 expected documents for 12 records; the harness compares the first 12.
"""

from __future__ import annotations

from collectors.suricata import parse
from tests.collectors.conformance import run_vendor

MIN_FIELD_AGREEMENT = 95.0


def test_suricata_field_agreement() -> None:
    result = run_vendor("suricata/eve", parse)
    assert result.documents_compared == 12
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
