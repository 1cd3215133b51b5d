"""Cisco IOS against Elastic's expected documents (`cisco_ios/log` of the conformance corpus):
every compared field agrees (100 %)."""

from __future__ import annotations

import pytest

from collectors.ios import parse
from socmon.corpus import corpus_dir
from tests.collectors.conformance import load_cases, run_cases, vendor_path_or_skip

VENDOR = "cisco_ios/log"
MIN_FIELD_AGREEMENT = 95.0


def test_conformance() -> None:
    if corpus_dir() is None:
        pytest.skip(
            "ECS conformance corpus not found: set SOCMON_CORPUS or place shared/corpus "
            "beside the repository"
        )
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert result.documents_compared == 33
    assert not result.crashes, result.crashes
    assert not result.parse_errors, result.parse_errors
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
    assert not result.mismatches, result.mismatches
