"""`socmon compliance report`: the demo province renders in both languages; the database's
report after `--evaluate`."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

import pytest

from socmon.cli import main
from socmon.corpus import default_compliance_catalogue

pytestmark = pytest.mark.skipif(
    default_compliance_catalogue() is None, reason="shared/data/compliance/controls.yaml absent"
)


def test_demo_report_renders_in_vietnamese_and_english(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    assert main(["compliance", "report", "--demo", "--format", "json", "-o", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    systems = report["systems"]
    assert len(systems) == 15 and report["province"]["systems"] == 15
    for s in systems:
        assert [layer["layer"] for layer in s["layers"]] == [1, 2, 3, 4]
        assert s["controls"] and s["summary"]["applicable"] > 0
    statuses = {c["status"] for s in systems for c in s["controls"]}
    assert {"pass", "fail", "unknown"} <= statuses  # the demo is partly in order
    late = [s["code"] for s in systems if s["layers"][2]["status"] == "fail"]
    assert len(late) == 1  # the one out-of-date assessment of the demo evidence
    for lang, words in (("vi", ("Cấp độ", "Mô hình 4 lớp", "Đạt")), ("en", ("Level", "Pass"))):
        page = tmp_path / f"demo-{lang}.html"
        args = ["compliance", "report", "--demo", "--format", "html", "--lang", lang]
        assert main([*args, "-o", str(page)]) == 0
        html = page.read_text(encoding="utf-8")
        for word in words:
            assert word in html, (lang, word)
        assert all(escape(s["name"]) in html for s in systems)


def test_report_of_an_empty_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCMON_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "r.json"
    args = ["compliance", "report", "--evaluate", "--format", "json", "-o", str(out)]
    assert main(args) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["systems"] == []
