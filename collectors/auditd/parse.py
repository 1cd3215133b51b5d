"""Linux audit.log records to ECS, as Elastic's `auditd` integration (`auditd.log`) maps them.

Input: one record, `[node=N ]type=T msg=audit(EPOCH.MS:SEQ): k=v ...`, raw or enriched (the
uppercase `UID="root"` translations that follow a U+001D separator, or a space), optionally
wrapped in a syslog header (audisp-syslog). The quoted inner `msg='...'` of user-space records
is parsed as key=value pairs too. All pairs are kept under `auditd.log.*`.

ECS mapping: `event.action` / `category` / `type` come from a table keyed by record type (and,
for SYSCALL records, by the syscall name); `res` / `success` give `event.outcome`; `auid`,
`uid`, `euid`, ... give `user.*` ids; `acct` gives `user.name`; `pid`, `ppid`, `comm`, `exe`
give `process.*`; `addr` gives `source.ip`.

Deliberate differences from Elastic's pipeline: `event.action` covers the common record types
and syscalls of the table below only (Elastic's covers more); hex-encoded values (`acct=726F6F74`)
are decoded; unknown record types keep `event.kind: event` with the lower-cased record type as
`event.action`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from collectors.ecs import normalize_ip, set_field
from collectors.parsing import EcsDoc, ParseError, SourceContext
from collectors.syslog.parse import parse as parse_syslog

DATASET = "auditd.log"
MODULE = "auditd"

_HEADER_RE = re.compile(
    r"(?:node=(?P<node>\S+) )?type=(?P<type>\S+) msg=audit\((?P<sec>\d+)\.(?P<ms>\d+):(?P<seq>\d+)\): ?"
)
_PAIR_RE = re.compile(r"""([\w-]+)=("[^"]*"?|'[^']*'?|[^\s'"]*)""")
# Inside msg='...': an unquoted value runs to the next ` key=` ("op=adding group to /etc/group").
_INNER_PAIR_RE = re.compile(r"""([\w-]+)=("[^"]*"?|'[^']*'?|[^"'\s][^ ]*(?: (?![\w-]+=)[^ ]*)*|)""")
_HEX_RE = re.compile(r"(?:[0-9A-F]{2}){2,}")
# Fields whose unquoted value is hex-encoded text (auditd's `untrusted string` encoding).
_HEX_FIELDS = frozenset({"acct", "exe", "comm", "cmd", "proctitle", "name", "cwd"})

# record type -> (action, category, type)
_RECORD_TYPES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ADD_GROUP": ("added-group-account-to", "iam", ("group", "creation")),
    "ADD_USER": ("added-user-account", "iam", ("user", "creation")),
    "DEL_GROUP": ("deleted-group-account-from", "iam", ("group", "deletion")),
    "DEL_USER": ("deleted-user-account", "iam", ("user", "deletion")),
    "GRP_MGMT": ("modified-group-account", "iam", ("group", "change")),
    "USER_MGMT": ("modified-user-account", "iam", ("user", "change")),
    "USER_CHAUTHTOK": ("changed-password", "iam", ("user", "change")),
    "GRP_CHAUTHTOK": ("changed-group-password", "iam", ("group", "change")),
    "ACCT_LOCK": ("locked-account", "iam", ("user", "change")),
    "ACCT_UNLOCK": ("unlocked-account", "iam", ("user", "change")),
    "USER_ACCT": ("was-authorized", "authentication", ("info",)),
    "USER_AUTH": ("authenticated", "authentication", ("info",)),
    "USER_LOGIN": ("logged-in", "authentication", ("start",)),
    "USER_LOGOUT": ("logged-out", "authentication", ("end",)),
    "USER_START": ("started-session", "session", ("start",)),
    "USER_END": ("ended-session", "session", ("end",)),
    "USER_ERR": ("error", "authentication", ("info",)),
    "CRED_ACQ": ("acquired-credentials", "authentication", ("info",)),
    "CRED_DISP": ("disposed-credentials", "authentication", ("info",)),
    "CRED_REFR": ("refreshed-credentials", "authentication", ("info",)),
    "USER_CMD": ("ran-command", "process", ("start",)),
    "USER_ROLE_CHANGE": ("changed-role-to", "iam", ("user", "change")),
    "SERVICE_START": ("started-service", "process", ("start",)),
    "SERVICE_STOP": ("stopped-service", "process", ("end",)),
    "DAEMON_START": ("started-audit", "process", ("start",)),
    "DAEMON_END": ("stopped-audit", "process", ("end",)),
    "CONFIG_CHANGE": ("changed-audit-configuration", "configuration", ("change",)),
    "SYSTEM_BOOT": ("booted-system", "host", ("start",)),
    "SYSTEM_SHUTDOWN": ("shutdown-system", "host", ("end",)),
    "ANOM_PROMISCUOUS": ("changed-promiscuous-mode-on-device", "network", ("info",)),
    "AVC": ("violated-selinux-policy", "configuration", ("access",)),
}
# SYSCALL records: syscall name -> (action, category, type)
_SYSCALLS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    **dict.fromkeys(("unlink", "unlinkat", "rmdir"), ("deleted", "file", ("deletion",))),
    **dict.fromkeys(("rename", "renameat", "renameat2"), ("renamed", "file", ("change",))),
    **dict.fromkeys(("open", "openat", "creat"), ("opened-file", "file", ("access",))),
    **dict.fromkeys(
        ("chmod", "fchmod", "fchmodat"), ("changed-file-permissions-of", "file", ("change",))
    ),
    **dict.fromkeys(
        ("chown", "fchown", "fchownat", "lchown"),
        ("changed-file-ownership-of", "file", ("change",)),
    ),
    **dict.fromkeys(("execve", "execveat"), ("executed", "process", ("start",))),
    "connect": ("connected-to", "network", ("connection", "start")),
    "bind": ("bound-socket", "network", ("start",)),
    "accept": ("accepted-connection-from", "network", ("connection", "start")),
    "accept4": ("accepted-connection-from", "network", ("connection", "start")),
    **dict.fromkeys(
        ("init_module", "finit_module"), ("loaded-kernel-module", "driver", ("start",))
    ),
    "delete_module": ("unloaded-kernel-module", "driver", ("end",)),
}
_OUTCOMES = {"success": "success", "yes": "success", "failed": "failure", "no": "failure"}
# audit field -> ECS user id field
_ID_FIELDS = (
    ("auid", "user.audit.id"),
    ("uid", "user.id"),
    ("gid", "user.group.id"),
    ("euid", "user.effective.id"),
    ("egid", "user.effective.group.id"),
    ("suid", "user.saved.id"),
    ("sgid", "user.saved.group.id"),
    ("fsuid", "user.filesystem.id"),
    ("fsgid", "user.filesystem.group.id"),
)
_UNSET = frozenset({"", "?", "(none)", "4294967295", "-1"})


def _value(key: str, raw: str) -> str:
    if raw[:1] in "\"'":
        return raw[1:-1] if len(raw) > 1 and raw[-1] == raw[0] else raw[1:]
    if key in _HEX_FIELDS and _HEX_RE.fullmatch(raw):
        try:
            return bytes.fromhex(raw).decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return raw


def _pairs(text: str, pair_re: re.Pattern[str] = _PAIR_RE) -> dict[str, Any]:
    """key=value pairs; a key seen twice keeps every value, in order, as a list; empty values
    are left out."""
    out: dict[str, Any] = {}
    for key, raw in pair_re.findall(text):
        value = _value(key, raw)
        if not value:
            continue
        if key in out:
            previous = out[key]
            out[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[key] = value
    return out


def _first(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One audit.log record to an ECS document; ParseError when it has no audit header."""
    if not message:
        raise ParseError("empty message")
    body = message
    header = _HEADER_RE.search(body, 0, 4096)
    if header is None:
        raise ParseError("no audit record header (type=... msg=audit(EPOCH:SEQ):)")
    envelope: EcsDoc | None = None
    if header.start() and not body[: header.start()].isspace():
        # audisp-syslog and similar: a syslog header before the record.
        try:
            envelope = parse_syslog(body, ctx)
        except ParseError as e:
            raise ParseError(f"text before the audit record header: {e}") from e
    record_type = header["type"]
    rest = body[header.end() :].replace("\x1d", " ")
    log = _pairs(rest)
    inner = log.pop("msg", None)
    if isinstance(inner, str) and "=" in inner:
        for key, value in _pairs(inner, _INNER_PAIR_RE).items():
            if key in log and log[key] != value:
                current = log[key]
                log[key] = [*current, value] if isinstance(current, list) else [current, value]
            else:
                log[key] = value
    elif isinstance(inner, str):
        log["msg"] = inner
    try:
        moment = datetime.fromtimestamp(int(header["sec"]), UTC)
    except (OverflowError, ValueError, OSError) as e:
        raise ParseError(f"audit timestamp {header['sec']} out of range") from e
    millis = int(header["ms"][:3].ljust(3, "0"))
    timestamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"
    log.update({"record_type": record_type, "sequence": int(header["seq"])})
    if header["node"]:
        log["node"] = header["node"]
    doc: EcsDoc = {
        "@timestamp": timestamp,
        "event": {"original": message, "kind": "event", "dataset": DATASET, "module": MODULE},
        "auditd": {"log": log},
    }
    _map_event(doc, record_type, log)
    _map_user(doc, record_type, log, isinstance(inner, str))
    _map_process(doc, log)
    addr = _first(log.get("addr"))
    if addr and addr not in _UNSET:
        ip = normalize_ip(addr)
        doc["source"] = {"address": addr, **({"ip": ip} if ip else {"domain": addr})}
    if header["node"]:
        doc["host"] = {"name": header["node"]}
    elif envelope is not None and "host" in envelope:
        doc["host"] = {"name": envelope["host"]["hostname"]}
    if envelope is not None:
        doc["log"] = envelope["log"]
    return doc


def _map_event(doc: EcsDoc, record_type: str, log: dict[str, Any]) -> None:
    event = doc["event"]
    mapping = _RECORD_TYPES.get(record_type)
    if record_type == "SYSCALL":
        name = _first(log.get("SYSCALL")) or _first(log.get("syscall")) or ""
        mapping = _SYSCALLS.get(name)
    if mapping is not None:
        action, category, types = mapping
        event["action"] = [action]
        event["category"] = [category]
        event["type"] = list(types)
    else:
        event["action"] = [record_type.lower()]
    result = _first(log.get("res")) or _first(log.get("success"))
    if result in _OUTCOMES:
        event["outcome"] = _OUTCOMES[result]


def _map_user(doc: EcsDoc, record_type: str, log: dict[str, Any], user_space: bool) -> None:
    if user_space:
        # A user-space record (with an inner msg='...'): `auid` is the user who acts and
        # `uid` the identity of the reporting process, as Elastic maps them.
        auid = log.get("auid")
        if isinstance(auid, str) and auid not in _UNSET:
            set_field(doc, "user.audit.id", auid)
            set_field(doc, "user.id", auid)
        uid = log.get("uid")
        if isinstance(uid, str) and uid not in _UNSET:
            set_field(doc, "user.effective.id", uid)
    else:
        for key, path in _ID_FIELDS:
            value = _first(log.get(key))
            if value is not None and value not in _UNSET:
                set_field(doc, path, value)
    acct = _first(log.get("acct"))
    if acct and acct not in _UNSET:
        set_field(doc, "user.name", acct)
        category = _RECORD_TYPES[record_type][1] if record_type in _RECORD_TYPES else None
        if user_space and category == "authentication":
            set_field(doc, "user.effective", {"name": acct})
        if record_type in _RECORD_TYPES and _RECORD_TYPES[record_type][1] == "iam":
            set_field(doc, "user.target.name", acct)
    target_id = _first(log.get("id"))
    if target_id and target_id not in _UNSET and record_type in _RECORD_TYPES:
        kind = _RECORD_TYPES[record_type][2][0]
        if _RECORD_TYPES[record_type][1] == "iam":
            set_field(doc, "group.id" if kind == "group" else "user.target.id", target_id)
    terminal = _first(log.get("terminal"))
    if terminal and terminal not in _UNSET:
        set_field(doc, "user.terminal", terminal)


def _map_process(doc: EcsDoc, log: dict[str, Any]) -> None:
    process: dict[str, Any] = {}
    for key, name in (("pid", "pid"), ("ppid", "parent.pid")):
        value = _first(log.get(key))
        if value is not None and value.isdecimal():
            set_field(process, name, int(value))
    exe = _first(log.get("exe"))
    if exe and exe not in _UNSET:
        process["executable"] = exe
    comm = _first(log.get("comm"))
    if comm and comm not in _UNSET:
        process["name"] = comm
    exit_code = _first(log.get("exit"))
    if exit_code is not None and re.fullmatch(r"-?\d{1,19}", exit_code):
        process["exit_code"] = int(exit_code)
    if process:
        doc["process"] = process
