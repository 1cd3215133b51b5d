"""Sigma's taxonomy → socmon's ECS: the one place that says which events a rule reads.

SigmaHQ rules name log sources (``category: process_creation, product: windows``) and fields
(``CommandLine``, ``EventID``, ``cs-uri-query``) in Sigma's taxonomy. socmon stores events in
ECS as Elastic's integrations lay them out (Windows: ``winlog.event_data.*`` kept, as
Winlogbeat does). :func:`variants` rewrites a rule, with pySigma processing pipelines, into one
copy per kind of socmon event that can carry its log source, each with the log-source
conditions made explicit:

- a generic Windows category is matched on every channel that carries it, as pySigma's
  Windows and Sysmon pipelines define: ``process_creation`` is Sysmon event 1 *and* Security
  event 4688 (where ``Image`` is ``NewProcessName``, ``ParentImage`` ``ParentProcessName``);
  registry events are Sysmon 12–14 and Security 4657;
- a Windows service becomes its channel (``security`` → ``winlog.channel: Security``);
- Linux, web-server and firewall log sources become the ``event.dataset`` values of socmon's
  parsers, with their fields renamed to the ECS (or vendor) fields those parsers write;
- rules already written against socmon's ECS (every field dotted, e.g. ``event.dataset``) —
  socmon's own rules — are used as they are.

A log source no socmon parser produces (zeek, proxy, cloud, macOS…) raises
:class:`UnmappedLogsource` with the reason: evaluating such a rule against unrelated events
would misfire (a negation-only zeek rule matches every event without its field), so it is
reported, not run. The streaming matcher and hunts (pySigma's Elasticsearch backend) both use
these variants, so a rule means the same thing in both.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sigma.conditions import SigmaCondition
from sigma.exceptions import SigmaError
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping, sysmon_pipeline
from sigma.pipelines.windows.windows import (
    generic_logsource_to_windows_audit_event_mapping,
    windows_audit_pipeline,
    windows_generic_category_channel_mapping,
    windows_logsource_pipeline,
)
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    FieldFunctionTransformation,
    FieldMappingTransformation,
    ValueListPlaceholderTransformation,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from socmon.errors import SocmonError

# Windows: the System fields by their ECS (Winlogbeat) names; everything else is EventData.
WINDOWS_SYSTEM_FIELDS: Mapping[str, str] = {
    "EventID": "winlog.event_id",
    "Channel": "winlog.channel",
    "Provider_Name": "winlog.provider_name",
    "Computer": "winlog.computer_name",
    "EventRecordID": "winlog.record_id",
    "Level": "winlog.level",
    "Task": "winlog.task",
    "Opcode": "winlog.opcode",
    "Keywords": "winlog.keywords",
    "Version": "winlog.version",
    "ProcessID": "winlog.process.pid",
    "ThreadID": "winlog.process.thread.id",
    "UserID": "winlog.user.identifier",
}
WINDOWS_DATA_PREFIX = "winlog.event_data."

# Sigma web-server taxonomy (W3C extended log names) → ECS as the Apache/Nginx parsers write it.
WEBSERVER_FIELDS: Mapping[str, str] = {
    "c-ip": "source.ip",
    "c-uri": "url.original",
    "c-uri-query": "url.query",
    "cs-uri-query": "url.query",
    "cs-uri-stem": "url.path",
    "cs-uri": "url.original",
    "c-uri-stem": "url.path",
    "c-uri-extension": "url.extension",
    "cs-method": "http.request.method",
    "sc-status": "http.response.status_code",
    "cs-user-agent": "user_agent.original",
    "c-useragent": "user_agent.original",
    "cs-referer": "http.request.referrer",
    "cs-referrer": "http.request.referrer",
    "cs-host": "url.domain",
    "cs-version": "http.version",
    "cs-bytes": "http.request.bytes",
    "sc-bytes": "http.response.bytes",
    "cs-username": "user.name",
    "s-ip": "destination.ip",
    "s-port": "destination.port",
    "c-port": "source.port",
}

# Sigma firewall taxonomy → ECS (every firewall parser writes these).
FIREWALL_FIELDS: Mapping[str, str] = {
    "src_ip": "source.ip",
    "dst_ip": "destination.ip",
    "src_port": "source.port",
    "dst_port": "destination.port",
    "action": "event.action",
    "protocol": "network.transport",
    "username": "user.name",
}

# Linux auditd records: `type` is the record type, the rest are the record's keys.
AUDITD_FIELDS: Mapping[str, str] = {"type": "auditd.log.record_type"}

LINUX_DATASETS = ("system.auth", "syslog", "journald", "auditd.log")
WEBSERVER_DATASETS = ("apache.access", "nginx.access", "apache.error", "nginx.error")
FIREWALL_DATASETS = (
    "fortinet.fortigate",
    "cisco_asa.log",
    "panw.panos",
    "checkpoint.firewall",
    "sophos.xg",
    "iptables.log",
    "pfsense.log",
    "juniper_srx.log",
)


class UnmappedLogsource(SocmonError):
    """No socmon source carries the rule's log source (the rule is reported, not run)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Variant:
    """One rewritten copy of a rule: ``route`` names the events it reads (``sysmon``…)."""

    route: str
    rule: SigmaRule


def _windows_field(name: str | None) -> str:
    if name is None or name.startswith("winlog."):
        return name or ""
    return WINDOWS_DATA_PREFIX + name


# pysigma-pipeline-windows annotates this table with `ast.Dict` (sic); it is a plain dict.
_AUDIT_CATEGORIES: frozenset[str] = frozenset(generic_logsource_to_windows_audit_event_mapping)  # type: ignore[call-overload]


def _field_table(fields: Mapping[str, str]) -> dict[str | None, str | list[str]]:
    return {k: v for k, v in fields.items()}


def _windows_ecs() -> ProcessingItem:
    return ProcessingItem(
        identifier="socmon_windows_ecs",
        transformation=FieldFunctionTransformation(
            _field_table(WINDOWS_SYSTEM_FIELDS), _windows_field
        ),
        rule_conditions=[LogsourceCondition(product="windows")],
    )


def _placeholder_pipeline(values: Mapping[str, Sequence[str]]) -> ProcessingPipeline:
    """Expand ``%name%`` placeholders (``|expand``) from configured value lists."""
    return ProcessingPipeline(
        name="socmon-placeholders",
        items=[
            ProcessingItem(
                identifier="socmon_placeholders",
                transformation=ValueListPlaceholderTransformation(),
            )
        ],
        vars={k: list(v) for k, v in values.items()},
    )


def _pipeline(*parts: ProcessingPipeline | list[ProcessingItem]) -> ProcessingPipeline:
    pipes = [p if isinstance(p, ProcessingPipeline) else ProcessingPipeline(items=p) for p in parts]
    return sum(pipes[1:], pipes[0])


def _prefixed(prefix: str, explicit: Mapping[str, str]) -> Callable[[str | None], str]:
    def rename(name: str | None) -> str:
        if name is None:
            return ""
        return explicit.get(name, name if "." in name else prefix + name)

    return rename


def _dataset_route(
    datasets: Sequence[str], fields: Mapping[str, str], prefix: str = ""
) -> list[ProcessingItem]:
    """Rename the rule's fields, then require ``event.dataset`` to be one of ``datasets``."""
    rename: FieldMappingTransformation
    if prefix:
        rename = FieldFunctionTransformation(_field_table(fields), _prefixed(prefix, fields))
    else:
        rename = FieldMappingTransformation(_field_table(fields))
    return [
        ProcessingItem(identifier="socmon_fields", transformation=rename),
        ProcessingItem(
            identifier="socmon_dataset",
            transformation=AddConditionTransformation({"event.dataset": list(datasets)}),
        ),
    ]


# (category, product, service) of the non-Windows log sources socmon's parsers produce, with the
# datasets that carry them and the field renaming. ``None`` matches any value.
_OTHER_ROUTES: list[
    tuple[tuple[str | None, str | None, str | None], str, Callable[[], list[ProcessingItem]]]
] = [
    (
        (None, "linux", "auditd"),
        "auditd",
        lambda: _dataset_route(("auditd.log",), AUDITD_FIELDS, "auditd.log."),
    ),
    ((None, "linux", "sshd"), "linux_sshd", lambda: _dataset_route(("system.auth",), {})),
    ((None, "linux", "auth"), "linux_auth", lambda: _dataset_route(("system.auth",), {})),
    ((None, "linux", "sudo"), "linux_sudo", lambda: _dataset_route(("system.auth",), {})),
    ((None, "linux", "syslog"), "linux_syslog", lambda: _dataset_route(("syslog", "journald"), {})),
    ((None, "linux", "cron"), "linux_cron", lambda: _dataset_route(("syslog", "journald"), {})),
    ((None, "linux", None), "linux", lambda: _dataset_route(LINUX_DATASETS, {})),
    (
        ("webserver", None, None),
        "webserver",
        lambda: _dataset_route(WEBSERVER_DATASETS, WEBSERVER_FIELDS),
    ),
    (
        (None, "apache", None),
        "apache",
        lambda: _dataset_route(("apache.access", "apache.error"), WEBSERVER_FIELDS),
    ),
    (
        (None, "nginx", None),
        "nginx",
        lambda: _dataset_route(("nginx.access", "nginx.error"), WEBSERVER_FIELDS),
    ),
    (
        ("firewall", None, None),
        "firewall",
        lambda: _dataset_route(FIREWALL_DATASETS, FIREWALL_FIELDS),
    ),
    (
        (None, "fortigate", None),
        "fortigate",
        lambda: _dataset_route(("fortinet.fortigate",), {}, "fortinet.firewall."),
    ),
    (
        (None, "cisco", None),
        "cisco",
        lambda: _dataset_route(("cisco_ios.log", "cisco_asa.log"), {}),
    ),
]

# Linux categories that only Sysmon for Linux / eBPF agents log; socmon has no such source.
_LINUX_UNSOURCED = {"process_creation", "file_event", "network_connection", "file_change"}


def _fields(rule: SigmaRule) -> set[str | None]:
    out: set[str | None] = set()

    def walk(item: SigmaDetection | SigmaDetectionItem) -> None:
        if isinstance(item, SigmaDetection):
            for sub in item.detection_items:
                walk(sub)
        else:
            out.add(item.field)

    for detection in rule.detection.detections.values():
        walk(detection)
    return out


def is_native(rule: SigmaRule) -> bool:
    """True for a rule written against socmon's ECS: every field it reads is dotted."""
    fields = _fields(rule)
    return bool(fields) and all(f is not None and "." in f for f in fields)


@cache
def _windows_pipelines() -> dict[str, ProcessingPipeline]:
    return {
        "sysmon": _pipeline(sysmon_pipeline(), windows_logsource_pipeline(), [_windows_ecs()]),
        "security": _pipeline(
            windows_audit_pipeline(), windows_logsource_pipeline(), [_windows_ecs()]
        ),
        "windows": _pipeline(windows_logsource_pipeline(), [_windows_ecs()]),
    }


_ROUTE_PIPELINES: dict[str, ProcessingPipeline] = {}


def _route_pipeline(route: str, items: Callable[[], list[ProcessingItem]]) -> ProcessingPipeline:
    if route not in _ROUTE_PIPELINES:
        _ROUTE_PIPELINES[route] = ProcessingPipeline(name=f"socmon-{route}", items=items())
    return _ROUTE_PIPELINES[route]


def _routes(rule: SigmaRule) -> list[tuple[str, ProcessingPipeline]]:
    ls = rule.logsource
    category, product, service = ls.category, ls.product, ls.service
    if product == "windows":
        pipes = _windows_pipelines()
        if service is not None or category in windows_generic_category_channel_mapping:
            return [("windows", pipes["windows"])]
        routes: list[tuple[str, ProcessingPipeline]] = []
        if category in sysmon_generic_logsource_eventid_mapping:
            routes.append(("sysmon", pipes["sysmon"]))
        if category in _AUDIT_CATEGORIES:
            routes.append(("security", pipes["security"]))
        if routes:
            return routes
        raise UnmappedLogsource(
            f"no socmon source carries Windows log source category={category!r} "
            "(no Sysmon event or Security audit event for it)"
        )
    if product == "linux" and category in _LINUX_UNSOURCED:
        raise UnmappedLogsource(
            f"no socmon source carries Linux {category} (needs Sysmon for Linux or an eBPF agent)"
        )
    for (cat, prod, svc), route, items in _OTHER_ROUTES:
        if (
            (cat is None or cat == category)
            and (prod is None or prod == product)
            and (svc is None or svc == service)
        ):
            return [(route, _route_pipeline(route, items))]
    raise UnmappedLogsource(
        "no socmon source carries log source "
        + ", ".join(
            f"{k}={v}"
            for k, v in (("category", category), ("product", product), ("service", service))
            if v
        )
    )


def variants(
    rule: SigmaRule, placeholders: Mapping[str, Sequence[str]] | None = None
) -> list[SigmaRule]:
    """Fresh copies of ``rule`` rewritten to socmon's ECS, one per kind of event that can carry
    its log source (OR them). Raises :class:`UnmappedLogsource` when no socmon source can."""
    found, _ = route_variants(rule, placeholders)
    return [v.rule for v in found]


def route_variants(
    rule: SigmaRule, placeholders: Mapping[str, Sequence[str]] | None = None
) -> tuple[list[Variant], list[str]]:
    """Like :func:`variants`, with the name of each copy's route (``sysmon``, ``security``…),
    and the routes that could not be mapped as ``"route: reason"`` (e.g. a registry rule whose
    fields Security event 4657 lacks still runs on Sysmon events)."""
    if is_native(rule):
        routes: list[tuple[str, ProcessingPipeline]] = [("native", ProcessingPipeline(items=[]))]
    else:
        routes = _routes(rule)
    found: list[Variant] = []
    failed: list[str] = []
    for route, pipeline in routes:
        clone = _copy(rule)
        try:
            if placeholders:
                _placeholder_pipeline(placeholders).apply(clone)
            pipeline.apply(clone)
        except SigmaError as e:
            failed.append(f"{route}: {e.args[0] if e.args else type(e).__name__}")
            continue
        found.append(Variant(route, clone))
    if not found:
        raise UnmappedLogsource("field mapping failed: " + "; ".join(failed))
    return found, failed


def _copy(rule: SigmaRule) -> SigmaRule:
    """A copy the pipelines can rewrite without touching ``rule``.

    Structural rather than ``copy.deepcopy`` (several times faster, and start-up is mostly
    this): everything a processing pipeline changes — the detections and their items (field names, value lists), the conditions, the tracking sets — is new; the
    values themselves (pySigma replaces them, never edits them), the source location and the
    metadata are shared.
    """
    clone = copy.copy(rule)
    clone.applied_processing_items = set(rule.applied_processing_items)
    clone.custom_attributes = dict(rule.custom_attributes)
    detection = copy.copy(rule.detection)
    detection.detections = {k: _copy_item(v) for k, v in rule.detection.detections.items()}
    detection.condition = list(rule.detection.condition)
    detection.parsed_condition = [
        SigmaCondition(c, detection, detection.source) for c in detection.condition
    ]
    clone.detection = detection
    clone._conversion_result = None
    clone._conversion_states = None
    clone._output = True
    return clone


def _copy_item(item: SigmaDetection | SigmaDetectionItem) -> Any:
    new = copy.copy(item)
    new.parent = None
    if isinstance(item, SigmaDetection):
        assert isinstance(new, SigmaDetection)
        new.detection_items = [_copy_item(i) for i in item.detection_items]
        return new
    assert isinstance(new, SigmaDetectionItem)
    new.value = list(item.value)
    new.modifiers = list(item.modifiers)
    if item.original_value is not None:
        new.original_value = list(item.original_value)
    new.applied_processing_items = set(item.applied_processing_items)
    return new


def describe() -> dict[str, Any]:
    """The mapping as data (for docs and `rules check --json`)."""
    return {
        "windows_system_fields": dict(WINDOWS_SYSTEM_FIELDS),
        "windows_data_prefix": WINDOWS_DATA_PREFIX,
        "webserver_fields": dict(WEBSERVER_FIELDS),
        "firewall_fields": dict(FIREWALL_FIELDS),
        "auditd_fields": dict(AUDITD_FIELDS),
        "routes": [
            {"category": c, "product": p, "service": s, "route": r}
            for (c, p, s), r, _ in _OTHER_ROUTES
        ],
    }
