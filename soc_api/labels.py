"""Vietnamese and English labels for socmon's enum values (DOMAIN.md terms)."""

from __future__ import annotations

INCIDENT_STATUS = {
    "new": {"vi": "Mới", "en": "New"},
    "triage": {"vi": "Phân loại", "en": "Triage"},
    "investigating": {"vi": "Đang điều tra", "en": "Investigating"},
    "contained": {"vi": "Đã ngăn chặn", "en": "Contained"},
    "recovered": {"vi": "Đã khôi phục", "en": "Recovered"},
    "closed": {"vi": "Đã đóng", "en": "Closed"},
    "false_positive": {"vi": "Cảnh báo sai", "en": "False positive"},
}
OPEN_STATUSES = ("new", "triage", "investigating", "contained", "recovered")

RESPONSE_PATH = {
    "normal": {"vi": "Thông thường", "en": "Normal"},
    "serious": {"vi": "Nghiêm trọng", "en": "Serious"},
}

SEVERITY = {
    "informational": {"vi": "Thông tin", "en": "Informational"},
    "low": {"vi": "Thấp", "en": "Low"},
    "medium": {"vi": "Trung bình", "en": "Medium"},
    "high": {"vi": "Cao", "en": "High"},
    "critical": {"vi": "Nghiêm trọng", "en": "Critical"},
}

# Decision 05/2017/QĐ-TTg incident groups (DOMAIN.md §4).
INCIDENT_CATEGORY = {
    "A1": {"vi": "Tấn công từ chối dịch vụ", "en": "Denial of service"},
    "A2": {"vi": "Tấn công giả mạo", "en": "Spoofing / impersonation"},
    "A3": {"vi": "Tấn công sử dụng mã độc", "en": "Malware"},
    "A4": {
        "vi": "Truy cập trái phép, chiếm quyền điều khiển",
        "en": "Unauthorised access / takeover",
    },
    "A5": {"vi": "Thay đổi giao diện", "en": "Defacement"},
    "A6": {
        "vi": "Mã hóa phần mềm, dữ liệu, thiết bị",
        "en": "Encryption of software/data/devices (ransomware)",
    },
    "A7": {"vi": "Phá hoại thông tin, dữ liệu, phần mềm", "en": "Destruction of data/software"},
    "A8": {
        "vi": "Nghe trộm, gián điệp, lấy cắp thông tin",
        "en": "Eavesdropping / espionage / data theft",
    },
    "A9": {"vi": "Tấn công tổng hợp", "en": "Combined attack"},
    "B1": {"vi": "Lỗi nguồn điện", "en": "Power fault"},
    "B2": {"vi": "Lỗi đường kết nối Internet", "en": "Internet link fault"},
    "B3": {"vi": "Lỗi phần mềm, phần cứng, ứng dụng", "en": "Software/hardware/application fault"},
    "B4": {"vi": "Quá tải hệ thống", "en": "Overload"},
    "B5": {"vi": "Sự cố hệ thống khác", "en": "Other system fault"},
    "C1": {"vi": "Lỗi thay đổi, cấu hình phần cứng", "en": "Hardware change/configuration error"},
    "C2": {"vi": "Lỗi thay đổi, cấu hình phần mềm", "en": "Software change/configuration error"},
    "C3": {
        "vi": "Lỗi chính sách, thủ tục an toàn thông tin",
        "en": "Security policy or procedure error",
    },
    "C4": {"vi": "Buộc dừng dịch vụ", "en": "Forced service stop"},
    "C5": {"vi": "Lỗi vận hành khác", "en": "Other operator error"},
}

ROLES = {
    "admin": {"vi": "Quản trị hệ thống", "en": "Administrator"},
    "analyst": {"vi": "Chuyên viên giám sát (tỉnh)", "en": "Analyst (provincial)"},
    "provider-analyst": {"vi": "Chuyên viên giám sát (nhà cung cấp)", "en": "Provider analyst"},
    "sysadmin": {"vi": "Quản trị viên máy chủ", "en": "Sysadmin"},
    "manager": {"vi": "Lãnh đạo, quản lý", "en": "Manager"},
    "drill": {"vi": "Đội diễn tập", "en": "Drill team"},
}

# What became of a detection rule (detections/catalog.py).
RULE_STATUS = {
    "compiled": {"vi": "Đang hoạt động", "en": "Active"},
    "unsupported": {"vi": "Không hỗ trợ", "en": "Unsupported"},
    "error": {"vi": "Lỗi", "en": "Error"},
    "disabled": {"vi": "Đã tắt", "en": "Disabled"},
    "filtered": {"vi": "Bị loại theo chính sách", "en": "Filtered out by policy"},
}

RULE_KIND = {
    "detection": {"vi": "Luật phát hiện", "en": "Detection rule"},
    "correlation": {"vi": "Luật tương quan", "en": "Correlation rule"},
    "filter": {"vi": "Bộ lọc chung", "en": "Global filter"},
}


def label(table: dict[str, dict[str, str]], code: str | None) -> dict[str, str] | None:
    """Both labels of `code`, or None for an unknown / empty code."""
    return table.get(code) if code else None


# Incident observables (soc_api/incidents.py OBSERVABLE_FIELDS).
OBSERVABLE_TYPE = {
    "ip": {"vi": "Địa chỉ IP", "en": "IP address"},
    "host": {"vi": "Máy chủ / máy trạm", "en": "Host"},
    "user": {"vi": "Tài khoản người dùng", "en": "User account"},
    "hash": {"vi": "Mã băm tệp", "en": "File hash"},
    "domain": {"vi": "Tên miền", "en": "Domain"},
    "url": {"vi": "Đường dẫn URL", "en": "URL"},
}

# Incident timeline entries (soc_api/incidents.py).
TIMELINE_KIND = {
    "created": {"vi": "Tạo sự cố", "en": "Incident opened"},
    "alert_added": {"vi": "Thêm cảnh báo", "en": "Alert added"},
    "comment": {"vi": "Bình luận", "en": "Comment"},
    "state_changed": {"vi": "Đổi trạng thái", "en": "State changed"},
    "severity_changed": {"vi": "Đổi mức độ nghiêm trọng", "en": "Severity changed"},
    "response_path_changed": {"vi": "Đổi hướng xử lý", "en": "Response path changed"},
    "group_changed": {"vi": "Đổi nhóm sự cố", "en": "Incident group changed"},
    "assignee_changed": {"vi": "Đổi người xử lý", "en": "Assignee changed"},
    "merged": {"vi": "Gộp sự cố khác vào", "en": "Incident merged in"},
    "merged_into": {"vi": "Đã gộp vào sự cố khác", "en": "Merged into another incident"},
    "split": {"vi": "Tách cảnh báo ra sự cố mới", "en": "Alerts split off"},
    "split_from": {"vi": "Tách ra từ sự cố khác", "en": "Split from another incident"},
}
