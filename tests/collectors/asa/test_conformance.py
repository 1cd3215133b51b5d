"""Cisco ASA against Elastic's expected documents (`cisco_asa/log` of the conformance corpus).

Field agreement is 95.48 %: the only mismatches are `event.outcome` of the nine 106023 records
of `test-106023-iface-with-prefix.log` ("success" in those older expected documents, "failure"
in Elastic's current pipeline and in this parser). `test-sample.log` has no expected file and
must parse without an exception.
"""

from __future__ import annotations

import pytest

from collectors.asa import parse
from socmon.corpus import corpus_dir
from tests.collectors.conformance import load_cases, run_cases, vendor_path_or_skip

VENDOR = "cisco_asa/log"
MIN_FIELD_AGREEMENT = 95.0


def test_conformance() -> None:
    if corpus_dir() is None:
        pytest.skip(
            "ECS conformance corpus not found: set SOCMON_CORPUS or place shared/corpus "
            "beside the repository"
        )
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert result.documents_compared > 0
    assert not result.crashes, result.crashes
    assert result.robustness_records == 87
    assert not result.parse_errors, result.parse_errors
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
    assert {(m.field, m.expected) for m in result.mismatches} <= {("event.outcome", "success")}
