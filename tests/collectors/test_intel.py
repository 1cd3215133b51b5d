"""Threat-intel indicators: loading CSV / YAML files, matching events, the ECS enrichment shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collectors.intel import (
    IndicatorSet,
    IntelError,
    IntelMatch,
    ThreatIntel,
    add_matches,
)
from collectors.parsing import SourceContext
from collectors.registry import PARSERS
from tests.collectors.conformance import flatten

CSV = """\
type,value,description,source,confidence
ip,185.220.101.4,Tor exit used for SSH brute force,VNCERT,85
cidr,45.155.205.0/24,Scanning network,NCSC,Medium
cidr,45.155.0.0/16,Hosting provider with abuse history,NCSC,20
ip,2001:db8:bad::0001,IPv6 C2,NCSC,
domain,evil-update.example.,Malware update server,VNCERT,High
url,http://evil-update.example/payload.exe,Payload URL,VNCERT,
sha256,9F86D081884C7D659A2FEAE0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08,Dropper,MISP,70
hash,d41d8cd98f00b204e9800998ecf8427e,Empty file (test),MISP,0
# type,value rows starting with # are comments
"""

YAML = """\
indicators:
  - {type: ipv4-addr, value: 185.220.101.4, source: OTX, confidence: low}
  - {domain-name: cdn.bad.example, description: Phishing kit}
  - {sha1: 2FD4E1C67A2D28FCED849EE1BB76E7391B93EB12}
  - {ip: 10.0.0.0/8, description: written as ip}
"""


@pytest.fixture
def indicators(tmp_path: Path) -> IndicatorSet:
    path = tmp_path / "indicators.csv"
    path.write_text(CSV, encoding="utf-8")
    return IndicatorSet.load(path)


def matched(intel: ThreatIntel, doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(m.field, m.atomic, m.indicator.value) for m in intel.match(doc)]


def test_csv_file_is_loaded_and_normalised(indicators: IndicatorSet) -> None:
    assert len(indicators) == 8 and not indicators.errors
    by_value = {i.value: i for i in indicators.indicators}
    assert by_value["185.220.101.4"].confidence == "High"
    assert by_value["185.220.101.4"].provider == "VNCERT"
    assert by_value["45.155.0.0/16"].confidence == "Low"
    assert by_value["2001:db8:bad::1"].kind == "ip"
    assert by_value["evil-update.example"].kind == "domain"
    sha = "9f86d081884c7d659a2feae0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert by_value[sha].kind == "sha256" and by_value[sha].confidence == "High"
    empty = by_value["d41d8cd98f00b204e9800998ecf8427e"]
    assert empty.kind == "md5" and empty.confidence == "None"


def test_ip_and_nested_cidrs(indicators: IndicatorSet) -> None:
    assert matched(indicators, {"source": {"ip": "185.220.101.4"}}) == [
        ("source.ip", "185.220.101.4", "185.220.101.4")
    ]
    # Both the /24 and the /16 contain it: both are reported, the most specific first.
    assert matched(indicators, {"destination": {"ip": "45.155.205.233"}}) == [
        ("destination.ip", "45.155.205.233", "45.155.205.0/24"),
        ("destination.ip", "45.155.205.233", "45.155.0.0/16"),
    ]
    assert matched(indicators, {"destination": {"ip": "45.155.7.1"}}) == [
        ("destination.ip", "45.155.7.1", "45.155.0.0/16")
    ]
    assert matched(indicators, {"source": {"ip": "2001:db8:bad:0::1"}}) == [
        ("source.ip", "2001:db8:bad:0::1", "2001:db8:bad::1")
    ]
    for clean in ("45.154.255.255", "45.156.0.0", "185.220.101.5", "not-an-ip", "::1"):
        assert matched(indicators, {"source": {"ip": clean}}) == [], clean
    assert matched(indicators, {}) == []


def test_domain_url_and_hashes(indicators: IndicatorSet) -> None:
    dns = {"dns": {"question": {"name": "dl.Evil-Update.example"}}}
    assert matched(indicators, dns) == [
        ("dns.question.name", "dl.Evil-Update.example", "evil-update.example")
    ]
    assert matched(indicators, {"dns": {"question": {"name": "notevil-update.example"}}}) == []
    web = {
        "url": {
            "domain": "evil-update.example",
            "original": "http://evil-update.example/payload.exe",
        }
    }
    assert sorted(matched(indicators, web)) == [
        ("url.domain", "evil-update.example", "evil-update.example"),
        ("url.original", "http://evil-update.example/payload.exe", web["url"]["original"]),
    ]
    sha = "9f86d081884c7d659a2feae0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    files = {
        "file": {"hash": {"sha256": sha.upper()}},
        "process": {"hash": {"md5": "d41d8cd98f00b204e9800998ecf8427e"}},
    }
    assert sorted(m[0] for m in matched(indicators, files)) == [
        "file.hash.sha256",
        "process.hash.md5",
    ]


def test_yaml_file_with_type_named_keys(tmp_path: Path) -> None:
    path = tmp_path / "indicators.yaml"
    path.write_text(YAML, encoding="utf-8")
    intel = IndicatorSet.load(path)
    kinds = sorted((i.kind, i.value) for i in intel.indicators)
    assert kinds == [
        ("cidr", "10.0.0.0/8"),
        ("domain", "cdn.bad.example"),
        ("ip", "185.220.101.4"),
        ("sha1", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
    ]
    assert matched(intel, {"source": {"ip": "10.1.2.3"}}) == [
        ("source.ip", "10.1.2.3", "10.0.0.0/8")
    ]
    plain_list = tmp_path / "list.yml"
    plain_list.write_text("- {type: url, value: 'https://x.example/a'}\n", encoding="utf-8")
    assert [i.kind for i in IndicatorSet.load(plain_list).indicators] == ["url"]


def test_bad_rows_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "type,value,confidence\n"
        "ip,203.0.113.1,\n"
        "ip,203.0.113.999,\n"
        "sha256,abc,\n"
        "mutex,Global\\x,\n"
        "domain,ok.example,very\n",
        encoding="utf-8",
    )
    with pytest.raises(IntelError, match=r"bad\.csv:3: indicator: invalid ip '203\.0\.113\.999'"):
        IndicatorSet.load(path)
    intel = IndicatorSet.load(path, collect_errors=True)
    assert [i.value for i in intel.indicators] == ["203.0.113.1"]
    assert [(e.source.line if e.source else None) for e in intel.errors] == [3, 4, 5, 6]
    assert "unknown indicator type 'mutex'" in intel.errors[2].msg
    assert "confidence 'very'" in intel.errors[3].msg
    yaml_path = tmp_path / "bad.yaml"
    yaml_path.write_text("indicators: {ip: 1.2.3.4}\n", encoding="utf-8")
    with pytest.raises(IntelError, match="expected a list"):
        IndicatorSet.load(yaml_path)
    with pytest.raises(IntelError, match="cannot read"):
        IndicatorSet.load(tmp_path / "missing.csv")


def test_enrichment_document_is_ecs(indicators: IndicatorSet) -> None:
    line = "Feb 20 08:35:22 slave22 sshd[5774]: Failed password for root from 45.155.205.9 port 29160 ssh2"
    doc = PARSERS["linux_auth"](line, SourceContext())
    doc["tags"] = "preexisting"
    add_matches(doc, indicators.match(doc))
    assert doc["tags"] == ["preexisting", "threat-intel"]
    first = doc["threat"]["enrichments"][0]
    assert first == {
        "indicator": {
            "type": "ipv4-addr",
            "name": "45.155.205.0/24",  # the indicator as listed
            "ip": "45.155.205.9",  # an ES ip field holds no CIDR: the matched address
            "provider": "NCSC",
            "confidence": "Medium",
            "description": "Scanning network",
        },
        "matched": {"atomic": "45.155.205.9", "field": "source.ip", "type": "indicator_match_rule"},
    }
    ecs = {
        line.split()[0]
        for line in (Path(__file__).parents[2] / "schemas" / "ecs_fields.txt")
        .read_text(encoding="utf-8")
        .splitlines()
        if line and not line.startswith("#")
    }
    fields = {
        f"threat.enrichments.{name}"
        for entry in doc["threat"]["enrichments"]
        for name in flatten(entry)
    }
    assert fields and fields <= ecs, fields - ecs
    hashes = IntelMatch(next(i for i in indicators.indicators if i.kind == "sha256"), "f", "x")
    assert set(flatten(hashes.ecs()["indicator"])) == {
        "type",
        "name",
        "file.hash.sha256",
        "provider",
        "confidence",
        "description",
    }
    assert hashes.ecs()["indicator"]["type"] == "file"
