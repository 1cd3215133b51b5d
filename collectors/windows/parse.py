"""One Windows event as JSON to ECS, laid out as Winlogbeat lays it out. Pure, no I/O.

Accepted shapes (one event per message):

- the `evtx` package's JSON (`{"Event": {"System": {...}, "EventData": {...}}}`, XML
  attributes under `#attributes`), compact or pretty-printed - what `socmon import evtx`
  and the watched folder produce, and the format of the SigmaHQ regression samples;
- NXLog `im_msvistalog` JSON (`EventID`, `Channel`, `Hostname`, `EventTime`, `SourceName`
  or `ProviderName`, event data fields at the top level);
- Winlogbeat / Elastic Agent documents (`winlog.*`, nested or as dotted keys); their other
  ECS fields are kept.

Output (Winlogbeat's layout): `@timestamp` (UTC, microseconds), `event.code` (EventID as a
string), `event.provider`, `event.kind: event`, `event.module` where Winlogbeat sets one
(`security` for the Security channel, `sysmon` for Sysmon, `powershell` for both PowerShell
channels; absent otherwise, as in Winlogbeat), `event.dataset` by channel (`windows.security`,
`windows.system`, `windows.application`, `windows.sysmon_operational`, `windows.powershell`,
`windows.powershell_operational`, else `windows.other`), `event.outcome` from the audit
keywords, `host.name` (the event's Computer), `log.level`, `message` when the source has a
rendered one, `event.original`, and `winlog.*`: `channel`, `event_id` (int),
`provider_name`, `provider_guid` (`{UPPER-CASE}`), `computer_name`, `record_id` (int),
`process.pid`, `process.thread.id`, `user.identifier`, `version`, `activity_id`,
`related_activity_id`, `keywords` (standard keyword names), `task`/`opcode` when rendered,
`event_data.*` and `user_data.*`.

`winlog.event_data` keeps every EventData `Data` item by its name, as a string (Sigma rules
match on these names): numbers as decimal text, booleans as `true`/`false`, empty items as
"", Windows line endings as in Winlogbeat (CRLF -> LF, trailing newlines removed); unnamed
items become `param1..N`; `Binary` is kept. `winlog.user_data` flattens the UserData element:
`xml_name` is its name, children (and attributes of nested elements) are joined with `_`
(`Certificate_fileRef`), `xmlns` attributes are dropped, every leaf is a string.

A source context may carry `extra["log.file.path"]` (the file an event was read from); it is
written to `log.file.path`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from collectors.parsing import EcsDoc, ParseError, SourceContext

__all__ = ["dataset_for_channel", "parse"]

_DATASETS: dict[str, str] = {
    "security": "windows.security",
    "system": "windows.system",
    "application": "windows.application",
    "microsoft-windows-sysmon/operational": "windows.sysmon_operational",
    "windows powershell": "windows.powershell",
    "microsoft-windows-powershell/operational": "windows.powershell_operational",
}
OTHER_DATASET = "windows.other"
_MODULES: dict[str, str] = {
    "security": "security",
    "microsoft-windows-sysmon/operational": "sysmon",
    "windows powershell": "powershell",
    "microsoft-windows-powershell/operational": "powershell",
}
# System/Level values (winmeta.xml) as Winlogbeat renders them, lower-cased.
_LEVELS: dict[int, str] = {
    0: "information",  # LogAlways: audit events; Windows renders "Information"
    1: "critical",
    2: "error",
    3: "warning",
    4: "information",
    5: "verbose",
}
_NXLOG_SEVERITIES: dict[str, str] = {
    "DEBUG": "verbose",
    "INFO": "information",
    "WARNING": "warning",
    "ERROR": "error",
    "CRITICAL": "critical",
}
# Standard keyword bits (winmeta.xml) and their rendered names.
_KEYWORDS: tuple[tuple[int, str], ...] = (
    (0x0001000000000000, "Response Time"),
    (0x0002000000000000, "WDI Context"),
    (0x0004000000000000, "WDI Diag"),
    (0x0008000000000000, "SQM"),
    (0x0010000000000000, "Audit Failure"),
    (0x0020000000000000, "Audit Success"),
    (0x0040000000000000, "Correlation Hint"),
    (0x0080000000000000, "Classic"),
)
_OUTCOMES = {"Audit Success": "success", "Audit Failure": "failure"}
# NXLog im_msvistalog fields that describe the event; every other top-level field is event data.
_NXLOG_SYSTEM = frozenset(
    {
        "AccountName",
        "AccountType",
        "ActivityID",
        "Category",
        "Channel",
        "Computer",
        "Domain",
        "ERROR_EVT_UNRESOLVED",
        "EventID",
        "EventReceivedTime",
        "EventRecordID",
        "EventTime",
        "EventType",
        "ExecutionProcessID",
        "ExecutionThreadID",
        "Hostname",
        "Keywords",
        "Level",
        "LevelValue",
        "Message",
        "Opcode",
        "OpcodeValue",
        "ProcessID",
        "ProviderGuid",
        "ProviderName",
        "RecordNumber",
        "RelatedActivityID",
        "Severity",
        "SeverityValue",
        "SourceModuleName",
        "SourceModuleType",
        "SourceName",
        "Task",
        "TaskValue",
        "ThreadID",
        "UserID",
        "Version",
    }
)
_SYSTEM_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z\Z")
_WINLOGBEAT_DROP = frozenset({"@metadata", "_id", "_index", "_type", "_score"})


def dataset_for_channel(channel: str | None) -> str:
    """`event.dataset` for a Windows channel name (case-insensitive); `windows.other` if unknown."""
    return _DATASETS.get(channel.lower(), OTHER_DATASET) if channel else OTHER_DATASET


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """Parse one Windows event (JSON in one of the shapes above) into an ECS document."""
    text = message.strip()
    if not text.startswith("{"):
        raise ParseError("not a JSON object (a Windows event is one JSON document)")
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise ParseError(f"invalid JSON: {e}") from e
    if not isinstance(obj, dict):
        raise ParseError("not a JSON object (a Windows event is one JSON document)")
    if isinstance(obj.get("_source"), dict) and "Event" not in obj and "winlog" not in obj:
        obj = obj["_source"]  # an Elasticsearch hit exported as is
    event = obj.get("Event")
    if isinstance(event, dict):
        doc = _from_evtx(event)
    elif isinstance(obj.get("winlog"), dict) or any(k.startswith("winlog.") for k in obj):
        doc = _from_winlogbeat(obj)
    elif "EventID" in obj:
        doc = _from_nxlog(obj, ctx)
    else:
        raise ParseError(
            "JSON without a Windows event: expected Event.System (evtx), winlog (Winlogbeat) "
            "or EventID (NXLog)"
        )
    doc["event"]["original"] = message
    path = ctx.extra.get("log.file.path")
    if path:
        doc.setdefault("log", {})["file"] = {"path": str(path)}
    return doc


# --------------------------------------------------------------------------- shared helpers


def _attrs(node: Any) -> Mapping[str, Any]:
    if isinstance(node, dict):
        attrs = node.get("#attributes")
        if isinstance(attrs, dict):
            return attrs
    return {}


def _int(value: Any) -> int | None:
    """An integer from an int, a decimal or `0x` hex string, or an evtx `{"#text": ...}` node."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return _int(value.get("#text"))
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 16) if text[:2].lower() == "0x" else int(text)
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    """A Data value as Winlogbeat writes it: a string, CRLF as LF, no trailing newlines."""
    if isinstance(value, str):
        if "\r" in value or value.endswith("\n"):
            return value.replace("\r\n", "\n").rstrip("\n")
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        if "#text" in value:
            return _text(value["#text"])
        return orjson.dumps(value).decode()
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    return str(value)


def _value(value: Any) -> str | list[str]:
    """A named Data item: a string, or a list of strings for a repeated item."""
    if isinstance(value, list):
        return [_text(v) for v in value]
    return _text(value)


def _guid(value: Any) -> str | None:
    if not value or not isinstance(value, str):
        return None
    inner = value.strip().strip("{}")
    return "{" + inner.upper() + "}" if inner else None


def _timestamp(value: Any, ctx: SourceContext | None = None) -> str | None:
    """ISO 8601 UTC with microseconds and `Z`; naive times are read in the source's zone."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=(ctx.tz if ctx and ctx.tz else UTC))
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _system_time(value: Any) -> str | None:
    """`@timestamp` from an evtx SystemTime; the reader writes it as `...THH:MM:SS.fffffffZ`."""
    if isinstance(value, str):
        m = _SYSTEM_TIME.match(value)
        if m:  # the common case, without building a datetime
            return f"{m.group(1)}.{(m.group(2) or '')[:6].ljust(6, '0')}Z"
    return _timestamp(value)


def _keyword_names(mask: int | None) -> list[str]:
    if not mask:
        return []
    mask &= 0xFFFFFFFFFFFFFFFF  # NXLog prints the mask as a signed 64-bit number
    return [name for bit, name in _KEYWORDS if mask & bit]


def _event_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """EventData as the evtx package renders it -> `winlog.event_data`."""
    out: dict[str, Any] = {}
    unnamed: list[str] = []
    for name, value in data.items():
        if type(value) is str and name and "\r" not in value and not value.endswith("\n"):
            out[name] = value  # the common case, as is
            continue
        if name == "#attributes":
            continue  # the EventData element's own Name attribute is not a Data item
        if name == "Data" and isinstance(value, dict | list):
            items = value.get("#text") if isinstance(value, dict) else value
            unnamed.extend(_text(item) for item in (items if isinstance(items, list) else [items]))
        elif name == "Binary" and value is None:
            continue
        elif not name:
            unnamed.append(_text(value))
        else:
            out[name] = _value(value)
    n = 0
    for item in unnamed:  # param1..N, as Winlogbeat names Data items without a Name
        n += 1
        while f"param{n}" in out:
            n += 1
        out[f"param{n}"] = item
    return out


def _flatten(node: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in node.items():
        if key == "#attributes":
            if isinstance(value, dict):
                for attr, attr_value in value.items():
                    if attr != "xmlns" and not attr.startswith("xmlns:"):
                        out[f"{prefix}_{attr}" if prefix else attr] = _text(attr_value)
            continue
        name = (prefix or "text") if key == "#text" else (f"{prefix}_{key}" if prefix else key)
        if isinstance(value, dict):
            _flatten(value, name, out)
        elif isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
            out[name] = [_text(v) for v in value]
        elif isinstance(value, list):
            out[name] = orjson.dumps(value).decode()
        else:
            out[name] = _text(value)


def _user_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """UserData -> `winlog.user_data`: `xml_name` and the flattened children, as strings."""
    out: dict[str, Any] = {}
    for name, inner in data.items():
        if name == "#attributes":
            continue
        out["xml_name"] = name
        if isinstance(inner, dict):
            if "#text" in inner:  # an element with text and no children: the text by its name
                out[name] = _text(inner["#text"])
                inner = {k: v for k, v in inner.items() if k != "#text"}
            _flatten(inner, "", out)
        elif inner is not None:
            out[name] = _text(inner)
    return out


def _finish(
    winlog: dict[str, Any],
    *,
    timestamp: str | None,
    level: str | None,
    message: Any,
    outcome: str | None,
) -> EcsDoc:
    """The common ECS envelope around a normalised `winlog` object."""
    channel = winlog.get("channel")
    key = channel.lower() if isinstance(channel, str) else ""
    event: dict[str, Any] = {
        "kind": "event",
        "code": str(winlog["event_id"]),
        "dataset": _DATASETS.get(key, OTHER_DATASET),
    }
    module = _MODULES.get(key)
    if module:
        event["module"] = module
    provider = winlog.get("provider_name")
    if provider:
        event["provider"] = provider
    if outcome:
        event["outcome"] = outcome
    doc: EcsDoc = {"event": event}
    if timestamp:
        doc["@timestamp"] = timestamp
    computer = winlog.get("computer_name")
    if computer:
        doc["host"] = {"name": computer}
    if level:
        doc["log"] = {"level": level}
    if isinstance(message, str) and message.strip():
        doc["message"] = _text(message)
    doc["winlog"] = winlog
    return doc


def _outcome(keywords: list[str]) -> str | None:
    for name in keywords:
        if name in _OUTCOMES:
            return _OUTCOMES[name]
    return None


# --------------------------------------------------------------------------- evtx JSON


def _from_evtx(event: Mapping[str, Any]) -> EcsDoc:
    system = event.get("System")
    if not isinstance(system, dict):
        raise ParseError("Windows event without a System element")
    event_id = _int(system.get("EventID"))
    if event_id is None:
        raise ParseError(f"Windows event without a numeric EventID: {system.get('EventID')!r}")
    winlog: dict[str, Any] = {"event_id": event_id}
    channel = system.get("Channel")
    if isinstance(channel, str) and channel:
        winlog["channel"] = channel
    provider = _attrs(system.get("Provider"))
    if provider.get("Name"):
        winlog["provider_name"] = str(provider["Name"])
    guid = _guid(provider.get("Guid"))
    if guid:
        winlog["provider_guid"] = guid
    computer = system.get("Computer")
    if isinstance(computer, str) and computer:
        winlog["computer_name"] = computer
    record_id = _int(system.get("EventRecordID"))
    if record_id is not None:
        winlog["record_id"] = record_id
    version = _int(system.get("Version"))
    if version is not None:
        winlog["version"] = version
    execution = _attrs(system.get("Execution"))
    pid, tid = _int(execution.get("ProcessID")), _int(execution.get("ThreadID"))
    if pid is not None or tid is not None:
        process: dict[str, Any] = {}
        if pid is not None:
            process["pid"] = pid
        if tid is not None:
            process["thread"] = {"id": tid}
        winlog["process"] = process
    user = _attrs(system.get("Security")).get("UserID")
    if user:
        winlog["user"] = {"identifier": str(user)}
    correlation = _attrs(system.get("Correlation"))
    activity, related = (
        _guid(correlation.get("ActivityID")),
        _guid(correlation.get("RelatedActivityID")),
    )
    if activity:
        winlog["activity_id"] = activity
    if related:
        winlog["related_activity_id"] = related
    keywords = _keyword_names(_int(system.get("Keywords")))
    level_number = _int(system.get("Level"))
    level = _LEVELS.get(level_number) if level_number is not None else None
    message: Any = None
    rendering = event.get("RenderingInfo")
    if isinstance(rendering, dict):  # forwarded events (WEF "RenderedText")
        message = rendering.get("Message")
        if isinstance(rendering.get("Level"), str) and rendering["Level"]:
            level = rendering["Level"].lower()
        for field in ("Task", "Opcode"):
            if isinstance(rendering.get(field), str) and rendering[field]:
                winlog[field.lower()] = rendering[field]
        rendered = rendering.get("Keywords")
        names = rendered.get("Keyword") if isinstance(rendered, dict) else None
        if isinstance(names, str):
            keywords = [names]
        elif isinstance(names, list):
            keywords = [str(n) for n in names if n]
    if keywords:
        winlog["keywords"] = keywords
    event_data = event.get("EventData")
    if isinstance(event_data, dict):
        data = _event_data(event_data)
        if data:
            winlog["event_data"] = data
    user_data = event.get("UserData")
    if isinstance(user_data, dict):
        data = _user_data(user_data)
        if data:
            winlog["user_data"] = data
    timestamp = _system_time(_attrs(system.get("TimeCreated")).get("SystemTime"))
    return _finish(
        winlog, timestamp=timestamp, level=level, message=message, outcome=_outcome(keywords)
    )


# --------------------------------------------------------------------------- NXLog


def _from_nxlog(obj: Mapping[str, Any], ctx: SourceContext) -> EcsDoc:
    event_id = _int(obj.get("EventID"))
    if event_id is None:
        raise ParseError(f"NXLog event without a numeric EventID: {obj.get('EventID')!r}")
    winlog: dict[str, Any] = {"event_id": event_id}
    for field, key in (
        ("channel", "Channel"),
        ("provider_name", "SourceName"),
        ("provider_name", "ProviderName"),
        ("computer_name", "Hostname"),
        ("computer_name", "Computer"),
        ("task", "Category"),
        ("opcode", "Opcode"),
    ):
        value = obj.get(key)
        if isinstance(value, str) and value and field not in winlog:
            winlog[field] = value
    guid = _guid(obj.get("ProviderGuid"))
    if guid:
        winlog["provider_guid"] = guid
    for field, keys in (
        ("record_id", ("RecordNumber", "EventRecordID")),
        ("version", ("Version",)),
    ):
        for key in keys:
            number = _int(obj.get(key))
            if number is not None:
                winlog[field] = number
                break
    pid = _int(obj.get("ExecutionProcessID", obj.get("ProcessID")))
    tid = _int(obj.get("ExecutionThreadID", obj.get("ThreadID")))
    if pid is not None or tid is not None:
        process: dict[str, Any] = {}
        if pid is not None:
            process["pid"] = pid
        if tid is not None:
            process["thread"] = {"id": tid}
        winlog["process"] = process
    user: dict[str, Any] = {}
    for field, key in (
        ("identifier", "UserID"),
        ("domain", "Domain"),
        ("name", "AccountName"),
        ("type", "AccountType"),
    ):
        if isinstance(obj.get(key), str) and obj[key]:
            user[field] = obj[key]
    if user:
        winlog["user"] = user
    for field, key in (("activity_id", "ActivityID"), ("related_activity_id", "RelatedActivityID")):
        guid = _guid(obj.get(key))
        if guid:
            winlog[field] = guid
    keywords = _keyword_names(_int(obj.get("Keywords")))
    event_type = str(obj.get("EventType") or "").upper()
    if not keywords and event_type in ("AUDIT_SUCCESS", "AUDIT_FAILURE"):
        keywords = ["Audit Success" if event_type == "AUDIT_SUCCESS" else "Audit Failure"]
    if keywords:
        winlog["keywords"] = keywords
    data = {k: _value(v) for k, v in obj.items() if k not in _NXLOG_SYSTEM}
    if data:
        winlog["event_data"] = data
    level: str | None = None
    if isinstance(obj.get("Level"), str) and obj["Level"]:
        level = obj["Level"].lower()
    elif isinstance(obj.get("Severity"), str):
        level = _NXLOG_SEVERITIES.get(obj["Severity"].upper())
    return _finish(
        winlog,
        timestamp=_timestamp(obj.get("EventTime"), ctx),
        level=level,
        message=obj.get("Message"),
        outcome=_outcome(keywords),
    )


# --------------------------------------------------------------------------- Winlogbeat


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _expand(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `obj` with dotted keys (`winlog.channel`) turned into nested objects."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            value = _expand(value)
        parts = key.split(".") if "." in key and key != "@timestamp" else [key]
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        leaf = parts[-1]
        if isinstance(value, dict) and isinstance(node.get(leaf), dict):
            node[leaf].update(value)
        else:
            node[leaf] = value
    return out


def _from_winlogbeat(obj: Mapping[str, Any]) -> EcsDoc:
    src = _expand(obj)
    winlog = dict(src["winlog"]) if isinstance(src.get("winlog"), dict) else {}
    source_event = _mapping(src.get("event"))
    event_id = _int(winlog.get("event_id"))
    if event_id is None:
        event_id = _int(source_event.get("code"))
    if event_id is None:
        raise ParseError(f"Winlogbeat event without a numeric event id: {winlog.get('event_id')!r}")
    winlog["event_id"] = event_id
    for field in ("record_id", "version"):
        number = _int(winlog.get(field))
        if number is not None:
            winlog[field] = number
        else:
            winlog.pop(field, None)
    for field in ("provider_guid", "activity_id", "related_activity_id"):
        if field in winlog:
            guid = _guid(winlog[field])
            if guid:
                winlog[field] = guid
            else:
                del winlog[field]
    if isinstance(winlog.get("event_data"), dict):
        winlog["event_data"] = {k: _value(v) for k, v in winlog["event_data"].items()}
    if isinstance(winlog.get("user_data"), dict):
        flat: dict[str, Any] = {}
        _flatten(winlog["user_data"], "", flat)
        winlog["user_data"] = flat
    keywords = winlog.get("keywords")
    if isinstance(keywords, str):
        winlog["keywords"] = keywords = [keywords]
    outcome = source_event.get("outcome")
    if not isinstance(outcome, str):
        outcome = _outcome(keywords if isinstance(keywords, list) else [])
    level = _mapping(src.get("log")).get("level")
    doc = _finish(
        winlog,
        timestamp=_timestamp(src.get("@timestamp")),
        level=level.lower() if isinstance(level, str) and level else None,
        message=src.get("message"),
        outcome=outcome,
    )
    # Keep the document's other ECS fields (agent, process, user, source ... set by Beats
    # processors or Elastic's ingest pipelines); the normalised fields above win.
    for key, value in src.items():
        if key in _WINLOGBEAT_DROP or key in ("winlog", "@timestamp", "message"):
            continue
        if key not in doc:
            doc[key] = value
        elif isinstance(value, dict) and isinstance(doc[key], dict):
            for sub, sub_value in value.items():
                if sub != "original":
                    doc[key].setdefault(sub, sub_value)
    return doc
