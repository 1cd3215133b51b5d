"""Every label of the compliance report in Vietnamese and English, in one message table.

Terms follow DOMAIN.md and COMPLIANCE.md (cấp độ, hồ sơ đề xuất cấp độ, mô hình 4 lớp, ...).
Enum values (dossier statuses, control statuses, regimes) take their labels from
`inventory/vocab.py`; this table holds the page's own words and the few values vocab does
not carry (regime `both`, catalogue confidence, evidence kind). Messages are plain text with
`str.format` fields; the HTML template escapes them like any other value.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from inventory.vocab import CONTROL_STATUSES, DOSSIER_STATUSES, REGIMES, Labels, label

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = ("vi", "en")

MESSAGES: Labels = {
    # Page
    "title": {
        "vi": "Báo cáo tuân thủ an toàn thông tin theo cấp độ",
        "en": "Information security compliance report by security level",
    },
    "generated_at": {"vi": "Thời điểm lập báo cáo", "en": "Generated at"},
    "catalogue": {"vi": "Danh mục yêu cầu", "en": "Control catalogue"},
    "catalogue_line": {
        "vi": "phiên bản {version}, cập nhật quy định đến {as_of}, {controls} yêu cầu",
        "en": "version {version}, regulations as of {as_of}, {controls} controls",
    },
    "page": {"vi": "Trang", "en": "Page"},
    "none": {"vi": "Không có", "en": "None"},
    "yes": {"vi": "Có", "en": "Yes"},
    "no": {"vi": "Không", "en": "No"},
    # Province summary
    "province_summary": {"vi": "Tổng hợp toàn tỉnh", "en": "Province summary"},
    "systems_total": {"vi": "Số hệ thống thông tin", "en": "Information systems"},
    "approved_total": {
        "vi": "Hồ sơ đề xuất cấp độ đã phê duyệt",
        "en": "Level dossiers approved",
    },
    "passing_total": {"vi": "Tỷ lệ yêu cầu đạt", "en": "Controls passing"},
    "overdue_total": {"vi": "Nội dung quá hạn", "en": "Overdue items"},
    "by_level": {"vi": "Theo cấp độ", "en": "By security level"},
    "level_line": {
        "vi": "Hệ thống cấp độ {level}: {pct} yêu cầu đạt",
        "en": "Level-{level} systems: {pct} of controls passing",
    },
    "level_detail": {
        "vi": "{systems} hệ thống, {approved} đã phê duyệt hồ sơ",
        "en": "systems: {systems}, dossiers approved: {approved}",
    },
    "layer_coverage": {
        "vi": "Mô hình 4 lớp: số hệ thống đạt từng lớp",
        "en": "Four-layer model: systems where each layer passes",
    },
    "layer_count": {
        "vi": "{passing}/{systems} hệ thống đạt",
        "en": "{passing} of {systems} systems",
    },
    "systems_overview": {"vi": "Danh sách hệ thống", "en": "Systems overview"},
    # Columns and fields
    "col_code": {"vi": "Mã", "en": "Code"},
    "col_system": {"vi": "Hệ thống thông tin", "en": "Information system"},
    "col_unit": {"vi": "Đơn vị chủ quản", "en": "Owner unit"},
    "col_level": {"vi": "Cấp độ", "en": "Level"},
    "col_dossier": {"vi": "Hồ sơ đề xuất cấp độ", "en": "Level dossier"},
    "col_passing": {"vi": "Yêu cầu đạt", "en": "Controls passing"},
    "col_systems_passing": {"vi": "Số hệ thống đạt", "en": "Systems passing"},
    "col_overdue": {"vi": "Quá hạn", "en": "Overdue"},
    "col_layers": {"vi": "Mô hình 4 lớp", "en": "Four layers"},
    "col_id": {"vi": "Mã yêu cầu", "en": "Control"},
    "col_title": {"vi": "Nội dung yêu cầu", "en": "Requirement"},
    "col_status": {"vi": "Kết quả", "en": "Status"},
    "col_evidence": {"vi": "Bằng chứng", "en": "Evidence"},
    "col_reason": {"vi": "Lý do", "en": "Reason"},
    "col_layer": {"vi": "Lớp", "en": "Layer"},
    "col_required": {"vi": "Yêu cầu ở cấp độ này", "en": "Required at this level"},
    "col_since": {"vi": "Quá hạn từ", "en": "Overdue since"},
    # Per system
    "system_heading": {"vi": "Hệ thống {code}: {name}", "en": "System {code}: {name}"},
    "level": {"vi": "Cấp độ", "en": "Security level"},
    "level_value": {"vi": "Cấp độ {level}", "en": "Level {level}"},
    "dossier_status": {"vi": "Tình trạng hồ sơ đề xuất cấp độ", "en": "Level dossier status"},
    "decision": {"vi": "Quyết định phê duyệt cấp độ", "en": "Level approval decision"},
    "decision_value": {"vi": "Số {number}, ngày {date}", "en": "No. {number} of {date}"},
    "no_decision": {"vi": "Chưa có quyết định", "en": "No decision yet"},
    "regime": {"vi": "Chế độ pháp lý áp dụng", "en": "Regulatory regime"},
    "owner_unit": {"vi": "Đơn vị chủ quản", "en": "Owner unit"},
    "state_secret": {
        "vi": "Hệ thống xử lý bí mật nhà nước",
        "en": "System processes state secrets",
    },
    "evaluated_at": {"vi": "Thời điểm đánh giá", "en": "Evaluated at"},
    "controls_summary": {
        "vi": "{passing}/{applicable} yêu cầu đạt ({pct}); {failing} không đạt, {unknown} chưa xác định",
        "en": "{passing} of {applicable} controls passing ({pct}); {failing} failing, {unknown} unknown",
    },
    "layers": {"vi": "Mô hình 4 lớp", "en": "Four-layer model"},
    "overdue": {"vi": "Nội dung quá hạn", "en": "Overdue items"},
    "trend": {"vi": "Diễn biến tỷ lệ yêu cầu đạt", "en": "Trend of controls passing"},
    "trend_line": {
        "vi": "Từ {first} ({first_at}) đến {last} ({last_at}), {n} lần đánh giá",
        "en": "From {first} ({first_at}) to {last} ({last_at}), {n} evaluations",
    },
    "trend_empty": {"vi": "Chưa có dữ liệu diễn biến", "en": "No trend data yet"},
    "controls": {"vi": "Kết quả từng yêu cầu", "en": "Controls"},
    "required": {"vi": "Bắt buộc", "en": "Required"},
    "not_required": {"vi": "Không bắt buộc", "en": "Not required"},
    # Control marks
    "unverified": {"vi": "Chưa kiểm chứng nguồn", "en": "Unverified source"},
    "not_enforced": {
        "vi": "Chỉ hiển thị, không tính là không đạt",
        "en": "Shown, not enforced",
    },
    "not_applicable_list": {
        "vi": "Yêu cầu không áp dụng cho hệ thống ({n})",
        "en": "Controls that do not apply to this system ({n})",
    },
    "due": {"vi": "Hạn", "en": "Due"},
    "overdue_mark": {"vi": "Quá hạn", "en": "Overdue"},
    "marks_note": {
        "vi": "Yêu cầu đánh dấu “chưa kiểm chứng nguồn” dựa trên tài liệu chưa đối chiếu với văn bản gốc: kết quả được hiển thị để tham khảo, không tính là không đạt.",
        "en": "Controls marked “unverified source” rest on material not checked against the official text: their result is shown for information and never counted as a failure.",
    },
}

# Values the vocab tables do not carry.
REGIME_BOTH: Labels = {
    "both": {"vi": "Cả hai chế độ", "en": "Both regimes"},
}

# Short forms for the controls table.
REGIME_SHORT: Labels = {
    "nd85": {"vi": "NĐ 85/2016", "en": "Decree 85/2016"},
    "nd331": {"vi": "Luật 116/2025, NĐ 331/2026", "en": "Law 116/2025, Decree 331/2026"},
    "both": {"vi": "Cả hai chế độ", "en": "Both regimes"},
}

CONFIDENCE: Labels = {
    "solid": {"vi": "Đã đối chiếu văn bản", "en": "Checked against the text"},
    "secondary": {"vi": "Nguồn thứ cấp", "en": "Secondary source"},
    "unverified": {"vi": "Chưa kiểm chứng nguồn", "en": "Unverified source"},
}

EVIDENCE_KINDS: Labels = {
    "live": {"vi": "Dữ liệu giám sát trực tiếp", "en": "Live SOC data"},
    "attested": {"vi": "Tài liệu xác nhận", "en": "Attested document"},
}

# Short names of the four layers (mô hình 4 lớp, Directive 14/CT-TTg).
LAYER_NAMES: dict[int, dict[str, str]] = {
    1: {"vi": "Lực lượng tại chỗ", "en": "On-site force"},
    2: {"vi": "Giám sát, bảo vệ chuyên nghiệp", "en": "Professional monitoring and protection"},
    3: {"vi": "Kiểm tra, đánh giá định kỳ", "en": "Independent periodic assessment"},
    4: {
        "vi": "Kết nối hệ thống giám sát quốc gia",
        "en": "Connection to the national monitoring system",
    },
}
LAYER_PREFIX: dict[str, str] = {"vi": "Lớp", "en": "Layer"}


def check_lang(lang: str) -> Lang:
    """`lang` as a `Lang`; ValueError for anything but vi / en."""
    if lang == "vi":
        return "vi"
    if lang == "en":
        return "en"
    raise ValueError(f"unknown language {lang!r}; known: {', '.join(LANGS)}")


def t(key: str, lang: str, **fields: Any) -> str:
    """The message `key` in `lang`, its `{fields}` filled in. KeyError for an unknown key."""
    text = MESSAGES[key][lang]
    return text.format(**fields) if fields else text


def layer_name(layer: int, lang: str) -> str:
    """`Lớp 1 - Lực lượng tại chỗ` / `Layer 1 - On-site force`."""
    name = LAYER_NAMES.get(layer, {}).get(lang, "")
    head = f"{LAYER_PREFIX[lang]} {layer}"
    return f"{head} - {name}" if name else head


def status_label(value: str, lang: str) -> str:
    return label(CONTROL_STATUSES, value, lang)


def dossier_label(value: str, lang: str) -> str:
    return label(DOSSIER_STATUSES, value, lang)


def regime_label(value: str, lang: str) -> str:
    return label(REGIME_BOTH if value in REGIME_BOTH else REGIMES, value, lang)


def regime_short(value: str, lang: str) -> str:
    return label(REGIME_SHORT, value, lang)


def confidence_label(value: str, lang: str) -> str:
    return label(CONFIDENCE, value, lang)


def evidence_kind_label(value: str, lang: str) -> str:
    return label(EVIDENCE_KINDS, value, lang)


def format_date(value: date | None, lang: str) -> str:
    """dd/mm/yyyy in Vietnamese, ISO 8601 in English; "" for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return value.strftime("%d/%m/%Y") if lang == "vi" else value.isoformat()


VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


def format_datetime(value: datetime | None, lang: str) -> str:
    """`24/11/2026 08:30 (UTC+7)` (vi) / `2026-11-24 08:30 (UTC+7)` (en): aware times in
    Vietnam's time, where the report's readers are."""
    if value is None:
        return ""
    suffix = ""
    if value.tzinfo is not None:
        value = value.astimezone(VIETNAM)
        suffix = " (UTC+7)"
    day = format_date(value.date(), lang)
    return f"{day} {value:%H:%M}{suffix}"


def format_pct(value: float, lang: str) -> str:
    """A percentage with one decimal: `87,5%` (vi, decimal comma) / `87.5%` (en)."""
    text = f"{value:.1f}"
    if lang == "vi":
        text = text.replace(".", ",")
    return f"{text}%"
