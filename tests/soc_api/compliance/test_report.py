"""The manager's compliance report: JSON, HTML (vi / en) and PDF from one ComplianceReport."""

from __future__ import annotations

import io
import json
import re
import string
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from inventory.vocab import CONTROL_STATUSES, DOSSIER_STATUSES, REGIMES
from soc_api.compliance import i18n
from soc_api.compliance.model import (
    CatalogueInfo,
    ComplianceReport,
    ControlResult,
    LayerResult,
    LevelSummary,
    OverdueItem,
    ProvinceSummary,
    Summary,
    SystemCompliance,
    TrendPoint,
)
from soc_api.compliance.report import ReportError, evidence_summary, html_to_pdf, render
from soc_api.compliance.report_cli import run_report

NOW = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
HOSTILE = '<script>alert("x")</script> & Cổng'

LAYERS = (
    (1, "LAYER1.ONSITE_FORCE", "Lớp 1 - Lực lượng tại chỗ", "Layer 1 - on-site force"),
    (
        2,
        "LAYER2.PROFESSIONAL_MONITORING",
        "Lớp 2 - Giám sát, bảo vệ chuyên nghiệp",
        "Layer 2 - professional monitoring and protection",
    ),
    (
        3,
        "LAYER3.INDEPENDENT_ASSESSMENT",
        "Lớp 3 - Kiểm tra, đánh giá định kỳ",
        "Layer 3 - periodic independent assessment",
    ),
    (
        4,
        "LAYER4.NATIONAL_MONITORING_LINK",
        "Lớp 4 - Kết nối hệ thống giám sát quốc gia",
        "Layer 4 - connection to the national monitoring system",
    ),
)

# id, family, title_vi, title_en, evidence kind, regime, confidence
CATALOGUE = (
    (
        "ND85.LEVEL.APPROVED",
        "level_dossier",
        "Hệ thống đã được phê duyệt cấp độ",
        "System has an approved security level",
        "live",
        "both",
        "solid",
    ),
    (
        "TT31.MON.SOURCES_24H",
        "monitoring",
        "Nguồn nhật ký gửi dữ liệu trong 24 giờ",
        "Every log source seen in the last 24 h",
        "live",
        "both",
        "solid",
    ),
    (
        "TCVN11930.NET.LOG_RETENTION",
        "technical/logging",
        "Lưu trữ nhật ký tập trung đủ thời hạn theo cấp độ",
        "Central log retention meets the level's minimum",
        "live",
        "nd85",
        "secondary",
    ),
    (
        "ND85.ASSESSMENT.YEARLY",
        "assessment",
        "Kiểm tra, đánh giá an toàn thông tin định kỳ hằng năm",
        "Independent assessment within 365 days",
        "attested",
        "nd85",
        "solid",
    ),
    (
        "TCVN11930.MGMT.OPS.INCIDENT",
        "management/operations",
        "Quản lý sự cố an toàn thông tin",
        "Incident management procedure",
        "live",
        "nd85",
        "unverified",
    ),
    (
        "ND331.DRILL.YEARLY",
        "incident",
        "Diễn tập ứng cứu sự cố trong 12 tháng",
        "Response drill within the last 12 months",
        "attested",
        "nd331",
        "secondary",
    ),
)

REASONS = {
    "pass": ("Đáp ứng yêu cầu", "Requirement met"),
    "fail": ("Không đáp ứng: thiếu bằng chứng", "Not met: evidence missing"),
    "unknown": ("Chưa có dữ liệu để đánh giá", "No data to evaluate yet"),
    "not_applicable": ("Không áp dụng cho cấp độ này", "Does not apply at this level"),
}


def _control(i: int, status: str, *, overdue: bool = False, reason_en: str = "") -> ControlResult:
    cid, family, title_vi, title_en, kind, regime, confidence = CATALOGUE[i]
    vi, en = REASONS[status]
    evidence: dict[str, Any] = (
        {"sources_expected": 12, "sources_silent": ["fw-dc-01", "web-01", "web-02", "db-01"]}
        if kind == "live"
        else {"document": "BC-17/2025/ĐG", "attester": "Nguyễn Văn An", "expires": "2026-10-01"}
    )
    return ControlResult(
        id=cid,
        family=family,
        title_vi=title_vi,
        title_en=title_en,
        evidence_kind=kind,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        regime=regime,
        confidence=confidence,
        enforced=confidence != "unverified",
        reason=reason_en or en,
        reason_vi=vi,
        evidence=evidence,
        due=date(2026, 10, 1) if overdue else None,
        overdue=overdue,
        source="S1",
    )


def _system(
    code: str,
    name: str,
    level: int,
    dossier: str,
    regime: str,
    statuses: list[str],
    layer_statuses: list[str],
    *,
    decision: tuple[str, date] | None = None,
    overdue: tuple[int, ...] = (),
    trend: list[float] = (),  # type: ignore[assignment]
    reason_en: str = "",
) -> SystemCompliance:
    controls = [
        _control(i, st, overdue=i in overdue, reason_en=reason_en) for i, st in enumerate(statuses)
    ]
    applicable = [c for c in controls if c.status != "not_applicable"]
    passing = sum(c.status == "pass" for c in applicable)
    layers = [
        LayerResult(
            id=lid,
            layer=n,  # type: ignore[arg-type]
            title_vi=tvi,
            title_en=ten,
            required=n in (1, 4) or level >= 3,
            status=st,  # type: ignore[arg-type]
            reason=REASONS[st][1],
            reason_vi=REASONS[st][0],
            evidence={"checked": n},
        )
        for (n, lid, tvi, ten), st in zip(LAYERS, layer_statuses, strict=True)
    ]
    return SystemCompliance(
        code=code,
        name=name,
        unit="STTTT",
        unit_name="Sở Khoa học và Công nghệ",
        level=level,
        regime=regime,
        dossier_status=dossier,
        decision_number=decision[0] if decision else None,
        decision_date=decision[1] if decision else None,
        state_secret=level >= 4,
        layers=layers,
        controls=controls,
        summary=Summary(
            applicable=len(applicable),
            passing=passing,
            failing=sum(c.status == "fail" for c in applicable),
            unknown=sum(c.status == "unknown" for c in applicable),
            passing_pct=passing / len(applicable) * 100 if applicable else 0.0,
        ),
        overdue=[
            OverdueItem(
                control=controls[i].id,
                title_vi=controls[i].title_vi,
                title_en=controls[i].title_en,
                since=date(2026, 10, 1),
            )
            for i in overdue
        ],
        trend=[
            TrendPoint(at=NOW - timedelta(days=7 * (len(trend) - k)), passing_pct=v)
            for k, v in enumerate(trend)
        ],
        evaluated_at=NOW,
    )


def build_report(first_name: str = "Cổng dịch vụ công tỉnh") -> ComplianceReport:
    systems = [
        _system(
            "HT-CDVC",
            first_name,
            3,
            "approved",
            "nd85",
            ["pass", "pass", "pass", "fail", "unknown", "fail"],
            ["pass", "pass", "fail", "unknown"],
            decision=("1234/QĐ-UBND", date(2025, 3, 15)),
            overdue=(3,),
            trend=[40.0, 50.0, 60.0, 50.0],
        ),
        _system(
            "HT-LGSP",
            "Nền tảng tích hợp, chia sẻ dữ liệu (LGSP)",
            3,
            "appraised",
            "nd331",
            ["pass", "pass", "pass", "fail", "pass", "pass"],
            ["pass", "fail", "pass", "pass"],
            trend=[70.0, 83.3],
        ),
        _system(
            "HT-THU",
            "Hệ thống thư điện tử công vụ",
            4,
            "submitted",
            "nd331",
            ["fail", "unknown", "pass", "fail", "fail", "unknown"],
            ["unknown", "fail", "fail", "fail"],
            overdue=(0, 3),
        ),
        _system(
            "HT-QLVB",
            "Phần mềm quản lý văn bản và điều hành",
            2,
            "draft",
            "nd85",
            ["pass", "pass", "pass", "not_applicable", "pass", "not_applicable"],
            ["pass", "not_applicable", "not_applicable", "pass"],
            trend=[100.0],
        ),
    ]
    by_level = []
    for level in sorted({s.level for s in systems}):
        group = [s for s in systems if s.level == level]
        applicable = sum(s.summary.applicable for s in group)
        passing = sum(s.summary.passing for s in group)
        by_level.append(
            LevelSummary(
                level=level,
                systems=len(group),
                approved=sum(s.dossier_status == "approved" for s in group),
                passing_pct=passing / applicable * 100,
            )
        )
    applicable = sum(s.summary.applicable for s in systems)
    return ComplianceReport(
        generated_at=NOW,
        catalogue=CatalogueInfo(version="1", as_of="2026-11-23", controls=len(CATALOGUE)),
        province=ProvinceSummary(
            systems=len(systems),
            approved=sum(s.dossier_status == "approved" for s in systems),
            passing_pct=sum(s.summary.passing for s in systems) / applicable * 100,
            overdue=sum(len(s.overdue) for s in systems),
            by_level=by_level,
            layers_passing={
                lid: sum(
                    layer.status == "pass" for s in systems for layer in s.layers if layer.id == lid
                )
                for _n, lid, _vi, _en in LAYERS
            },
        ),
        systems=systems,
    )


class _Text(HTMLParser):
    """The text a reader sees (no <style>, no <title> of the SVG), whitespace collapsed."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "script"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html.replace("<wbr>", ""))
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def pct(value: float, lang: str) -> str:
    text = f"{value:.1f}"
    return (text.replace(".", ",") if lang == "vi" else text) + "%"


def control_rows(html: str) -> dict[tuple[str, str], str]:
    """(system code, control id) -> the text of that control's row."""
    rows: dict[tuple[str, str], str] = {}
    for section in re.findall(r'<section class="system".*?</section>', html, re.S):
        h2 = re.search(r"<h2>(.*?)</h2>", section, re.S)
        assert h2 is not None
        heading = page_text(h2.group(1))
        for row in re.findall(r'<tr class="control .*?</tr>', section, re.S):
            cid = re.search(r'<span class="id">(.*?)</span>', row)
            assert cid is not None
            rows[(heading, cid.group(1).replace("<wbr>", ""))] = page_text(row)
    return rows


@pytest.fixture(scope="module")
def report() -> ComplianceReport:
    return build_report()


# ------------------------------------------------------------------------------------ JSON


def test_json_round_trips_through_the_model(report: ComplianceReport) -> None:
    data = render(report, "json", "vi")
    assert ComplianceReport.model_validate_json(data) == report
    doc = json.loads(data)
    assert list(doc) == ["generated_at", "catalogue", "province", "systems"]
    assert [s["code"] for s in doc["systems"]] == [s.code for s in report.systems]
    first = doc["systems"][0]
    assert len(first["layers"]) == 4
    assert [c["status"] for c in first["controls"]] == [
        c.status for c in report.systems[0].controls
    ]
    # Language-neutral and stable: the same bytes whatever the language, run after run.
    assert render(report, "json", "en") == data
    assert render(build_report(), "json", "vi") == data
    assert "Cổng dịch vụ công tỉnh".encode() in data  # UTF-8, not \u escapes


# ------------------------------------------------------------------------------------ HTML


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_html_has_the_labels_of_its_language(report: ComplianceReport, lang: str) -> None:
    html = render(report, "html", lang).decode("utf-8")
    text = page_text(html)
    other = "en" if lang == "vi" else "vi"
    assert f'<html lang="{lang}">' in html
    for key in (
        "title",
        "province_summary",
        "layer_coverage",
        "systems_overview",
        "dossier_status",
        "regime",
        "trend",
        "controls",
    ):
        assert i18n.t(key, lang) in text, key
        assert i18n.t(key, other) not in text, key
    for n in (1, 2, 3, 4):
        assert i18n.layer_name(n, lang) in text
    for status in ("pass", "fail", "unknown", "not_applicable"):
        assert CONTROL_STATUSES[status][lang] in text
    for system in report.systems:
        assert system.name in text
        assert DOSSIER_STATUSES[system.dossier_status][lang] in text
        assert REGIMES[system.regime][lang] in text
        for c in system.controls:
            # Not-applicable controls are listed by id under their reason, not as rows.
            if c.status != "not_applicable":
                assert (c.title_vi if lang == "vi" else c.title_en) in text
            assert (c.reason_vi if lang == "vi" else c.reason) in text
            assert c.id in text
        for layer in system.layers:
            assert (layer.title_vi if lang == "vi" else layer.title_en) in text
    if lang == "vi":
        assert "Hệ thống cấp độ 3: " in text
        for term in ("Đạt", "Không đạt", "Chưa xác định", "Hồ sơ đề xuất cấp độ", "Mô hình 4 lớp"):
            assert term in text
        assert "Số 1234/QĐ-UBND, ngày 15/03/2025" in text
        assert "24/11/2026 08:30 (UTC+7)" in text  # Vietnam time
        assert "2025-03-15" not in text
    else:
        assert "Level-3 systems: " in text
        assert "No. 1234/QĐ-UBND of 2025-03-15" in text
        assert "2026-11-24 08:30 (UTC+7)" in text
        assert "15/03/2025" not in text


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_html_numbers_match_the_report(report: ComplianceReport, lang: str) -> None:
    text = page_text(render(report, "html", lang).decode("utf-8"))
    prov = report.province
    assert pct(prov.passing_pct, lang) in text
    for lv in prov.by_level:
        assert i18n.t("level_line", lang, level=lv.level, pct=pct(lv.passing_pct, lang)) in text
        assert i18n.t("level_detail", lang, systems=lv.systems, approved=lv.approved) in text
    # Level 3: 3 + 5 of 6 + 6 applicable controls pass -> 66.7 %; level 4: 1 of 6; level 2: 4 of 4.
    pcts = {lv.level: lv.passing_pct for lv in prov.by_level}
    assert pcts == pytest.approx({2: 100.0, 3: 8 / 12 * 100, 4: 1 / 6 * 100})
    level_3 = "Hệ thống cấp độ 3: 66,7% yêu cầu đạt" if lang == "vi" else "Level-3 systems: 66.7%"
    assert level_3 in text
    for layer_id, passing in prov.layers_passing.items():
        n = int(layer_id[5])
        assert (
            f"{i18n.layer_name(n, lang)} "
            f"{i18n.t('layer_count', lang, passing=passing, systems=prov.systems)}"
        ) in text
    for s in report.systems:
        summary = i18n.t(
            "controls_summary",
            lang,
            passing=s.summary.passing,
            applicable=s.summary.applicable,
            pct=pct(s.summary.passing_pct, lang),
            failing=s.summary.failing,
            unknown=s.summary.unknown,
        )
        assert summary in text, s.code
        for item in s.overdue:
            assert item.control in text
    # Per system: 3/6 -> 50.0 %, 5/6 -> 83.3 %, 1/6 -> 16.7 %, 4/4 -> 100.0 %.
    for expected in (50.0, 5 / 6 * 100, 1 / 6 * 100, 100.0):
        assert pct(expected, lang) in text


def test_html_marks_unverified_and_overdue_controls(report: ComplianceReport) -> None:
    for lang in ("vi", "en"):
        rows = control_rows(render(report, "html", lang).decode("utf-8"))
        heading = i18n.t("system_heading", lang, code="HT-CDVC", name=report.systems[0].name)
        unverified = rows[(heading, "TCVN11930.MGMT.OPS.INCIDENT")]
        assert i18n.t("unverified", lang) in unverified
        assert i18n.t("not_enforced", lang) in unverified
        solid = rows[(heading, "ND85.LEVEL.APPROVED")]
        assert i18n.t("unverified", lang) not in solid
        assert i18n.t("not_enforced", lang) not in solid
        overdue = rows[(heading, "ND85.ASSESSMENT.YEARLY")]
        assert i18n.t("overdue_mark", lang) in overdue
        assert i18n.format_date(date(2026, 10, 1), lang) in overdue
        assert "BC-17/2025/ĐG" in overdue  # the attested document in the evidence summary


def test_html_puts_failing_controls_first(report: ComplianceReport) -> None:
    html = render(report, "html", "en").decode("utf-8")
    sections = re.findall(r'<section class="system".*?</section>', html, re.S)
    statuses = re.findall(r'<tr class="control (\w+)">', sections[2])
    order = ["fail", "unknown", "pass"]
    assert statuses == sorted(statuses, key=order.index)
    assert sorted(statuses) == sorted(c.status for c in report.systems[2].controls)


def test_html_lists_not_applicable_controls_by_reason(report: ComplianceReport) -> None:
    system = report.systems[3]  # level 2: two controls do not apply
    na = [c for c in system.controls if c.status == "not_applicable"]
    assert len(na) == 2
    for lang in ("vi", "en"):
        html = render(report, "html", lang).decode("utf-8")
        section = re.findall(r'<section class="system".*?</section>', html, re.S)[3]
        assert re.findall(r'<tr class="control (\w+)">', section) == ["pass"] * 4
        listing = page_text(section.split('<div class="not-applicable small">')[1])
        listing = listing.replace(" ,", ",")
        assert i18n.t("not_applicable_list", lang, n=2) in listing
        reason = na[0].reason_vi if lang == "vi" else na[0].reason
        assert f"{reason}: {na[0].id}, {na[1].id}" in listing


def test_html_escapes_hostile_strings() -> None:
    hostile = build_report(first_name=HOSTILE)
    sys0 = hostile.systems[0]
    sys0.unit_name = '"><img src=x onerror=alert(1)>'
    sys0.controls[0].reason = "</td></tr></table><script>steal()</script>"
    sys0.controls[1].evidence = {"note": "<b>bold</b>"}
    html = render(hostile, "html", "en").decode("utf-8")
    assert "<script" not in html
    assert "<img" not in html
    assert "<b>bold" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Cổng" in html
    text = page_text(html)
    assert HOSTILE in text
    assert "</td></tr></table><script>steal()</script>" in text


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_html_is_self_contained(report: ComplianceReport, lang: str) -> None:
    html = render(report, "html", lang).decode("utf-8")
    assert "<style>" in html
    for external in ("<link", "<script", "src=", "@import", "url("):
        assert external not in html
    # The only URL is the SVG namespace; every trend with points has a sparkline.
    assert set(re.findall(r"https?://[^\s\"']+", html)) == {"http://www.w3.org/2000/svg"}
    assert html.count("<svg") == sum(1 for s in report.systems if s.trend)
    assert i18n.t("trend_empty", lang) in page_text(html)  # HT-THU has no trend
    first = report.systems[0].trend
    assert i18n.t(
        "trend_line",
        lang,
        first=pct(first[0].passing_pct, lang),
        first_at=i18n.format_date(first[0].at.date(), lang),
        last=pct(first[-1].passing_pct, lang),
        last_at=i18n.format_date(first[-1].at.date(), lang),
        n=len(first),
    ) in page_text(html)


def test_html_renders_an_empty_province() -> None:
    empty = ComplianceReport(
        generated_at=NOW,
        catalogue=CatalogueInfo(version="1", as_of="2026-11-23", controls=0),
        province=ProvinceSummary(
            systems=0, approved=0, passing_pct=0.0, overdue=0, by_level=[], layers_passing={}
        ),
        systems=[],
    )
    text = page_text(render(empty, "html", "vi").decode("utf-8"))
    assert i18n.t("province_summary", "vi") in text
    assert "0,0%" in text


# ------------------------------------------------------------------------------------- PDF


def test_pdf_has_pages_and_vietnamese_text(report: ComplianceReport) -> None:
    data = render(report, "pdf", "vi")
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(data))
    # The summary, then each system on a page of its own.
    assert len(reader.pages) >= 1 + len(report.systems)
    text = re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))
    level3 = next(lv for lv in report.province.by_level if lv.level == 3)
    assert i18n.t("level_line", "vi", level=3, pct=pct(level3.passing_pct, "vi")) in text
    for phrase in ("Lực lượng tại chỗ", "Kết nối hệ thống giám sát quốc gia", "Không đạt"):
        assert phrase in text
    for s in report.systems:
        assert s.name in text
    fonts = set()
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            fonts.add(str(font.get_object()["/BaseFont"]))
    # A subset of DejaVu Sans (every Vietnamese glyph) is embedded: /ABCDEF+DejaVu-Sans.
    assert any(f.replace("-", "").endswith("+DejaVuSans") for f in fonts), fonts


def test_pdf_fetches_nothing(tmp_path: Path) -> None:
    from PIL import Image

    picture = tmp_path / "secret.png"
    Image.new("RGB", (40, 40), "red").save(picture)
    page = f'<p>Đạt</p><img src="{picture.as_uri()}" width="40" height="40">'
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(io.BytesIO(html_to_pdf(page)))
    assert "Đạt" in reader.pages[0].extract_text()
    assert not reader.pages[0]["/Resources"].get("/XObject")  # the image was not read


# ------------------------------------------------------------------------------ errors, CLI


def test_render_rejects_unknown_format_and_language(report: ComplianceReport) -> None:
    with pytest.raises(ReportError, match="format"):
        render(report, "docx", "vi")
    with pytest.raises(ReportError, match="language"):
        render(report, "html", "fr")


def test_run_report_writes_a_file(report: ComplianceReport, tmp_path: Path) -> None:
    out = tmp_path / "bao-cao.html"
    assert run_report(report, "html", "vi", out) == 0
    assert out.read_bytes() == render(report, "html", "vi")
    assert [p.name for p in tmp_path.iterdir()] == ["bao-cao.html"]  # no temporary left


def test_run_report_writes_stdout(
    report: ComplianceReport, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert run_report(report, "json", "en", None) == 0
    assert ComplianceReport.model_validate_json(capsysbinary.readouterr().out) == report


def test_run_report_reports_errors(
    report: ComplianceReport, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_report(report, "html", "fr", None) == 2
    assert "language" in capsys.readouterr().err
    assert run_report(report, "html", "vi", tmp_path / "missing" / "r.html") == 2
    assert "cannot write" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ i18n


def test_message_table_is_complete() -> None:
    fmt = string.Formatter()
    for key, texts in i18n.MESSAGES.items():
        assert set(texts) == {"vi", "en"}, key
        assert texts["vi"] and texts["en"], key
        fields = [{f for _, f, _, _ in fmt.parse(texts[lang]) if f} for lang in ("vi", "en")]
        assert fields[0] == fields[1], key


def test_dates_and_percentages_follow_the_language() -> None:
    d = date(2026, 3, 5)
    assert i18n.format_date(d, "vi") == "05/03/2026"
    assert i18n.format_date(d, "en") == "2026-03-05"
    assert i18n.format_date(None, "vi") == ""
    moment = datetime(2026, 3, 5, 23, 10, tzinfo=UTC)
    assert i18n.format_datetime(moment, "vi") == "06/03/2026 06:10 (UTC+7)"  # the next day
    assert i18n.format_pct(87.54, "vi") == "87,5%"
    assert i18n.format_pct(87.56, "en") == "87.6%"
    assert i18n.regime_label("both", "vi") == "Cả hai chế độ"
    assert i18n.regime_label("nd331", "en") == REGIMES["nd331"]["en"]


def test_evidence_summary_is_one_bounded_line() -> None:
    summary = evidence_summary(
        {"silent": ["a", "b", "c", "d", "e"], "ok": True, "since": date(2026, 1, 2), "n": None}
    )
    assert summary == "silent: a, b, c … (+2); ok: yes; since: 2026-01-02; n: –"
    assert len(evidence_summary({"k": "x" * 1000})) == 240
