"""Live checks and attested evidence: one function per control (or layer) id.

A check reads socmon's own data — source health (`socmon-sources-<ns>`), the events indices,
incidents and playbook tasks, the inventory tables, `compliance_records` — and answers an
`Outcome`: pass / fail / unknown with a one-line reason in English and Vietnamese and the
evidence behind it. `run_check` picks the function of the registry (`CHECKS`), falls back
to the attestation of an attested control, to "socmon receives no <data>" for a live control
socmon cannot compute, and to a valid attestation when a live check could not decide.

Controls of `confidence: unverified` are shown, never enforced: a failing one is reported as
`unknown` with the reason it would fail (`enforced=False`, COMPLIANCE.md).

How things are matched:
- an asset's logs: a source-health row whose sender address (`syslog+udp://<ip>`) is one of
  the asset's IPs, or — for sources read on the host itself (files, journal, channels) —
  whose collector host is one of its names; and events whose `socmon.observer.asset`,
  `host.hostname`, `host.name`, `host.ip` or `observer.ip` name the asset;
- an incident of a system: an incident whose alerts carry the system's code in
  `socmon.{source,destination,observer}.systems` (the enrichment context); incidents record
  no system themselves, so one whose alerts carry no systems at all is matched by unit and
  level (the evidence says which incidents were matched that way).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.tables import (
    AssetRow,
    AttestationRow,
    LinkRow,
    PublicRangeRow,
    RecordRow,
    SystemRow,
)
from playbooks.models import PlaybookRun, PlaybookTask
from soc_api.compliance.catalog import Catalogue, Control
from soc_api.models import Incident, IncidentAlert
from socmon.errors import StoreError
from socmon.store import Store

if TYPE_CHECKING:
    from detections.catalog import RuleCatalog, RuleEntry

Status = Literal["pass", "fail", "unknown", "not_applicable"]

SEEN_WITHIN = timedelta(hours=24)
INCIDENT_WINDOW = timedelta(days=90)
PUBLIC_IP_WINDOW = timedelta(days=30)
MAX_TERMS = 1000
MAX_EVIDENCE_ITEMS = 50  # per-asset details kept in a status row's evidence

NETWORK_KINDS = frozenset({"firewall", "router", "switch", "ids", "waf", "anti_ddos", "sensor"})
_WEB_HINTS = ("web", "nginx", "apache", "iis", "http", "proxy", "waf", "haproxy", "tomcat")
_IDS_HINTS = ("ids", "ips", "sensor", "suricata", "zeek", "snort")
_FW_HINTS = ("firewall", "fortigate", "paloalto", "pfsense", "asa", "checkpoint", "sophos")
_IP_IN_SOURCE = re.compile(r"://\[?([0-9A-Fa-f:.]+?)\]?(?::\d+)?(?:/|$)")


def utc(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime (SQLite returns naive ones)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def add_months(day: date, months: int) -> date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    return date(year, month, 28)


@dataclass
class Outcome:
    status: Status
    reason: str
    reason_vi: str
    evidence: dict[str, Any] = field(default_factory=dict)
    due: date | None = None
    overdue: bool = False


def ok(en: str, vi: str, **evidence: Any) -> Outcome:
    return Outcome("pass", en, vi, evidence)


def failed(en: str, vi: str, **evidence: Any) -> Outcome:
    return Outcome("fail", en, vi, evidence)


def unknown(en: str, vi: str, **evidence: Any) -> Outcome:
    return Outcome("unknown", en, vi, evidence)


def _names(items: Iterable[str], limit: int = 5) -> str:
    items = sorted(items)
    more = f" (+{len(items) - limit})" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# -- subjects ---------------------------------------------------------------------------------


@dataclass
class SystemInfo:
    row: SystemRow
    assets: list[AssetRow]
    ranges: list[PublicRangeRow]

    @property
    def code(self) -> str:
        return self.row.code

    @property
    def level(self) -> int:
        return self.row.level

    @property
    def unit(self) -> str:
        return self.row.unit


@dataclass
class Subject:
    """What a control is checked for: one system, or (organisation scope) its owner unit."""

    unit: str
    level: int
    system: SystemInfo | None = None
    systems: list[SystemInfo] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"system:{self.system.code}" if self.system else f"unit:{self.unit}"

    @property
    def assets(self) -> list[AssetRow]:
        if self.system is not None:
            return self.system.assets
        seen: dict[str, AssetRow] = {}
        for s in self.systems:
            seen.update({a.name: a for a in s.assets})
        return list(seen.values())


def categories(asset: AssetRow) -> set[str]:
    """What an asset is for the monitoring checks: server, network, web, ids, firewall."""
    kind = (asset.kind or "").lower()
    hints = " ".join(
        str(x).lower()
        for x in (asset.role, asset.product, asset.vendor, *(asset.log_sources or []))
        if x
    )
    out: set[str] = set()
    if kind == "server":
        out.add("server")
    if kind in NETWORK_KINDS:
        out.add("network")
    if kind == "waf" or any(h in hints for h in _WEB_HINTS):
        out.add("web")
    if kind in ("ids", "sensor") or any(h in hints.split() for h in _IDS_HINTS):
        out.add("ids")
    if kind == "firewall" or any(h in hints for h in _FW_HINTS):
        out.add("firewall")
    return out


# -- what the store says of an asset ----------------------------------------------------------


@dataclass
class Seen:
    """Log presence of one asset: newest and oldest searchable event, source-health rows."""

    last: datetime | None = None
    oldest: datetime | None = None  # oldest searchable event
    source_since: datetime | None = None  # earliest source-health first_seen
    sources: list[str] = field(default_factory=list)
    datasets: dict[str, datetime] = field(default_factory=dict)  # dataset -> newest event

    def merge_last(self, moment: datetime | None) -> None:
        if moment is not None and (self.last is None or moment > self.last):
            self.last = moment

    def merge_oldest(self, moment: datetime | None) -> None:
        if moment is not None and (self.oldest is None or moment < self.oldest):
            self.oldest = moment


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _ms(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(float(value) / 1000, UTC)


def _source_ip(source: str) -> str | None:
    m = _IP_IN_SOURCE.search(source)
    if not m:
        return None
    try:
        return str(ipaddress.ip_address(m.group(1)))
    except ValueError:
        return None


class CheckContext:
    """Everything the checks of one evaluation read, loaded once and cached."""

    def __init__(
        self,
        session: Session,
        store: Store | None,
        catalogue: Catalogue,
        *,
        retention_days: int,
        now: datetime,
        catalog: RuleCatalog | None = None,
    ) -> None:
        self.session = session
        self.store = store
        self.catalogue = catalogue
        self.retention_days = retention_days
        self.now = utc(now)
        self.today = self.now.date()
        self.catalog = catalog
        self.store_error: str | None = None if store is not None else "no event store configured"
        self._health: list[dict[str, Any]] | None = None
        self._seen: dict[str, Seen] = {}
        self._attestations: dict[tuple[str, str | None, str], list[AttestationRow]] | None = None
        self._records: dict[str, list[RecordRow]] | None = None
        self._incidents: dict[str, tuple[list[Incident], list[int]]] = {}

    # -- database ---------------------------------------------------------------------------
    def attestations(self, control_ids: Sequence[str], subject: Subject) -> list[AttestationRow]:
        """Valid (not revoked) attestations of any of `control_ids` for the subject, newest
        first. A system's own first; the unit's (system NULL) count for organisation duties
        and for systems of that unit."""
        if self._attestations is None:
            index: dict[tuple[str, str | None, str], list[AttestationRow]] = {}
            rows = self.session.scalars(
                select(AttestationRow).where(AttestationRow.revoked.is_(False))
            )
            for row in rows:
                index.setdefault((row.control, row.system, row.unit), []).append(row)
            self._attestations = index
        out: list[AttestationRow] = []
        for cid in control_ids:
            if subject.system is not None:
                out += self._attestations.get((cid, subject.system.code, subject.unit), [])
            out += self._attestations.get((cid, None, subject.unit), [])
        return sorted(out, key=lambda r: (r.attested_on, r.id), reverse=True)

    def records(self, kind: str, subject: Subject, since: datetime) -> list[RecordRow]:
        """Records of `kind` for the subject (the system's, or its unit's without a system)
        that occurred since `since`, newest first."""
        if self._records is None:
            index: dict[str, list[RecordRow]] = {}
            horizon = self.now - timedelta(days=800)
            for row in self.session.scalars(
                select(RecordRow).where(RecordRow.occurred_at >= horizon)
            ):
                index.setdefault(row.kind, []).append(row)
            self._records = index
        out = []
        for row in self._records.get(kind, []):
            if row.unit != subject.unit or utc(row.occurred_at) < since:
                continue
            if row.system is None or (subject.system and row.system == subject.system.code):
                out.append(row)
        return sorted(out, key=lambda r: utc(r.occurred_at), reverse=True)

    def links_at(self, sites: set[str]) -> list[LinkRow]:
        if not sites:
            return []
        return list(self.session.scalars(select(LinkRow).where(LinkRow.site.in_(sorted(sites)))))

    def asset(self, name: str) -> AssetRow | None:
        return self.session.get(AssetRow, name)

    # -- store ------------------------------------------------------------------------------
    def _health_rows(self) -> list[dict[str, Any]]:
        if self._health is None:
            self._health = []
            if self.store is not None:
                try:
                    resp = self.store.search(
                        self.store.sources_target, size=10_000, query={"match_all": {}}
                    )
                    self._health = [h["_source"] for h in resp["hits"]["hits"]]
                except StoreError as e:
                    self.store_error = str(e)
        return self._health

    def seen(self, assets: Sequence[AssetRow]) -> dict[str, Seen]:
        """Log presence of each asset (store queries once per asset)."""
        missing = [a for a in assets if a.name not in self._seen]
        if missing:
            self._load_seen(missing)
        return {a.name: self._seen[a.name] for a in assets}

    def _load_seen(self, assets: Sequence[AssetRow]) -> None:
        seen = {a.name: Seen() for a in assets}
        by_ip: dict[str, str] = {}
        by_name: dict[str, str] = {}
        for a in assets:
            for ip in a.ips or []:
                by_ip[str(ip)] = a.name
            for name in (a.name, *(a.hostnames or [])):
                by_name[str(name).lower()] = a.name
        for row in self._health_rows():
            source = str(row.get("source", ""))
            ip = _source_ip(source)
            owner = by_ip.get(ip) if ip else None
            if owner is None and "://" not in source:
                owner = by_name.get(str(row.get("host", "")).lower())
            if owner is None:
                continue
            s = seen[owner]
            s.sources.append(f"{row.get('host', '')}/{source}")
            s.merge_last(datetime.fromtimestamp(float(row.get("last_seen", 0)), UTC))
            first = datetime.fromtimestamp(float(row.get("first_seen", 0)), UTC)
            if s.source_since is None or first < s.source_since:
                s.source_since = first
        if self.store is not None:
            self._events_presence(seen, by_ip, by_name)
        self._seen.update(seen)

    def _events_presence(
        self, seen: dict[str, Seen], by_ip: dict[str, str], by_name: dict[str, str]
    ) -> None:
        assert self.store is not None
        names = sorted({*by_name, *seen})
        ips = sorted(by_ip)
        fields: dict[str, tuple[list[str], dict[str, str]]] = {
            "socmon.observer.asset": (sorted(seen), {n: n for n in seen}),
            "host.hostname": (names, by_name),
            "host.name": (names, by_name),
            "host.ip": (ips, by_ip),
            "observer.ip": (ips, by_ip),
        }
        should = [{"terms": {f: values}} for f, (values, _) in fields.items() if values]
        if not should:
            return
        sub = {
            "last": {"max": {"field": "@timestamp"}},
            "oldest": {"min": {"field": "@timestamp"}},
            "datasets": {
                "terms": {"field": "event.dataset", "size": 50},
                "aggs": {"last": {"max": {"field": "@timestamp"}}},
            },
        }
        aggs = {
            f"f{i}": {"terms": {"field": f, "size": MAX_TERMS}, "aggs": sub}
            for i, (f, (values, _)) in enumerate(fields.items())
            if values
        }
        try:
            resp = self.store.search(
                f"logs-*-{self.store.namespace}",
                size=0,
                query={"bool": {"should": should, "minimum_should_match": 1}},
                aggs=aggs,
            )
        except StoreError as e:
            self.store_error = str(e)
            return
        result = resp.get("aggregations") or {}
        for i, (_f, (_values, mapping)) in enumerate(fields.items()):
            for bucket in result.get(f"f{i}", {}).get("buckets", []):
                key = str(bucket.get("key", ""))
                owner = mapping.get(key) or mapping.get(key.lower())
                if owner is None:
                    continue
                s = seen[owner]
                s.merge_last(_ms(bucket.get("last", {}).get("value")))
                s.merge_oldest(_ms(bucket.get("oldest", {}).get("value")))
                for ds in bucket.get("datasets", {}).get("buckets", []):
                    at = _ms(ds.get("last", {}).get("value"))
                    name = str(ds.get("key"))
                    if at is not None and (name not in s.datasets or at > s.datasets[name]):
                        s.datasets[name] = at

    def observed_public_ips(self, code: str) -> set[str] | None:
        """Global addresses the enrichment tied to system `code` in the last 30 days (None when
        the store cannot answer)."""
        if self.store is None:
            return None
        aggs = {
            side: {
                "filter": {"term": {f"socmon.{side}.systems": code}},
                "aggs": {"ips": {"terms": {"field": f"{side}.ip", "size": MAX_TERMS}}},
            }
            for side in ("source", "destination")
        }
        try:
            resp = self.store.search(
                f"logs-*-{self.store.namespace}",
                size=0,
                query={"range": {"@timestamp": {"gte": (self.now - PUBLIC_IP_WINDOW).isoformat()}}},
                aggs=aggs,
            )
        except StoreError as e:
            self.store_error = str(e)
            return None
        out: set[str] = set()
        for side in ("source", "destination"):
            for b in (
                (resp.get("aggregations") or {}).get(side, {}).get("ips", {}).get("buckets", [])
            ):
                try:
                    addr = ipaddress.ip_address(str(b["key"]))
                except ValueError:
                    continue
                if addr.is_global:
                    out.add(str(addr))
        return out

    # -- incidents --------------------------------------------------------------------------
    def incidents_of(self, system: SystemInfo) -> tuple[list[Incident], list[int]]:
        """Incidents of the system seen in the last 90 days, and the ids of those matched only
        by unit and level (their alerts carry no system)."""
        if system.code not in self._incidents:
            self._incidents[system.code] = self._find_incidents(system)
        return self._incidents[system.code]

    def _find_incidents(self, system: SystemInfo) -> tuple[list[Incident], list[int]]:
        since = self.now - INCIDENT_WINDOW
        incs = list(
            self.session.scalars(
                select(Incident).where(Incident.unit == system.unit, Incident.last_seen >= since)
            )
        )
        if not incs:
            return [], []
        systems: dict[int, set[str]] = {i.id: set() for i in incs}
        rows = self.session.execute(
            select(IncidentAlert.incident_id, IncidentAlert.fields).where(
                IncidentAlert.incident_id.in_(sorted(systems))
            )
        )
        for inc_id, fields in rows:
            ctx = (fields or {}).get("socmon") or {}
            for side in ("source", "destination", "observer"):
                part = ctx.get(side)
                if isinstance(part, dict):
                    systems[inc_id].update(str(c) for c in part.get("systems") or [])
        mine, fallback = [], []
        for inc in incs:
            codes = systems[inc.id]
            if system.code in codes:
                mine.append(inc)
            elif not codes and inc.level == system.level:
                mine.append(inc)
                fallback.append(inc.id)
        return mine, fallback

    def report_tasks(self, incident_ids: Sequence[int]) -> dict[int, list[PlaybookTask]]:
        out: dict[int, list[PlaybookTask]] = {i: [] for i in incident_ids}
        if not incident_ids:
            return out
        rows = self.session.execute(
            select(PlaybookRun.incident_id, PlaybookTask)
            .join(PlaybookTask, PlaybookTask.run_id == PlaybookRun.id)
            .where(PlaybookRun.incident_id.in_(sorted(incident_ids)))
        )
        for inc_id, task in rows:
            out[inc_id].append(task)
        return out

    def has_runs(self, incident_ids: Sequence[int]) -> set[int]:
        if not incident_ids:
            return set()
        return set(
            self.session.scalars(
                select(PlaybookRun.incident_id).where(
                    PlaybookRun.incident_id.in_(sorted(incident_ids))
                )
            )
        )


# -- the registry -----------------------------------------------------------------------------

Check = Callable[[CheckContext, Control, Subject], Outcome]
CHECKS: dict[str, Check] = {}


def check(*control_ids: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        for cid in control_ids:
            CHECKS[cid] = fn
        return fn

    return register


# What socmon would need to compute a live control it has no check for.
NO_DATA: dict[str, tuple[str, str]] = {
    "LAYER1.ONSITE_FORCE": ("on-call roster data", "dữ liệu lịch trực"),
    "TCVN11930.MGMT.HR": ("directory data on leavers", "dữ liệu danh bạ về nhân sự nghỉ việc"),
    "TCVN11930.MGMT.OPS.ENDPOINT_MALWARE": (
        "anti-malware console data",
        "dữ liệu từ máy chủ quản trị phòng chống mã độc",
    ),
    "TCVN11930.TECH.NET.DESIGN": ("zone-to-zone flow policy", "chính sách luồng giữa các vùng"),
    "TCVN11930.TECH.NET.TIME_SYNC": (
        "per-source clock-offset measurements",
        "số liệu độ lệch đồng hồ theo từng nguồn",
    ),
    "TCVN11930.TECH.NET.DEVICE_PROTECT": (
        "administrative-login events classified by protocol and zone",
        "sự kiện đăng nhập quản trị phân loại theo giao thức và vùng",
    ),
    "TCVN11930.TECH.SERVER.AUTH_ACCESS": (
        "default/built-in account lists per server",
        "danh sách tài khoản mặc định trên máy chủ",
    ),
    "TCVN11930.TECH.SERVER.MALWARE": (
        "anti-malware/EDR agent status",
        "trạng thái tác tử phòng chống mã độc/EDR",
    ),
    "TCVN11930.TECH.SERVER.HARDENING": (
        "listening-service inventories of servers",
        "danh mục dịch vụ đang mở trên máy chủ",
    ),
    "TCVN11930.TECH.APP.AUTH_ACCESS_LOG": (
        "application audit logs",
        "nhật ký kiểm toán của ứng dụng",
    ),
    "TCVN11930.TECH.APP.COMMS": (
        "HTTP login/form classification at the perimeter",
        "phân loại biểu mẫu đăng nhập HTTP tại biên",
    ),
    "TCVN14423.ACCOUNT.INACTIVE_MFA": ("account directory or MFA events", "dữ liệu tài khoản, MFA"),
    "TCVN14423.ENDPOINT.EDR_SIEM": ("EDR agent events", "sự kiện từ tác tử EDR"),
    "TCVN14423.ASSET.ROGUE_DEVICE": (
        "DHCP/ARP inventory reconciliation results",
        "kết quả đối soát thiết bị (DHCP/ARP)",
    ),
}


def no_data(control: Control) -> Outcome:
    what_en, what_vi = NO_DATA.get(control.id, ("data for this check", "dữ liệu cho kiểm tra này"))
    return unknown(f"socmon receives no {what_en}", f"socmon không nhận được {what_vi}")


# -- attested evidence ------------------------------------------------------------------------


def _att_evidence(row: AttestationRow) -> dict[str, Any]:
    return {
        "attestation_id": row.id,
        "control": row.control,
        "document_ref": row.document_ref,
        "attester": row.attester,
        "attested_on": row.attested_on.isoformat(),
        "expires_on": row.expires_on.isoformat() if row.expires_on else None,
        "detail": row.detail or {},
    }


def attested(
    ctx: CheckContext,
    control: Control,
    subject: Subject,
    *,
    also: Sequence[str] = (),
    max_age_days: int | None = None,
    max_age_months: int | None = None,
) -> Outcome:
    """Pass on a valid attestation of the control (or of `also`); fail when none, when it
    expired, or when it is older than the age limit; unknown for unverified controls."""
    rows = ctx.attestations((control.id, *also), subject)
    if not rows:
        doc = (control.attested_doc or "a document").rstrip(".")
        if len(doc) > 100:
            doc = doc[:97] + "..."
        if control.confidence == "unverified":
            return unknown(
                f"no attestation recorded (needs: {doc})",
                "chưa có văn bản chứng minh được ghi nhận",
            )
        return failed(
            f"no attestation recorded (needs: {doc})", "chưa có văn bản chứng minh được ghi nhận"
        )
    valid = [r for r in rows if r.expires_on is None or r.expires_on >= ctx.today]
    if not valid:
        row = rows[0]
        assert row.expires_on is not None
        out = failed(
            f"attestation {row.document_ref} expired on {row.expires_on.isoformat()}",
            f"văn bản {row.document_ref} hết hiệu lực ngày {row.expires_on.isoformat()}",
            **_att_evidence(row),
        )
        out.due, out.overdue = row.expires_on, True
        return out
    row = valid[0]
    limit: date | None = None
    if max_age_months is not None:
        limit = add_months(row.attested_on, max_age_months)
    elif max_age_days is not None:
        limit = row.attested_on + timedelta(days=max_age_days)
    if limit is not None and limit < ctx.today:
        age = f"{max_age_months} months" if max_age_months else f"{max_age_days} days"
        age_vi = f"{max_age_months} tháng" if max_age_months else f"{max_age_days} ngày"
        out = failed(
            f"last evidence {row.document_ref} dated {row.attested_on.isoformat()} is older "
            f"than {age} (due {limit.isoformat()})",
            f"văn bản gần nhất {row.document_ref} ngày {row.attested_on.isoformat()} đã quá "
            f"{age_vi} (hạn {limit.isoformat()})",
            **_att_evidence(row),
        )
        out.due, out.overdue = limit, True
        return out
    due = min((d for d in (row.expires_on, limit) if d is not None), default=None)
    out = ok(
        f"attested by {row.attester}: {row.document_ref} of {row.attested_on.isoformat()}",
        f"{row.attester} xác nhận: {row.document_ref} ngày {row.attested_on.isoformat()}",
        **_att_evidence(row),
    )
    out.due = due
    return out


def run_check(ctx: CheckContext, control: Control, subject: Subject) -> tuple[Outcome, bool]:
    """The outcome of `control` for `subject` and whether it is enforced."""
    fn = CHECKS.get(control.id)
    if fn is not None:
        out = fn(ctx, control, subject)
    elif control.evidence == "attested":
        out = attested(ctx, control, subject)
    else:
        out = no_data(control)
    if out.status == "unknown" and (fn is not None or control.evidence == "live"):
        fallback = attested(ctx, control, subject)
        if fallback.status == "pass":
            fallback.evidence["live"] = out.reason
            out = fallback
    enforced = control.confidence != "unverified"
    if not enforced and out.status == "fail":
        out = Outcome(
            "unknown",
            f"not enforced (unverified requirement); would fail: {out.reason}",
            f"không áp dụng bắt buộc (yêu cầu chưa kiểm chứng); sẽ không đạt: {out.reason_vi}",
            {**out.evidence, "would_fail": True},
            out.due,
            out.overdue,
        )
    return out, enforced


# -- log presence -----------------------------------------------------------------------------


def _fresh(ctx: CheckContext, seen: Seen) -> bool:
    return seen.last is not None and ctx.now - seen.last <= SEEN_WITHIN


def _store_down(ctx: CheckContext) -> Outcome | None:
    if ctx.store is None:
        return unknown("no event store configured", "chưa cấu hình kho sự kiện")
    return None


def logs_seen(ctx: CheckContext, assets: Sequence[AssetRow], what: str, what_vi: str) -> Outcome:
    """Every asset of `assets` sent logs in the last 24 h."""
    down = _store_down(ctx)
    if down is not None:
        return down
    if not assets:
        return unknown(
            f"no {what} among the system's member assets in the inventory",
            f"không có {what_vi} trong danh sách tài sản của hệ thống",
        )
    seen = ctx.seen(assets)
    if ctx.store_error:
        return unknown(
            f"event store unavailable: {ctx.store_error}", "kho sự kiện không truy cập được"
        )
    silent = sorted(a.name for a in assets if not _fresh(ctx, seen[a.name]))
    evidence = {
        "assets": {
            a.name: {
                "last_seen": _iso(seen[a.name].last),
                "sources": seen[a.name].sources[:10],
            }
            for a in assets[:MAX_EVIDENCE_ITEMS]
        },
        "asset_count": len(assets),
        "threshold_hours": int(SEEN_WITHIN.total_seconds() // 3600),
    }
    if silent:
        return failed(
            f"no logs in the last 24 h from {len(silent)} of {len(assets)} {what}: "
            f"{_names(silent)}",
            f"không nhận được nhật ký trong 24 giờ qua từ {len(silent)}/{len(assets)} "
            f"{what_vi}: {_names(silent)}",
            silent=silent,
            **evidence,
        )
    return ok(
        f"logs received in the last 24 h from all {len(assets)} {what}",
        f"đã nhận nhật ký trong 24 giờ qua từ cả {len(assets)} {what_vi}",
        **evidence,
    )


@check("TCVN11930.TECH.SERVER.LOG")
def _server_logs(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    servers = [a for a in subject.assets if "server" in categories(a)]
    return logs_seen(ctx, servers, "servers", "máy chủ")


@check("TCVN11930.TECH.NET.LOG")
def _device_logs(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    devices = [a for a in subject.assets if "network" in categories(a)]
    return logs_seen(ctx, devices, "network and security devices", "thiết bị mạng, bảo mật")


@check("TCVN11930.MGMT.OPS.MONITORING")
def _monitoring(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    logs = logs_seen(ctx, subject.assets, "assets", "tài sản")
    if logs.status != "pass":
        return logs
    missing = _missing_daily_reports(ctx, subject, 7)
    if missing:
        return failed(
            f"logs complete but no daily monitoring report for {len(missing)} of the last 7 "
            f"days: {_names(missing)}",
            f"đủ nhật ký nhưng thiếu báo cáo giám sát ngày cho {len(missing)}/7 ngày gần nhất",
            missing_days=missing,
        )
    return ok(
        "all member assets sent logs in 24 h and a monitoring report exists for each of 7 days",
        "mọi tài sản gửi nhật ký trong 24 giờ và có báo cáo giám sát cho cả 7 ngày",
        **logs.evidence,
    )


def _category_presence(ctx: CheckContext, subject: Subject, needed: Sequence[str]) -> Outcome:
    """Each category of `needed` (web, ids, firewall) has an asset seen in the last 24 h."""
    down = _store_down(ctx)
    if down is not None:
        return down
    labels = {
        "web": ("web-server logs", "nhật ký máy chủ web"),
        "ids": ("IDS/sensor alerts", "cảnh báo từ thiết bị quan trắc/IDS"),
        "firewall": ("firewall logs", "nhật ký tường lửa"),
    }
    by_cat = {c: [a for a in subject.assets if c in categories(a)] for c in needed}
    seen = ctx.seen(subject.assets)
    if ctx.store_error:
        return unknown(
            f"event store unavailable: {ctx.store_error}", "kho sự kiện không truy cập được"
        )
    absent = [c for c in needed if not by_cat[c]]
    silent = [
        c for c in needed if by_cat[c] and not any(_fresh(ctx, seen[a.name]) for a in by_cat[c])
    ]
    evidence = {
        "inputs": {
            c: {
                "assets": [a.name for a in by_cat[c]],
                "seen": [a.name for a in by_cat[c] if _fresh(ctx, seen[a.name])],
            }
            for c in needed
        }
    }
    if absent or silent:
        parts = [f"no {labels[c][0]} source among member assets" for c in absent]
        parts += [f"{labels[c][0]} not received in 24 h" for c in silent]
        parts_vi = [f"không có nguồn {labels[c][1]}" for c in absent]
        parts_vi += [f"không nhận {labels[c][1]} trong 24 giờ" for c in silent]
        return failed("; ".join(parts), "; ".join(parts_vi), **evidence)
    return ok(
        "received in the last 24 h: " + ", ".join(labels[c][0] for c in needed),
        "đã nhận trong 24 giờ qua: " + ", ".join(labels[c][1] for c in needed),
        **evidence,
    )


@check("TT31.MON.MIN_INPUTS")
def _min_inputs(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    return _category_presence(ctx, subject, ("web", "ids", "firewall"))


@check("TCVN11930.TECH.NET.ACCESS_CONTROL")
def _access_control(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    return _category_presence(ctx, subject, ("firewall",))


@check("TCVN11930.TECH.NET.IPS_MALWARE")
def _ips(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    return _category_presence(ctx, subject, ("ids",))


@check("TT31.MON.TLS_VISIBILITY")
def _tls(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    out = _category_presence(ctx, subject, ("web",))
    if out.status == "pass":
        out.reason = "decrypted HTTP logs (web server / WAF / proxy) received in the last 24 h"
        out.reason_vi = "đã nhận nhật ký HTTP giải mã (máy chủ web/WAF/proxy) trong 24 giờ qua"
    return out


@check("TT31.MON.SENSOR_COVERAGE")
def _sensor_coverage(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    down = _store_down(ctx)
    if down is not None:
        return down
    sites = {a.site for a in subject.assets if a.site}
    links = [lk for lk in ctx.links_at(sites) if lk.kind == "internet"]
    if not links:
        return unknown(
            "no Internet link recorded at the sites of the system's assets",
            "chưa ghi nhận đường Internet tại các địa điểm đặt tài sản của hệ thống",
        )
    sensors = {lk.sensor: ctx.asset(lk.sensor) for lk in links if lk.sensor}
    present = [a for a in sensors.values() if a is not None]
    seen = ctx.seen(present)
    uncovered = [lk.code for lk in links if not lk.sensor or sensors.get(lk.sensor) is None]
    silent = [
        lk.code
        for lk in links
        if lk.sensor and sensors.get(lk.sensor) is not None and not _fresh(ctx, seen[lk.sensor])
    ]
    evidence = {"links": {lk.code: lk.sensor for lk in links}}
    if uncovered or silent:
        parts, parts_vi = [], []
        if uncovered:
            parts.append(f"Internet links without a sensor: {_names(uncovered)}")
            parts_vi.append(f"đường Internet chưa có thiết bị quan trắc: {_names(uncovered)}")
        if silent:
            parts.append(f"sensor silent for 24 h on links: {_names(silent)}")
            parts_vi.append(f"thiết bị quan trắc không có dữ liệu 24 giờ: {_names(silent)}")
        return failed("; ".join(parts), "; ".join(parts_vi), **evidence)
    return ok(
        f"all {len(links)} Internet links have a sensor seen in the last 24 h",
        f"cả {len(links)} đường Internet có thiết bị quan trắc hoạt động trong 24 giờ",
        **evidence,
    )


# -- retention --------------------------------------------------------------------------------


def retention_check(
    ctx: CheckContext, subject: Subject, required: int | None, assets: Sequence[AssetRow]
) -> Outcome:
    """The configured retention and each asset's oldest searchable event cover `required`
    days (or the asset's source is younger than that)."""
    if required is None:
        return ok(
            f"no minimum retention is set for level {subject.level}",
            f"không quy định thời gian lưu tối thiểu cho cấp độ {subject.level}",
        )
    if ctx.retention_days < required:
        return failed(
            f"configured retention {ctx.retention_days} d is below the {required} d required",
            f"cấu hình lưu {ctx.retention_days} ngày, thấp hơn {required} ngày yêu cầu",
            configured_days=ctx.retention_days,
            required_days=required,
        )
    down = _store_down(ctx)
    if down is not None:
        return down
    if not assets:
        return unknown(
            "no matching member assets in the inventory", "không có tài sản phù hợp trong danh mục"
        )
    seen = ctx.seen(assets)
    if ctx.store_error:
        return unknown(
            f"event store unavailable: {ctx.store_error}", "kho sự kiện không truy cập được"
        )
    horizon = ctx.now - timedelta(days=required)
    short: list[str] = []
    detail: dict[str, Any] = {}
    for a in assets:
        s = seen[a.name]
        entry: dict[str, Any] = {
            "oldest_event": _iso(s.oldest),
            "source_since": _iso(s.source_since),
        }
        if len(detail) < MAX_EVIDENCE_ITEMS:
            detail[a.name] = entry
        if s.oldest is not None and s.oldest <= horizon:
            continue
        young = s.source_since is not None and s.source_since > horizon
        if young and s.oldest is not None:
            entry["younger_than_requirement"] = True
            continue
        short.append(a.name)
    evidence = {"required_days": required, "configured_days": ctx.retention_days, "assets": detail}
    if short:
        return failed(
            f"oldest searchable event is under {required} days old for {len(short)} of "
            f"{len(assets)} assets: {_names(short)}",
            f"sự kiện cũ nhất chưa đủ {required} ngày với {len(short)}/{len(assets)} tài sản: "
            f"{_names(short)}",
            short=short,
            **evidence,
        )
    return ok(
        f"events searchable for at least {required} days (configured {ctx.retention_days} d)",
        f"sự kiện lưu tra cứu được ít nhất {required} ngày (cấu hình {ctx.retention_days} ngày)",
        **evidence,
    )


def _required_days(ctx: CheckContext, control: Control, level: int) -> int | None:
    value = control.param("retention_days", level)
    if value is None and "retention_days" not in control.params:
        value = ctx.catalogue.retention_days(level)
    return int(value) if value is not None else None


@check("TCVN11930.TECH.NET.LOG_CENTRAL_RETENTION")
def _device_retention(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    devices = [a for a in subject.assets if "network" in categories(a)]
    return retention_check(ctx, subject, _required_days(ctx, control, subject.level), devices)


@check("TCVN11930.TECH.SERVER.LOG_RETENTION")
def _server_retention(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    servers = [a for a in subject.assets if "server" in categories(a)]
    return retention_check(ctx, subject, _required_days(ctx, control, subject.level), servers)


@check("TT31.MON.STORAGE_30D")
def _storage_30d(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    return retention_check(
        ctx, subject, _required_days(ctx, control, subject.level), subject.assets
    )


@check("TCVN14423.LOG.RETENTION_REVIEW")
def _retention_review(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    out = retention_check(ctx, subject, _required_days(ctx, control, subject.level), subject.assets)
    if out.status != "pass":
        return out
    period = control.param("review_period_days", subject.level) or 366
    reviews = ctx.records("log_review", subject, ctx.now - timedelta(days=int(period)))
    if not reviews:
        return unknown(
            f"retention met; no log-review record in the last {period} days "
            "(record kind log_review)",
            f"đủ thời gian lưu; chưa có bản ghi rà soát nhật ký trong {period} ngày",
            **out.evidence,
        )
    out.evidence["last_review"] = utc(reviews[0].occurred_at).isoformat()
    return out


# -- detection rules --------------------------------------------------------------------------


def _log_types(subject: Subject) -> set[str]:
    return {str(s).lower() for a in subject.assets for s in (a.log_sources or [])}


def _covers(entry: RuleEntry, log_type: str) -> bool:
    tokens = {t for t in re.split(r"[._\-/ ]+", log_type) if t}
    parts = {str(v).lower() for v in (entry.logsource or {}).values() if v}
    return bool(tokens & parts)


def rules_cover(ctx: CheckContext, subject: Subject) -> Outcome:
    """An enabled detection rule exists for each log type the system's assets send."""
    if ctx.catalog is None:
        return unknown("no rule catalogue loaded", "chưa nạp danh mục luật phát hiện")
    types = _log_types(subject)
    if not types:
        return unknown(
            "the system's assets declare no log sources",
            "tài sản của hệ thống chưa khai báo nguồn nhật ký",
        )
    enabled = [e for e in ctx.catalog.entries if e.enabled]
    covered = {t: sum(1 for e in enabled if _covers(e, t)) for t in sorted(types)}
    missing = [t for t, n in covered.items() if n == 0]
    if missing:
        return failed(
            f"no enabled detection rule for log types: {_names(missing)}",
            f"chưa có luật phát hiện đang bật cho loại nhật ký: {_names(missing)}",
            rules_per_log_type=covered,
        )
    return ok(
        f"enabled detection rules cover all {len(types)} log types of the system",
        f"luật phát hiện đang bật bao phủ cả {len(types)} loại nhật ký của hệ thống",
        rules_per_log_type=covered,
    )


@check("TCVN14423.MONITORING.SIEM_24X7")
def _siem(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    rules = rules_cover(ctx, subject)
    if rules.status != "pass":
        return rules
    return unknown(
        "correlation rules cover the system; socmon receives no flow-data and tuning records",
        "luật tương quan bao phủ hệ thống; socmon không nhận dữ liệu luồng và bản ghi tinh chỉnh",
        **rules.evidence,
    )


# -- layers -----------------------------------------------------------------------------------


@check("LAYER2.PROFESSIONAL_MONITORING")
def _layer2(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    inputs = _category_presence(ctx, subject, ("web", "ids", "firewall"))
    rules = rules_cover(ctx, subject)
    contract = attested(ctx, control, subject)
    evidence = {
        "inputs": inputs.reason,
        "rules": rules.reason,
        "contract": contract.evidence or contract.reason,
    }
    for part in (inputs, rules, contract):
        if part.status == "fail":
            return Outcome(
                "fail", part.reason, part.reason_vi, evidence, contract.due, contract.overdue
            )
    for part in (inputs, rules):
        if part.status == "unknown":
            return Outcome("unknown", part.reason, part.reason_vi, evidence)
    return Outcome(
        "pass",
        f"monitoring inputs received in 24 h, rules enabled; {contract.reason}",
        f"đủ dữ liệu giám sát trong 24 giờ, luật đang bật; {contract.reason_vi}",
        evidence,
        contract.due,
    )


def _assessment(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    months = control.param("max_age_months", subject.level)
    out = attested(
        ctx,
        control,
        subject,
        also=[
            c
            for c in ("LAYER3.INDEPENDENT_ASSESSMENT", "ND85.ART20.SYSTEM_ASSESSMENT")
            if c != control.id
        ],
        max_age_months=int(months) if months else 12,
    )
    if out.status != "pass":
        return out
    assessor = str((out.evidence.get("detail") or {}).get("assessor") or out.evidence["attester"])
    contracts = ctx.attestations(("LAYER2.PROFESSIONAL_MONITORING",), subject)
    providers = {
        str((r.detail or {}).get("provider") or r.attester).strip().lower() for r in contracts
    }
    if assessor.strip().lower() in providers:
        return failed(
            f"assessor {assessor} is also the layer-2 monitoring provider (not independent)",
            f"đơn vị đánh giá {assessor} cũng là đơn vị giám sát lớp 2 (không độc lập)",
            **out.evidence,
        )
    return out


check("LAYER3.INDEPENDENT_ASSESSMENT", "ND85.ART20.SYSTEM_ASSESSMENT")(_assessment)


def heartbeat(ctx: CheckContext, subject: Subject) -> Outcome:
    beats = ctx.records("connector_heartbeat", subject, ctx.now - SEEN_WITHIN)
    if not beats:
        return failed(
            "no national-monitoring connector heartbeat in the last 24 h",
            "không có tín hiệu kết nối hệ thống giám sát quốc gia trong 24 giờ qua",
        )
    return ok(
        f"connector heartbeat at {utc(beats[0].occurred_at).isoformat()}",
        f"tín hiệu kết nối lúc {utc(beats[0].occurred_at).isoformat()}",
        heartbeat=utc(beats[0].occurred_at).isoformat(),
    )


check("TT31.MON.CONNECT_NATIONAL", "LAW116.MONITORING_CONNECTION")(
    lambda ctx, control, subject: heartbeat(ctx, subject)
)


def ranges_registered(ctx: CheckContext, system: SystemInfo) -> Outcome:
    """All public ranges of the system registered with NCSC, and every public address seen
    for it (inventory or events of the last 30 days) inside a registered range."""
    unregistered = sorted(r.cidr for r in system.ranges if r.ncsc_status != "registered")
    registered = []
    for r in system.ranges:
        if r.ncsc_status == "registered":
            try:
                registered.append(ipaddress.ip_network(r.cidr, strict=False))
            except ValueError:
                unregistered.append(r.cidr)
    addresses: set[str] = set()
    for a in system.assets:
        for ip in a.ips or []:
            try:
                if ipaddress.ip_address(str(ip)).is_global:
                    addresses.add(str(ipaddress.ip_address(str(ip))))
            except ValueError:
                continue
    observed = ctx.observed_public_ips(system.code)
    if observed is not None:
        addresses |= observed
    outside = sorted(
        ip for ip in addresses if not any(ipaddress.ip_address(ip) in net for net in registered)
    )
    evidence = {
        "ranges": {r.cidr: r.ncsc_status for r in system.ranges},
        "public_ips_checked": len(addresses),
        "events_checked": observed is not None,
    }
    if unregistered or outside:
        parts, parts_vi = [], []
        if unregistered:
            parts.append(f"ranges not registered with NCSC: {_names(unregistered)}")
            parts_vi.append(f"dải IP chưa đăng ký với NCSC: {_names(unregistered)}")
        if outside:
            parts.append(f"public IPs outside registered ranges: {_names(outside)}")
            parts_vi.append(f"IP công cộng ngoài các dải đã đăng ký: {_names(outside)}")
        return failed("; ".join(parts), "; ".join(parts_vi), outside=outside, **evidence)
    if not system.ranges and not addresses:
        return ok(
            "no public ranges or public IPs recorded for the system",
            "hệ thống không có dải hoặc IP công cộng được ghi nhận",
            **evidence,
        )
    return ok(
        f"all {len(system.ranges)} public ranges registered; {len(addresses)} public IPs inside them",
        f"cả {len(system.ranges)} dải IP công cộng đã đăng ký; {len(addresses)} IP nằm trong dải",
        **evidence,
    )


@check("LAYER4.NATIONAL_MONITORING_LINK")
def _layer4(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    assert subject.system is not None
    beat = heartbeat(ctx, subject)
    ranges = ranges_registered(ctx, subject.system)
    evidence = {"heartbeat": beat.evidence or beat.reason, **ranges.evidence}
    if beat.status == "fail" or ranges.status == "fail":
        bad = [p for p in (beat, ranges) if p.status == "fail"]
        return failed(
            "; ".join(p.reason for p in bad), "; ".join(p.reason_vi for p in bad), **evidence
        )
    return ok(
        f"{beat.reason}; {ranges.reason}", f"{beat.reason_vi}; {ranges.reason_vi}", **evidence
    )


# -- records ----------------------------------------------------------------------------------


def _missing_daily_reports(ctx: CheckContext, subject: Subject, days: int) -> list[str]:
    reports = ctx.records("monitoring_report", subject, ctx.now - timedelta(days=days + 1))
    have = {
        utc(r.occurred_at).date()
        for r in reports
        if str((r.detail or {}).get("period", "daily")) == "daily"
    }
    wanted = [ctx.today - timedelta(days=i) for i in range(1, days + 1)]
    return [d.isoformat() for d in wanted if d not in have]


@check("TT31.MON.REPORTS")
def _reports(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    missing_daily = _missing_daily_reports(ctx, subject, 7)
    recent = ctx.records("monitoring_report", subject, ctx.now - timedelta(days=184))
    weekly = [r for r in recent if (r.detail or {}).get("period") == "weekly"]
    missing_weeks = [
        i
        for i in range(4)
        if not any(
            ctx.now - timedelta(days=7 * (i + 1))
            < utc(r.occurred_at)
            <= ctx.now - timedelta(days=7 * i)
            for r in weekly
        )
    ]
    half = [r for r in recent if (r.detail or {}).get("period") == "half_year"]
    problems, problems_vi = [], []
    if missing_daily:
        problems.append(f"daily report missing for {len(missing_daily)} of the last 7 days")
        problems_vi.append(f"thiếu báo cáo ngày cho {len(missing_daily)}/7 ngày")
    if missing_weeks:
        problems.append(f"weekly report missing for {len(missing_weeks)} of the last 4 weeks")
        problems_vi.append(f"thiếu báo cáo tuần cho {len(missing_weeks)}/4 tuần")
    if not half:
        problems.append("no 6-monthly report in the last 184 days")
        problems_vi.append("không có báo cáo 6 tháng trong 184 ngày qua")
    evidence = {"missing_days": missing_daily, "reports_184d": len(recent)}
    if problems:
        return failed("; ".join(problems), "; ".join(problems_vi), **evidence)
    return ok(
        "daily, weekly and 6-monthly monitoring reports on record",
        "đủ báo cáo giám sát ngày, tuần và 6 tháng",
        **evidence,
    )


def recent_record(
    ctx: CheckContext,
    control: Control,
    subject: Subject,
    kind: str,
    days: int,
    what: str,
    what_vi: str,
) -> Outcome:
    rows = ctx.records(kind, subject, ctx.now - timedelta(days=days))
    if rows:
        at = utc(rows[0].occurred_at)
        out = ok(
            f"{what} recorded on {at.date().isoformat()} (within {days} days)",
            f"{what_vi} ngày {at.date().isoformat()} (trong {days} ngày)",
            record_id=rows[0].id,
            occurred_at=at.isoformat(),
            summary=rows[0].summary,
        )
        out.due = at.date() + timedelta(days=days)
        return out
    att = attested(ctx, control, subject, max_age_days=days)
    if att.status == "pass":
        return att
    older = ctx.records(kind, subject, ctx.now - timedelta(days=800))
    out = failed(
        f"no {what} recorded in the last {days} days",
        f"chưa ghi nhận {what_vi} trong {days} ngày qua",
    )
    if older:
        last = utc(older[0].occurred_at).date()
        out.evidence["last"] = last.isoformat()
        out.due, out.overdue = last + timedelta(days=days), True
    return out


@check("TCVN14423.IR.DRILL")
def _drill(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    days = control.param("period_days", subject.level) or 366
    return recent_record(ctx, control, subject, "drill", int(days), "drill", "diễn tập")


@check("ND85.ART20.TRAINING_DRILL")
def _training_drill(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    return recent_record(ctx, control, subject, "drill", 366, "drill", "diễn tập")


@check("TCVN14423.VULN.SCAN")
def _scan(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    days = control.param("period_days", subject.level) or 366
    return recent_record(
        ctx, control, subject, "scan", int(days), "vulnerability scan", "rà quét lỗ hổng"
    )


@check("TCVN11930.MGMT.OPS.VULNERABILITY")
def _vuln(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    days = 366 if subject.level <= 2 else 184
    return recent_record(
        ctx, control, subject, "scan", days, "vulnerability scan", "rà quét lỗ hổng"
    )


@check("TCVN14423.PENTEST")
def _pentest(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    days = control.param("period_days", subject.level) or 366
    return recent_record(
        ctx, control, subject, "pentest", int(days), "penetration test", "kiểm thử xâm nhập"
    )


@check("TCVN11930.TECH.DATA.BACKUP")
def _backup(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    return recent_record(
        ctx, control, subject, "backup", 7, "successful backup", "sao lưu thành công"
    )


@check("TT03.ART18.INFO_SHARING")
def _sharing(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    return recent_record(
        ctx,
        control,
        subject,
        "info_sharing",
        92,
        "information-sharing package",
        "gói chia sẻ thông tin",
    )


@check("TCVN14423.BACKUP.RESTORE_TEST")
def _restore(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    days = control.param("period_days", subject.level)
    return attested(ctx, control, subject, max_age_days=int(days) if days else None)


@check("ND85.ART20.ORG_ASSESSMENT")
def _org_assessment(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    months = control.param("max_age_months", subject.level)
    return attested(ctx, control, subject, max_age_months=int(months) if months else None)


def _due_dates(ctx: CheckContext, control: Control) -> list[date]:
    due = control.params.get("due")
    days = [due] if isinstance(due, str) else list(due or [])
    out = []
    for year in (ctx.today.year - 1, ctx.today.year, ctx.today.year + 1):
        for mmdd in days:
            month, day = (int(x) for x in str(mmdd).split("-"))
            out.append(date(year, month, day))
    return sorted(out)


@check("TT03.ART17.ANNUAL_REPORT", "TT20.NET.PERIODIC_REPORTS", "ND331.ANNUAL_REPORT")
def _periodic_report(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    """A report is due on fixed days: one attested since the previous due day counts."""
    dates = _due_dates(ctx, control)
    passed = [d for d in dates if d < ctx.today]
    upcoming = [d for d in dates if d >= ctx.today]
    last_due = passed[-1]
    before = [d for d in passed if d < last_due]
    window_start = before[-1] if before else last_due - timedelta(days=366)
    rows = [r for r in ctx.attestations((control.id,), subject) if r.attested_on > window_start]
    if not rows:
        out = failed(
            f"no report attested for the period due {last_due.isoformat()}",
            f"chưa có báo cáo cho kỳ hạn {last_due.isoformat()}",
        )
        out.due, out.overdue = last_due, True
        return out
    out = ok(
        f"report {rows[0].document_ref} of {rows[0].attested_on.isoformat()} "
        f"for the period due {last_due.isoformat()}",
        f"báo cáo {rows[0].document_ref} ngày {rows[0].attested_on.isoformat()} "
        f"cho kỳ hạn {last_due.isoformat()}",
        **_att_evidence(rows[0]),
    )
    out.due = upcoming[0] if upcoming else None
    return out


@check("ND331.TRANSITION")
def _transition(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    out = attested(ctx, control, subject)
    deadlines = sorted(date.fromisoformat(str(d)) for d in control.params.get("deadlines") or [])
    upcoming = [d for d in deadlines if d >= ctx.today]
    if out.status == "fail" and not out.overdue:
        passed = [d for d in deadlines if d < ctx.today]
        if passed:
            out.due, out.overdue = passed[-1], True
        elif upcoming:
            out.due = upcoming[0]
    return out


@check("ND85.LEVEL.APPROVED")
def _level_approved(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    assert subject.system is not None
    row = subject.system.row
    if row.dossier_status == "approved":
        number = row.decision_number or "?"
        when = row.decision_date.isoformat() if row.decision_date else "?"
        return ok(
            f"level {row.level} approved by decision {number} of {when}",
            f"cấp độ {row.level} được phê duyệt theo quyết định {number} ngày {when}",
            decision_number=row.decision_number,
            decision_date=row.decision_date.isoformat() if row.decision_date else None,
        )
    return failed(
        f"level dossier is {row.dossier_status}, not approved",
        f"hồ sơ đề xuất cấp độ đang ở trạng thái {row.dossier_status}, chưa phê duyệt",
        dossier_status=row.dossier_status,
    )


# -- incidents --------------------------------------------------------------------------------

# Control -> the playbook report tasks (playbooks/library/_reporting.yml) that carry its duty.
REPORT_TASKS: dict[str, tuple[str, ...]] = {
    "TT20.IR.NOTIFY_5D": ("report-incident-notice",),
    "TT20.IR.ESCALATION_REPORTS": ("report-initial", "report-end"),
    "ND331.INCIDENT.REPORT_72H": ("report-72h",),
    "ND331.INCIDENT.SERIOUS_24H": ("report-serious-notice-24h",),
}


def _late(ctx: CheckContext, task: PlaybookTask) -> bool:
    if task.breached_at is not None:
        return True
    if task.due_at is None:
        return False
    due = utc(task.due_at)
    if task.done_at is not None:
        return utc(task.done_at) > due
    return ctx.now > due


@check(*REPORT_TASKS)
def _incident_reports(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    assert subject.system is not None
    incs, fallback = ctx.incidents_of(subject.system)
    evidence: dict[str, Any] = {
        "incidents": [i.id for i in incs],
        "matched_by_unit_and_level": fallback,
        "window_days": INCIDENT_WINDOW.days,
    }
    if not incs:
        return ok(
            "no incident of the system in the last 90 days",
            "không có sự cố nào của hệ thống trong 90 ngày qua",
            **evidence,
        )
    tasks = ctx.report_tasks([i.id for i in incs])
    with_runs = ctx.has_runs([i.id for i in incs])
    wanted = REPORT_TASKS[control.id]
    late, handled, untracked = [], [], []
    for inc in incs:
        mine = [t for t in tasks[inc.id] if t.task_id in wanted]
        if inc.id not in with_runs:
            untracked.append(inc.id)
        elif any(_late(ctx, t) for t in mine):
            late.append(inc.id)
        else:
            handled.append(inc.id)
    evidence |= {"late": late, "on_time": handled, "without_playbook_run": untracked}
    if late:
        return failed(
            f"reporting deadline missed for incidents {_names(map(str, late))}",
            f"trễ hạn báo cáo với sự cố {_names(map(str, late))}",
            **evidence,
        )
    if untracked:
        return unknown(
            f"{len(untracked)} incidents have no playbook run recording the report",
            f"{len(untracked)} sự cố chưa có quy trình ứng phó ghi nhận việc báo cáo",
            **evidence,
        )
    return ok(
        f"all {len(incs)} incidents of the last 90 days reported within the deadline",
        f"cả {len(incs)} sự cố trong 90 ngày được báo cáo đúng hạn",
        **evidence,
    )


@check("TCVN11930.MGMT.OPS.INCIDENT")
def _incident_records(ctx: CheckContext, control: Control, subject: Subject) -> Outcome:
    assert subject.system is not None
    incs, fallback = ctx.incidents_of(subject.system)
    incomplete = [str(i.id) for i in incs if i.category is None or i.assignee_id is None]
    evidence = {"incidents": [i.id for i in incs], "matched_by_unit_and_level": fallback}
    if not incs:
        return ok(
            "no incident of the system in the last 90 days",
            "không có sự cố nào của hệ thống trong 90 ngày qua",
            **evidence,
        )
    if incomplete:
        return failed(
            f"incidents without classification or owner: {_names(incomplete)}",
            f"sự cố chưa phân loại hoặc chưa có người phụ trách: {_names(incomplete)}",
            **evidence,
        )
    return ok(
        f"all {len(incs)} incidents of the last 90 days classified and owned",
        f"cả {len(incs)} sự cố trong 90 ngày đã phân loại và có người phụ trách",
        **evidence,
    )
