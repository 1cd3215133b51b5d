"""ECS conformance of the vendor parsers against Elastic's expected documents.

A vendor is added with one line in `VENDOR_PARSERS`. Every run rewrites `docs/conformance.md`
(only when its content changes); a mismatch is explained by an entry in `KNOWN_DIFFERENCES`
(keyed by vendor directory, file, record, field) or listed as unexplained.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, timedelta, timezone
from pathlib import Path

import pytest

from collectors import (
    asa,
    auditd,
    checkpoint,
    fortigate,
    ios,
    iptables,
    linux_auth,
    panos,
    pfsense,
    snort,
    sophos_xg,
    srx,
    suricata,
)
from collectors.syslog import parse as syslog_parse
from socmon.corpus import REPO_ROOT, corpus_dir
from tests.collectors.conformance import (
    CORPUS_SUBDIR,
    Parser,
    VendorResult,
    compare_document,
    is_yearless,
    load_cases,
    load_yaml_config,
    read_config,
    render_markdown,
    run_cases,
    tz_from_config,
    values_equal,
    vendor_path,
)

# Vendor directory (under ecs-conformance/) -> parser under test.
VENDOR_PARSERS: Mapping[str, Parser] = {
    "fortinet_fortigate/log": fortigate.parse,
    "cisco_asa/log": asa.parse,
    "cisco_ios/log": ios.parse,
    "panw/panos": panos.parse,
    "checkpoint/firewall": checkpoint.parse,
    "system/auth": linux_auth.parse,
    "system/syslog": syslog_parse.parse,
    "auditd/log": auditd.parse,
    "snort/log": snort.parse,
    "suricata/eve": suricata.parse,
    "sophos/xg": sophos_xg.parse,
    "iptables/log": iptables.parse,
    "pfsense/log": pfsense.parse,
    "juniper_srx/log": srx.parse,
}

MIN_FIELD_AGREEMENT = 95.0
REPORT_PATH = REPO_ROOT / "docs" / "conformance.md"

# (vendor directory, file, record number, field) -> why the tool's value differs on purpose.
KNOWN_DIFFERENCES: Mapping[tuple[str, str, int, str], str] = {
    **{
        ("cisco_asa/log", "test-106023-iface-with-prefix.log", n, "event.outcome"): (
            "106023 is a deny: event.outcome 'failure' as in Elastic's current pipeline; "
            "this older expected file has 'success'"
        )
        for n in range(1, 10)
    },
    ("panw/panos", "test-panw-panos-threat-url-no-xff-sample.log", 1, "@timestamp"): (
        "Elastic's test ran in an unstated +09:30 zone; the record has no offset and the "
        "config sets none, so the parser reads it in UTC"
    ),
}


@pytest.fixture(scope="module")
def results() -> dict[str, VendorResult]:
    if corpus_dir() is None:
        pytest.skip(
            "ECS conformance corpus not found: set SOCMON_CORPUS or place shared/corpus "
            "beside the repository"
        )
    scored = {}
    for vendor, parser in VENDOR_PARSERS.items():
        path = vendor_path(vendor)
        if path is not None:
            scored[vendor] = run_cases(vendor, load_cases(path), parser)
    return scored


def _summary(result: VendorResult) -> str:
    lines = [
        f"{result.vendor}: field agreement {result.field_agreement:.2f} % "
        f"({result.values_matched}/{result.values_compared})"
    ]
    lines += [
        f"  {m.file} #{m.record} {m.field}: expected {m.expected!r}, got {m.actual!r}"
        for m in result.mismatches
    ]
    lines += [f"  crash {f.file} #{f.record}: {f.error}" for f in result.crashes]
    return "\n".join(lines)


@pytest.mark.parametrize("vendor", sorted(VENDOR_PARSERS))
def test_field_agreement(vendor: str, results: dict[str, VendorResult]) -> None:
    if vendor not in results:
        pytest.skip(f"corpus has no directory {CORPUS_SUBDIR}/{vendor}")
    result = results[vendor]
    assert result.documents_compared > 0, f"{vendor}: no document compared"
    assert not result.crashes, _summary(result)
    assert result.field_agreement >= MIN_FIELD_AGREEMENT, _summary(result)


def test_report_is_current(results: dict[str, VendorResult]) -> None:
    """Writes docs/conformance.md; every known difference must still occur (no stale reasons)."""
    text = render_markdown(results.values(), KNOWN_DIFFERENCES)
    if not REPORT_PATH.is_file() or REPORT_PATH.read_text(encoding="utf-8") != text:
        REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
        REPORT_PATH.write_text(text, encoding="utf-8")
    occurring = {
        (vendor, m.file, m.record, m.field)
        for vendor, result in results.items()
        for m in result.mismatches
    }
    stale = [key for key in KNOWN_DIFFERENCES if key[0] in results and key not in occurring]
    assert not stale, f"known differences that no longer occur: {stale}"


# --------------------------------------------------------------------------- the harness itself


def _corpus_root() -> Path:
    base = corpus_dir()
    if base is None or not (base / CORPUS_SUBDIR).is_dir():
        pytest.skip("ECS conformance corpus not found")
    return base / CORPUS_SUBDIR


def test_every_corpus_directory_loads() -> None:
    """The README's size table: 34 input files, 423 records, 327 expected documents."""
    root = _corpus_root()
    cases = [
        case
        for directory in sorted(p for p in root.glob("*/*") if p.is_dir())
        for case in load_cases(directory)
    ]
    assert len(cases) == 34
    assert sum(len(case.records) for case in cases) == 423
    assert sum(len(case.expected or ()) for case in cases) == 327
    assert all(not case.config.notes for case in cases), [c.config.notes for c in cases]


def test_configs_are_read_as_documented() -> None:
    root = _corpus_root()
    pfsense = read_config(root / "pfsense/log/test-common-config.yml")
    assert pfsense.tz == timezone(timedelta(hours=-4))  # unquoted -04:00, base 60 in YAML 1.1
    snort = read_config(root / "snort/log/test-common-config.yml")
    assert snort.internal_networks == ("private",)
    assert str(snort.tz) == "America/Chicago"
    assert "@timestamp" in snort.dynamic_fields
    auth = read_config(root / "system/auth/test-auth.log-config.yml")  # `@timestamp:` unquoted
    assert auth.tz == UTC and "@timestamp" in auth.dynamic_fields
    systemd = read_config(root / "system/syslog/test-systemd.log-config.yml")
    assert systemd.tz == timezone(timedelta(hours=-2))  # "GMT-0200", read as Java does
    sophos = read_config(root / "sophos/xg/test-common-config.yml")
    assert sophos.extra["mappings"] == [
        {"serial_number": "1234567890123456", "hostname": "testhost.local"}
    ]
    fortigate_config = read_config(root / "fortinet_fortigate/log/test-common-config.yml")
    assert fortigate_config.internal_networks == ("private",) and fortigate_config.tz is None


def test_yaml_config_with_reserved_indicator(tmp_path: Path) -> None:
    path = tmp_path / "test-x.log-config.yml"
    path.write_text('dynamic_fields:\n  @timestamp: "^.*$"\n', encoding="utf-8")
    assert load_yaml_config(path) == {"dynamic_fields": {"@timestamp": "^.*$"}}


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("UTC", 0), ("+0500", 300), ("-05:00", -300), ("GMT-0200", -120), (-240, -240)],
)
def test_tz_from_config(value: object, minutes: int) -> None:
    assert tz_from_config(value) == timezone(timedelta(minutes=minutes))


def test_values_equal_rules() -> None:
    assert values_equal("@timestamp", "2020-04-23T12:17:48.000-05:00", "2020-04-23T17:17:48.0004Z")
    assert not values_equal("@timestamp", "2020-04-23T12:17:48.000-05:00", "2020-04-23T12:17:48Z")
    assert values_equal(
        "@timestamp", "2024-07-03T19:10:30.000-04:00", "2025-07-03T19:10:30-04:00", yearless=True
    )
    assert values_equal("source.ip", "fe80:0000::1", "fe80::1")
    assert values_equal("source.port", 443, "443")
    assert values_equal("event.type", ["end", "connection"], ["connection", "end"])
    assert not values_equal("event.type", ["connection"], ["connection", "end"])
    assert not values_equal("rule.id", "12", None)


def test_compare_document_skips_dynamic_and_absent_fields() -> None:
    expected = {"@timestamp": "2022-01-12T22:56:01.000Z", "event": {"kind": "event"}, "x": 1}
    rows = compare_document(
        expected, {"event": {"kind": "alert"}}, record="r", dynamic_fields=["@timestamp"]
    )
    assert rows == [("event.kind", "event", "alert", False)]


def test_yearless_records() -> None:
    assert is_yearless("<134>Jul  3 19:10:30 filterlog[1]: x", "2024-07-03T19:10:30.000-04:00")
    assert not is_yearless("date=2020-04-23 time=12:17:48", "2020-04-23T12:17:48.000-05:00")
    assert not is_yearless("msg=audit(1610903553.686:584)", "2021-01-17T17:12:33.686Z")
