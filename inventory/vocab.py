"""Enum values of the inventory and compliance model, with their Vietnamese and English labels.

The value is what files, the API and the database carry; the labels are what people read
(DOMAIN.md terms). Dossier statuses come from `controls.yaml` (`dossier_statuses`) and are
repeated here so the model validates without the catalogue loaded; a test checks both agree.
"""

from __future__ import annotations

Labels = dict[str, dict[str, str]]

UNIT_KINDS: Labels = {
    "province": {"vi": "UBND tỉnh", "en": "Provincial People's Committee"},
    "department": {"vi": "Sở, ban, ngành", "en": "Department / agency"},
    "district": {"vi": "Huyện, thị xã, thành phố", "en": "District"},
    "commune": {"vi": "Xã, phường, thị trấn", "en": "Commune / ward"},
    "centre": {"vi": "Trung tâm", "en": "Centre"},
    "provider": {"vi": "Đơn vị cung cấp dịch vụ", "en": "Service provider"},
}

SITE_KINDS: Labels = {
    "data_centre": {"vi": "Trung tâm dữ liệu", "en": "Data centre"},
    "department": {"vi": "Trụ sở sở, ban, ngành", "en": "Department office"},
    "district": {"vi": "Trụ sở huyện", "en": "District office"},
    "commune": {"vi": "Trụ sở xã, phường", "en": "Commune office"},
}

LINK_KINDS: Labels = {
    "tslcd": {"vi": "Mạng truyền số liệu chuyên dùng (TSLCD)", "en": "Dedicated data network"},
    "wan": {"vi": "Mạng WAN tỉnh", "en": "Provincial WAN"},
    "internet": {"vi": "Đường truyền Internet", "en": "Internet link"},
}

# The default zone set (DOMAIN.md §1).
ZONE_KINDS: Labels = {
    "outside_edge": {"vi": "Vùng kết nối ra bên ngoài", "en": "Outside edge"},
    "soc": {"vi": "Vùng giám sát, điều hành", "en": "SOC / operations"},
    "core": {"vi": "Vùng chuyển mạch lõi", "en": "Core switching"},
    "dmz": {"vi": "Vùng DMZ", "en": "DMZ"},
    "internal_servers": {"vi": "Vùng máy chủ nội bộ", "en": "Internal servers"},
    "database": {"vi": "Vùng máy chủ cơ sở dữ liệu", "en": "Database servers"},
    "storage": {"vi": "Vùng lưu trữ", "en": "Storage"},
    "management": {"vi": "Vùng quản trị", "en": "Management"},
    "agency_lan": {"vi": "Mạng LAN cơ quan", "en": "Agency LAN"},
    "external": {"vi": "Bên ngoài", "en": "External"},
}

ASSET_KINDS: Labels = {
    "server": {"vi": "Máy chủ", "en": "Server"},
    "firewall": {"vi": "Tường lửa", "en": "Firewall"},
    "router": {"vi": "Bộ định tuyến", "en": "Router"},
    "switch": {"vi": "Thiết bị chuyển mạch", "en": "Switch"},
    "storage": {"vi": "Thiết bị lưu trữ", "en": "Storage"},
    "sensor": {"vi": "Cảm biến giám sát (TAP/SPAN)", "en": "Monitoring sensor (TAP/SPAN)"},
    "ids": {"vi": "Hệ thống phát hiện xâm nhập", "en": "Intrusion detection"},
    "waf": {"vi": "Tường lửa ứng dụng web", "en": "Web application firewall"},
    "anti_ddos": {"vi": "Thiết bị chống DDoS", "en": "Anti-DDoS"},
    "other": {"vi": "Khác", "en": "Other"},
}

DOSSIER_STATUSES: Labels = {
    "draft": {"vi": "Đang lập hồ sơ", "en": "Draft"},
    "submitted": {"vi": "Đã nộp thẩm định", "en": "Submitted"},
    "returned": {"vi": "Trả lại, bổ sung hồ sơ", "en": "Returned"},
    "appraised": {"vi": "Đã thẩm định", "en": "Appraised"},
    "approved": {"vi": "Đã phê duyệt", "en": "Approved"},
    "redetermination": {"vi": "Xác định lại cấp độ", "en": "Redetermination"},
}

REGIMES: Labels = {
    "nd85": {
        "vi": "Nghị định 85/2016/NĐ-CP, TCVN 11930:2017",
        "en": "Decree 85/2016 and TCVN 11930:2017",
    },
    "nd331": {
        "vi": "Luật 116/2025/QH15, Nghị định 331/2026/NĐ-CP, TCVN 14423:2026",
        "en": "Law 116/2025, Decree 331/2026 and TCVN 14423:2026",
    },
}

NCSC_STATUSES: Labels = {
    "unregistered": {"vi": "Chưa đăng ký", "en": "Not registered"},
    "submitted": {"vi": "Đã gửi đăng ký", "en": "Submitted"},
    "registered": {"vi": "Đã đăng ký với NCSC", "en": "Registered with NCSC"},
}

CONTROL_STATUSES: Labels = {
    "pass": {"vi": "Đạt", "en": "Pass"},
    "fail": {"vi": "Không đạt", "en": "Fail"},
    "unknown": {"vi": "Chưa xác định", "en": "Unknown"},
    "not_applicable": {"vi": "Không áp dụng", "en": "Not applicable"},
}

# Records of things socmon cannot observe itself, used by live checks.
RECORD_KINDS: Labels = {
    "drill": {"vi": "Diễn tập", "en": "Drill"},
    "scan": {"vi": "Rà quét lỗ hổng", "en": "Vulnerability scan"},
    "pentest": {"vi": "Kiểm tra xâm nhập", "en": "Penetration test"},
    "monitoring_report": {"vi": "Báo cáo giám sát", "en": "Monitoring report"},
    "incident_report": {"vi": "Báo cáo sự cố", "en": "Incident report"},
    "connector_heartbeat": {
        "vi": "Kết nối hệ thống giám sát quốc gia",
        "en": "National monitoring connector heartbeat",
    },
    "backup": {"vi": "Sao lưu", "en": "Backup"},
    "info_sharing": {"vi": "Chia sẻ thông tin", "en": "Information sharing"},
    "log_review": {"vi": "Rà soát nhật ký", "en": "Log review"},
}


def label(table: Labels, value: str | None, lang: str) -> str:
    """The label of `value` in `lang` (vi / en); the value itself when it has none."""
    if value is None:
        return ""
    return table.get(value, {}).get(lang, value)
