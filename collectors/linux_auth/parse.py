"""Linux auth.log / secure lines to ECS, as Elastic's `system` integration (`system.auth`) maps them.

Input: one line of /var/log/auth.log or /var/log/secure, with or without a syslog `<PRI>`; the
header (RFC 3164 or ISO 8601 timestamp, host, program[pid]) is read by `collectors.syslog.parse`.
The message is then matched against a table of patterns per program: sshd logins, sudo
commands, PAM (`pam_unix`, `pam_faillock`), `unix_chkpwd`, su and the shadow-utils account tools
(useradd, groupadd, userdel, groupdel, usermod). Lines that match no pattern keep the header
fields only, as Elastic's pipeline does. Fields Elastic keeps under `system.auth.*` stay there.

Deliberate differences from Elastic's pipeline (none changes a compared field of the corpus):

- `event.action` is also set where older pipeline versions leave it out (`user-added`,
  `group-added` for `new group:`, `user-deleted`, `group-deleted` for `removed group`).
- `sudo` commands always get `event.type: ["start"]`; an error such as
  `user NOT in sudoers` also sets `event.outcome: failure`.
- pam_unix `session opened/closed` and `su` lines are mapped (Elastic leaves them unparsed).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from collectors.ecs import normalize_ip, set_field
from collectors.parsing import EcsDoc, SourceContext
from collectors.syslog.parse import parse as parse_syslog

DATASET = "system.auth"
MODULE = "system"

Match = re.Match[str]
Handler = Callable[[Match, EcsDoc], None]

_KV_RE = re.compile(r"(\w+)=(\S*)")


def _source(doc: EcsDoc, address: str, port: str | None = None) -> None:
    """`source.ip` when `address` is an IP, else `source.domain`; `source.address` either way."""
    source: dict[str, Any] = {"address": address}
    ip = normalize_ip(address) if address else None
    if ip is not None:
        source["ip"] = ip
    else:
        source["domain"] = address
    if port is not None and port.isdecimal():
        source["port"] = int(port)
    doc["source"] = source


def _event(
    doc: EcsDoc,
    *,
    action: str | None = None,
    category: list[str] | None = None,
    type_: list[str] | None = None,
    outcome: str | None = None,
) -> None:
    event = doc["event"]
    if action is not None:
        event["action"] = action
    if category is not None:
        event["category"] = category
    if type_ is not None:
        event["type"] = type_
    if outcome is not None:
        event["outcome"] = outcome


# --------------------------------------------------------------------------- sshd


def _ssh_accepted(m: Match, doc: EcsDoc) -> None:
    _event(
        doc,
        action="ssh_login",
        category=["authentication", "session"],
        type_=["info"],
        outcome="success",
    )
    doc["user"] = {"name": m["user"]}
    _source(doc, m["ip"], m["port"])
    ssh: dict[str, Any] = {"event": "Accepted", "method": m["method"]}
    if m["signature"]:
        ssh["signature"] = m["signature"]
    set_field(doc, "system.auth.ssh", ssh)


def _ssh_failed(m: Match, doc: EcsDoc) -> None:
    _event(doc, action="ssh_login", category=["authentication"], type_=["info"], outcome="failure")
    doc["user"] = {"name": m["user"].strip() or m["user"]}
    _source(doc, m["ip"], m["port"])
    set_field(doc, "system.auth.ssh", {"event": m["event"], "method": m["method"]})


def _ssh_invalid_user(m: Match, doc: EcsDoc) -> None:
    _event(doc, action="ssh_login", category=["authentication"], type_=["info"], outcome="failure")
    doc["user"] = {"name": m["user"]}
    _source(doc, m["ip"], m["port"])
    set_field(doc, "system.auth.ssh.event", "Invalid")


def _ssh_no_identification(m: Match, doc: EcsDoc) -> None:
    _source(doc, m["ip"])
    del doc["source"]["address"]
    if "ip" in doc["source"]:
        set_field(doc, "system.auth.ssh.dropped_ip", doc["source"]["ip"])


def _ssh_pam_error(m: Match, doc: EcsDoc) -> None:
    doc["user"] = {"name": m["user"]}
    _source(doc, m["host"])
    doc["error"] = {"message": m["error"]}


# --------------------------------------------------------------------------- sudo, su, PAM


def _sudo_command(m: Match, doc: EcsDoc) -> None:
    _event(doc, category=["process"], type_=["start"])
    doc["user"] = {"name": m["user"], "effective": {"name": m["runas"]}}
    sudo: dict[str, Any] = {"pwd": m["pwd"], "user": m["runas"], "command": m["command"]}
    if m["tty"]:
        sudo["tty"] = m["tty"]
    if m["error"]:
        sudo["error"] = m["error"]
        doc["event"]["outcome"] = "failure"
    set_field(doc, "system.auth.sudo", sudo)


def _pam_unix_auth_failure(m: Match, doc: EcsDoc) -> None:
    _event(doc, category=["authentication"], type_=["info"], outcome="failure")
    pairs = dict(_KV_RE.findall(m["pairs"]))
    user: dict[str, Any] = {}
    if pairs.get("ruser"):
        user["name"] = pairs["ruser"]
    elif pairs.get("logname"):
        user["name"] = pairs["logname"]
    if pairs.get("uid"):
        user["id"] = pairs["uid"]
    effective = {k: v for k, v in (("name", pairs.get("user")), ("id", pairs.get("euid"))) if v}
    if effective:
        user["effective"] = effective
    if user:
        doc["user"] = user
    if "rhost" in pairs:
        _source(doc, pairs["rhost"])
    if pairs.get("tty"):
        set_field(doc, "system.auth.tty", pairs["tty"])
    set_field(doc, "system.auth.pam", {"module": "pam_unix", "service": m["service"]})


def _pam_session(m: Match, doc: EcsDoc) -> None:
    opened = m["what"] == "opened"
    _event(
        doc,
        action="session-opened" if opened else "session-closed",
        category=["session"],
        type_=["start" if opened else "end"],
        outcome="success",
    )
    user: dict[str, Any] = {"name": m["user"]}
    if m["by"]:
        user["effective"] = {"name": m["user"]}
        user["name"] = m["by"]
        if m["uid"]:
            user["id"] = m["uid"]
    doc["user"] = user
    set_field(doc, "system.auth.pam", {"module": m["module"], "service": m["service"]})


def _pam_faillock(m: Match, doc: EcsDoc) -> None:
    _event(
        doc,
        action="account-locked",
        category=["authentication"],
        type_=["info"],
        outcome="failure",
    )
    doc["user"] = {"name": m["user"]}
    set_field(doc, "system.auth.pam", {"module": "pam_faillock", "service": m["service"]})


def _unix_chkpwd(m: Match, doc: EcsDoc) -> None:
    _event(
        doc,
        action="authentication_failure",
        category=["authentication"],
        type_=["info"],
        outcome="failure",
    )
    doc["user"] = {"name": m["user"]}


def _su(m: Match, doc: EcsDoc) -> None:
    success = m["result"] == "Successful"
    _event(
        doc,
        action="su",
        category=["authentication"],
        type_=["info"],
        outcome="success" if success else "failure",
    )
    doc["user"] = {"name": m["by"], "effective": {"name": m["target"]}}


# --------------------------------------------------------------------------- account tools


def _new_group(m: Match, doc: EcsDoc) -> None:
    _event(
        doc, action="group-added", category=["iam"], type_=["group", "creation"], outcome="success"
    )
    group = {"name": m["name"]}
    if m["gid"]:
        group["id"] = m["gid"]
    doc["group"] = group


def _new_user(m: Match, doc: EcsDoc) -> None:
    _event(
        doc, action="user-added", category=["iam"], type_=["user", "creation"], outcome="success"
    )
    doc["user"] = {"name": m["name"], "id": m["uid"]}
    doc["group"] = {"id": m["gid"]}
    set_field(doc, "system.auth.useradd", {"home": m["home"], "shell": m["shell"]})


def _group_deleted(m: Match, doc: EcsDoc) -> None:
    _event(
        doc,
        action="group-deleted",
        category=["iam"],
        type_=["group", "deletion"],
        outcome="success",
    )
    doc["group"] = {"name": m["name"]}


def _member_removed(m: Match, doc: EcsDoc) -> None:
    _event(
        doc,
        action="group-member-removed",
        category=["iam"],
        type_=["user", "deletion"],
        outcome="success",
    )
    doc["group"] = {"name": m["group"]}
    set_field(doc, "user.target.name", m["user"])


def _user_deleted(m: Match, doc: EcsDoc) -> None:
    _event(
        doc, action="user-deleted", category=["iam"], type_=["user", "deletion"], outcome="success"
    )
    set_field(doc, "user.target.name", m["user"])


def _userdel_group_removed(m: Match, doc: EcsDoc) -> None:
    # userdel removing the user's own primary group: Elastic types it as a user deletion.
    _event(doc, category=["iam"], type_=["user", "deletion"], outcome="success")
    doc["group"] = {"name": m["group"]}


def _member_added(m: Match, doc: EcsDoc) -> None:
    _event(
        doc,
        action="group-member-added",
        category=["iam"],
        type_=["user", "change"],
        outcome="success",
    )
    doc["group"] = {"name": m["group"]}
    set_field(doc, "user.target.name", m["user"])


def _user_changed(m: Match, doc: EcsDoc) -> None:
    _event(
        doc, action="user-modified", category=["iam"], type_=["user", "change"], outcome="success"
    )
    set_field(doc, "user.target.name", m["user"])


# --------------------------------------------------------------------------- the table

_SSHD: tuple[tuple[re.Pattern[str], Handler], ...] = (
    (
        re.compile(
            r"Accepted (?P<method>\S+) for (?P<user>\S+) from (?P<ip>\S+) port (?P<port>\d+)"
            r"(?: [^\s:]+)?(?:: (?P<signature>.*))?"
        ),
        _ssh_accepted,
    ),
    (
        re.compile(
            # The user name is whatever sshd printed, spaces included ("invalid user  0101").
            r"(?P<event>Failed) (?P<method>\S+) for (?:invalid user )?(?P<user>.+?) "
            r"from (?P<ip>\S+) port (?P<port>\d+)"
        ),
        _ssh_failed,
    ),
    (
        re.compile(r"Invalid user (?P<user>\S*) from (?P<ip>\S+)(?: port (?P<port>\d+))?"),
        _ssh_invalid_user,
    ),
    (re.compile(r"Did not receive identification string from (?P<ip>\S+)"), _ssh_no_identification),
    (
        re.compile(
            r"error: PAM: (?P<error>.*?) for (?:illegal user )?(?P<user>\S+) from (?P<host>\S+)"
        ),
        _ssh_pam_error,
    ),
)
_PAM: tuple[tuple[re.Pattern[str], Handler], ...] = (
    (
        re.compile(r"pam_unix\((?P<service>[^:)]*):auth\): authentication failure;(?P<pairs>.*)"),
        _pam_unix_auth_failure,
    ),
    (
        re.compile(
            r"(?P<module>pam_\w+)\((?P<service>[^:)]*):session\): session (?P<what>opened|closed) "
            r"for user (?P<user>\S+?)(?:\(uid=\d+\))?(?: by (?P<by>[^\s(]*)(?:\(uid=(?P<uid>\d+)\))?)?$"
        ),
        _pam_session,
    ),
    (
        re.compile(
            r"pam_faillock\((?P<service>[^:)]*):auth\): Consecutive login failures for user "
            r"(?P<user>\S+) account temporarily locked"
        ),
        _pam_faillock,
    ),
)
_SUDO: tuple[tuple[re.Pattern[str], Handler], ...] = (
    (
        re.compile(
            r"\s*(?P<user>\S+) : (?:(?P<error>[^;=]+?) ; )?(?:TTY=(?P<tty>\S+) ; )?"
            r"PWD=(?P<pwd>.*?) ; USER=(?P<runas>\S+) ; (?:\w+=.*? ; )*COMMAND=(?P<command>.*)"
        ),
        _sudo_command,
    ),
)
_TABLE: dict[str, tuple[tuple[re.Pattern[str], Handler], ...]] = {
    "sshd": _SSHD,
    "sudo": _SUDO,
    "unix_chkpwd": (
        (re.compile(r"password check failed for user \((?P<user>[^)]*)\)"), _unix_chkpwd),
    ),
    "su": (
        (
            re.compile(r"(?P<result>Successful|FAILED) su for (?P<target>\S+) by (?P<by>\S+)"),
            _su,
        ),
    ),
    "groupadd": (
        (
            re.compile(
                r"(?:new group|group added to \S+): name=(?P<name>[^,\s]+)(?:, GID=(?P<gid>\d+))?"
            ),
            _new_group,
        ),
    ),
    "useradd": (
        (
            re.compile(
                r"new user: name=(?P<name>[^,\s]+), UID=(?P<uid>\d+), GID=(?P<gid>\d+), "
                r"home=(?P<home>[^,]*), shell=(?P<shell>[^,\s]*)"
            ),
            _new_user,
        ),
        (
            re.compile(
                r"(?:new group|group added to \S+): name=(?P<name>[^,\s]+)(?:, GID=(?P<gid>\d+))?"
            ),
            _new_group,
        ),
        (
            re.compile(r"add '(?P<user>[^']*)' to (?:shadow )?group '(?P<group>[^']*)'"),
            _member_added,
        ),
    ),
    "groupdel": ((re.compile(r"group '(?P<name>[^']*)' removed"), _group_deleted),),
    "userdel": (
        (
            re.compile(r"delete '(?P<user>[^']*)' from (?:shadow )?group '(?P<group>[^']*)'"),
            _member_removed,
        ),
        (re.compile(r"delete user '(?P<user>[^']*)'"), _user_deleted),
        (re.compile(r"removed (?:shadow )?group '(?P<group>[^']*)'"), _userdel_group_removed),
    ),
    "usermod": (
        (
            re.compile(r"add '(?P<user>[^']*)' to (?:shadow )?group '(?P<group>[^']*)'"),
            _member_added,
        ),
        (
            re.compile(r"(?:change|lock|unlock) user '(?P<user>[^']*)'"),
            _user_changed,
        ),
    ),
}


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One auth.log / secure line to an ECS document; ParseError when it has no syslog header."""
    doc = parse_syslog(message, ctx)
    if not doc["log"]["syslog"]:
        del doc["log"]
    text: str = doc.get("message", "")
    process = doc.get("process", {}).get("name")
    patterns = _TABLE.get(process, ()) if process else ()
    for pattern, handler in (*patterns, *_PAM):
        match = pattern.match(text)
        if match is not None:
            handler(match, doc)
            break
    doc["event"]["dataset"] = DATASET
    doc["event"]["module"] = MODULE
    return doc
