"""The console's own strings in Vietnamese and English (enum labels come from `soc_api.labels`
and `inventory.vocab`)."""

from __future__ import annotations

from typing import Any, Literal

Lang = Literal["vi", "en"]
LANGS: tuple[Lang, ...] = ("vi", "en")
DEFAULT_LANG: Lang = "vi"

MESSAGES: dict[str, dict[str, str]] = {
    "app": {"vi": "socmon — Giám sát an toàn thông tin", "en": "socmon — Security monitoring"},
    "nav.incidents": {"vi": "Sự cố", "en": "Incidents"},
    "nav.sources": {"vi": "Nguồn nhật ký", "en": "Log sources"},
    "nav.compliance": {"vi": "Tuân thủ", "en": "Compliance"},
    "nav.systems": {"vi": "Hệ thống thông tin", "en": "Information systems"},
    "nav.logout": {"vi": "Đăng xuất", "en": "Log out"},
    "nav.signed_in": {"vi": "Đăng nhập: {name} ({role})", "en": "Signed in: {name} ({role})"},
    "lang.switch": {"vi": "Ngôn ngữ", "en": "Language"},
    "login.title": {"vi": "Đăng nhập", "en": "Sign in"},
    "login.username": {"vi": "Tên đăng nhập", "en": "User name"},
    "login.password": {"vi": "Mật khẩu", "en": "Password"},
    "login.submit": {"vi": "Đăng nhập", "en": "Sign in"},
    "login.failed": {
        "vi": "Sai tên đăng nhập hoặc mật khẩu.",
        "en": "Wrong user name or password.",
    },
    "login.limited": {
        "vi": "Quá nhiều lần đăng nhập sai. Vui lòng thử lại sau {seconds} giây.",
        "en": "Too many failed logins. Please try again in {seconds} seconds.",
    },
    "login.unavailable": {
        "vi": "Không thể đăng nhập lúc này: {error}",
        "en": "Login is unavailable: {error}",
    },
    "login.missing": {
        "vi": "Vui lòng nhập tên đăng nhập và mật khẩu.",
        "en": "Please enter your user name and password.",
    },
    "error.403": {"vi": "Không có quyền truy cập", "en": "Access denied"},
    "error.403.text": {
        "vi": "Vai trò {role} không được xem trang này.",
        "en": "The {role} role may not view this page.",
    },
    "error.404": {"vi": "Không tìm thấy", "en": "Not found"},
    "error.404.text": {
        "vi": "Sự cố {id} không tồn tại hoặc nằm ngoài phạm vi của bạn.",
        "en": "Incident {id} does not exist or is outside your scope.",
    },
    "error.forbidden_origin": {
        "vi": "Yêu cầu từ nguồn khác bị từ chối.",
        "en": "A request from another origin was refused.",
    },
    "incidents.title": {"vi": "Danh sách sự cố", "en": "Incidents"},
    "incidents.count": {"vi": "{count} sự cố", "en": "{count} incidents"},
    "incidents.count_more": {"vi": "hơn {count} sự cố", "en": "more than {count} incidents"},
    "incidents.none": {"vi": "Không có sự cố nào.", "en": "No incidents."},
    "filter.state": {"vi": "Trạng thái", "en": "State"},
    "filter.severity": {"vi": "Mức độ", "en": "Severity"},
    "filter.q": {"vi": "Tìm kiếm (tiêu đề, luật)", "en": "Search (title, rule)"},
    "filter.all": {"vi": "Tất cả", "en": "All"},
    "filter.apply": {"vi": "Lọc", "en": "Filter"},
    "page.prev": {"vi": "« Trang trước", "en": "« Previous"},
    "page.next": {"vi": "Trang sau »", "en": "Next »"},
    "page.n": {"vi": "Trang {page}", "en": "Page {page}"},
    "col.id": {"vi": "Mã", "en": "ID"},
    "col.title": {"vi": "Tiêu đề", "en": "Title"},
    "col.severity": {"vi": "Mức độ", "en": "Severity"},
    "col.state": {"vi": "Trạng thái", "en": "State"},
    "col.group": {"vi": "Nhóm sự cố", "en": "Incident group"},
    "col.path": {"vi": "Hướng xử lý", "en": "Response path"},
    "col.unit": {"vi": "Đơn vị", "en": "Unit"},
    "col.level": {"vi": "Cấp độ", "en": "Level"},
    "col.alerts": {"vi": "Số cảnh báo", "en": "Alerts"},
    "col.first_seen": {"vi": "Lần đầu", "en": "First seen"},
    "col.last_seen": {"vi": "Lần cuối", "en": "Last seen"},
    "col.rule": {"vi": "Luật", "en": "Rule"},
    "col.time": {"vi": "Thời điểm", "en": "Time"},
    "col.alert_id": {"vi": "Mã cảnh báo", "en": "Alert ID"},
    "col.fields": {"vi": "Trường dữ liệu", "en": "Fields"},
    "col.type": {"vi": "Loại", "en": "Type"},
    "col.value": {"vi": "Giá trị", "en": "Value"},
    "col.count": {"vi": "Số lần", "en": "Count"},
    "col.actor": {"vi": "Người thực hiện", "en": "Actor"},
    "col.event": {"vi": "Sự kiện", "en": "Event"},
    "col.detail": {"vi": "Chi tiết", "en": "Detail"},
    "col.author": {"vi": "Người viết", "en": "Author"},
    "col.task": {"vi": "Nhiệm vụ", "en": "Task"},
    "col.phase": {"vi": "Giai đoạn", "en": "Phase"},
    "col.owner": {"vi": "Vai trò phụ trách", "en": "Owner role"},
    "col.due": {"vi": "Hạn xử lý", "en": "Due"},
    "col.done": {"vi": "Hoàn thành", "en": "Done"},
    "col.host": {"vi": "Máy", "en": "Host"},
    "col.source": {"vi": "Nguồn", "en": "Source"},
    "col.collector": {"vi": "Bộ thu thập", "en": "Collector"},
    "col.eps": {"vi": "Sự kiện/giây", "en": "Events/s"},
    "col.events": {"vi": "Số sự kiện", "en": "Events"},
    "col.parse_failures": {"vi": "Lỗi phân tích", "en": "Parse failures"},
    "col.drops": {"vi": "Bị loại bỏ", "en": "Dropped"},
    "col.health": {"vi": "Tình trạng", "en": "Health"},
    "col.code": {"vi": "Mã hệ thống", "en": "System code"},
    "col.name": {"vi": "Tên", "en": "Name"},
    "col.dossier": {"vi": "Hồ sơ cấp độ", "en": "Level dossier"},
    "col.decision": {"vi": "Quyết định phê duyệt", "en": "Approval decision"},
    "col.regime": {"vi": "Chế độ pháp lý", "en": "Regime"},
    "col.state_secret": {"vi": "Bí mật nhà nước", "en": "State secret"},
    "incident.title": {"vi": "Sự cố #{id}", "en": "Incident #{id}"},
    "incident.back": {"vi": "« Danh sách sự cố", "en": "« Incident list"},
    "incident.assignee": {"vi": "Người xử lý", "en": "Assignee"},
    "incident.unassigned": {"vi": "Chưa giao", "en": "Unassigned"},
    "incident.merged_into": {"vi": "Đã gộp vào sự cố", "en": "Merged into incident"},
    "incident.alerts": {"vi": "Cảnh báo", "en": "Alerts"},
    "incident.observables": {"vi": "Đối tượng quan sát", "en": "Observables"},
    "incident.observables_shown": {
        "vi": "Hiển thị {shown} trên {total}",
        "en": "Showing {shown} of {total}",
    },
    "incident.timeline": {"vi": "Diễn biến", "en": "Timeline"},
    "incident.comments": {"vi": "Bình luận", "en": "Comments"},
    "incident.playbooks": {"vi": "Kịch bản ứng cứu", "en": "Playbook runs"},
    "incident.run": {
        "vi": "Kịch bản {playbook} — {status}",
        "en": "Playbook {playbook} — {status}",
    },
    "incident.none": {"vi": "Không có.", "en": "None."},
    "incident.read_only": {
        "vi": "Trang chỉ để xem; thay đổi sự cố qua API.",
        "en": "Read-only; incidents are changed through the API.",
    },
    "run.open": {"vi": "Đang thực hiện", "en": "Open"},
    "run.done": {"vi": "Đã hoàn thành", "en": "Done"},
    "task.open": {"vi": "Chưa xong", "en": "Open"},
    "task.done": {"vi": "Đã xong", "en": "Done"},
    "task.skipped": {"vi": "Bỏ qua", "en": "Skipped"},
    "task.breached": {"vi": "Quá hạn", "en": "Overdue"},
    "phase.triage": {"vi": "Phân loại", "en": "Triage"},
    "phase.escalation": {"vi": "Báo cáo, chuyển cấp", "en": "Escalation"},
    "phase.containment": {"vi": "Ngăn chặn", "en": "Containment"},
    "phase.eradication": {"vi": "Loại bỏ nguyên nhân", "en": "Eradication"},
    "phase.recovery": {"vi": "Khôi phục", "en": "Recovery"},
    "phase.reporting": {"vi": "Báo cáo", "en": "Reporting"},
    "phase.closure": {"vi": "Kết thúc", "en": "Closure"},
    "sources.title": {"vi": "Tình trạng nguồn nhật ký", "en": "Log source health"},
    "sources.none": {"vi": "Chưa có nguồn nhật ký nào.", "en": "No log sources yet."},
    "sources.silent": {"vi": "Im lặng", "en": "Silent"},
    "sources.live": {"vi": "Hoạt động", "en": "Live"},
    "systems.title": {"vi": "Hệ thống thông tin", "en": "Information systems"},
    "systems.none": {"vi": "Không có hệ thống nào.", "en": "No systems."},
    "systems.count": {"vi": "{count} hệ thống", "en": "{count} systems"},
    "yes": {"vi": "Có", "en": "Yes"},
    "no": {"vi": "Không", "en": "No"},
    "time.zone": {
        "vi": "Giờ Việt Nam (Asia/Ho_Chi_Minh, UTC+07:00)",
        "en": "Vietnam time (Asia/Ho_Chi_Minh, UTC+07:00)",
    },
}


def check_lang(value: str | None) -> Lang | None:
    """`value` as a `Lang`, or None for anything but vi / en."""
    if value == "vi":
        return "vi"
    if value == "en":
        return "en"
    return None


def has(key: str) -> bool:
    return key in MESSAGES


def t(key: str, lang: str, **fields: Any) -> str:
    """The message `key` in `lang`, its `{fields}` filled in. KeyError for an unknown key."""
    text = MESSAGES[key][lang]
    return text.format(**fields) if fields else text
