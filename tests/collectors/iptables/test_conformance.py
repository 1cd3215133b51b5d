"""iptables parser against Elastic's expected documents (`ecs-conformance/iptables/log`).

Skipped, with the reason, when the corpus is not available (`socmon.corpus.corpus_dir()`).
"""

from __future__ import annotations

from collectors.iptables import parse
from tests.collectors.conformance import load_cases, run_cases, vendor_path_or_skip

VENDOR = "iptables/log"
MIN_FIELD_AGREEMENT = 95.0


def test_conformance() -> None:
    result = run_cases(VENDOR, load_cases(vendor_path_or_skip(VENDOR)), parse)
    assert result.documents_compared > 0
    assert not result.crashes, result.crashes
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, result.mismatches
