"""Conformance of the Snort parser with Elastic's expected documents (`snort/log`)."""

from __future__ import annotations

from collectors.snort import parse
from tests.collectors.conformance import run_vendor

MIN_FIELD_AGREEMENT = 95.0


def test_snort_field_agreement() -> None:
    result = run_vendor("snort/log", parse)
    assert result.documents_compared == 13
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
