"""Conformance of the Sophos XG parser with Elastic's expected documents (`sophos/xg`).

The serial-number-to-hostname mapping of the test config (`_conf.mappings`, `_conf.default`)
reaches the parser as `ctx.extra`.
"""

from __future__ import annotations

from collectors.sophos_xg import parse
from tests.collectors.conformance import run_vendor

MIN_FIELD_AGREEMENT = 95.0


def test_sophos_xg_field_agreement() -> None:
    result = run_vendor("sophos/xg", parse)
    assert result.documents_compared == 16
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
