"""systemd journal entries (``journalctl -o json`` lines) to ECS. Pure, no I/O.

An entry is a JSON object of journal fields. Values are strings; a field with several values
is a list; a value that is not valid UTF-8 text is a list of byte values; a value longer than
4096 bytes is ``null`` unless journalctl ran with ``--all`` (the collector passes it).

Mapped: ``MESSAGE`` -> message, ``__REALTIME_TIMESTAMP`` (µs since the epoch, when journald
received the entry) -> @timestamp, ``_HOSTNAME`` -> host.hostname, ``_PID`` -> process.pid,
``SYSLOG_IDENTIFIER`` (else ``_COMM``) -> process.name, ``PRIORITY`` -> log.syslog.severity,
``SYSLOG_FACILITY`` -> log.syslog.facility and, with the severity, log.syslog.priority
(ECS: 8 x facility + severity; the journal's PRIORITY is the severity alone). Every other
field is kept under ``journald.<field name in lower case>`` (journal field names are upper
case, so nothing collides).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from collectors.parsing import EcsDoc, ParseError, SourceContext

__all__ = ["DATASET", "parse"]

DATASET = "journald"

_SEVERITY_NAMES = (
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
)


def _text(value: Any, name: str) -> str | list[str] | None:
    """A journal field value as text: str, list of str (several values), or None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        if all(isinstance(b, int) and 0 <= b <= 255 for b in value):  # binary: bytes
            return bytes(value).decode("utf-8", errors="backslashreplace")
        out: list[str] = []
        for item in value:
            text = _text(item, name)
            if isinstance(text, list):
                out.extend(text)
            elif text is not None:
                out.append(text)
        return out
    raise ParseError(f"journal field {name} has an unexpected JSON type {type(value).__name__}")


def _single(value: str | list[str] | None) -> str | None:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _small_int(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError as e:
        raise ParseError(f"journal field {name} is not a number: {value!r}") from e
    if not low <= n <= high:
        raise ParseError(f"journal field {name} out of range {low}..{high}: {n}")
    return n


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """Parse one journal entry in journalctl's JSON form into ECS."""
    try:
        entry = orjson.loads(message)
    except orjson.JSONDecodeError as e:
        raise ParseError(f"not a journal JSON entry: {e}") from e
    if not isinstance(entry, dict):
        raise ParseError("journal entry is not a JSON object")
    fields = {str(k): _text(v, str(k)) for k, v in entry.items()}

    doc: EcsDoc = {"event": {"kind": "event", "dataset": DATASET}}
    if "MESSAGE" in fields:
        msg = fields.pop("MESSAGE")
        if msg is None:
            raise ParseError("MESSAGE left out by journalctl (over 4096 bytes without --all)")
        doc["message"] = "\n".join(msg) if isinstance(msg, list) else msg

    realtime = _single(fields.pop("__REALTIME_TIMESTAMP", None))
    if realtime is not None:
        try:
            micros = int(realtime)
            ts = datetime.fromtimestamp(micros // 1_000_000, UTC).replace(
                microsecond=micros % 1_000_000
            )
        except (ValueError, OverflowError, OSError) as e:
            raise ParseError(f"bad __REALTIME_TIMESTAMP {realtime!r}") from e
        doc["@timestamp"] = ts.isoformat().replace("+00:00", "Z")

    hostname = _single(fields.pop("_HOSTNAME", None))
    if hostname:
        doc["host"] = {"hostname": hostname}

    process: dict[str, Any] = {}
    pid = _small_int(_single(fields.pop("_PID", None)), "_PID", 0, 2**31 - 1)
    if pid is not None:
        process["pid"] = pid
    name_field = "SYSLOG_IDENTIFIER" if _single(fields.get("SYSLOG_IDENTIFIER")) else "_COMM"
    name = _single(fields.pop(name_field, None))
    if name:
        process["name"] = name
    if process:
        doc["process"] = process

    syslog: dict[str, Any] = {}
    severity = _small_int(_single(fields.pop("PRIORITY", None)), "PRIORITY", 0, 7)
    facility = _small_int(_single(fields.pop("SYSLOG_FACILITY", None)), "SYSLOG_FACILITY", 0, 23)
    if severity is not None:
        syslog["severity"] = {"code": severity, "name": _SEVERITY_NAMES[severity]}
    if facility is not None:
        syslog["facility"] = {"code": facility}
    if severity is not None and facility is not None:
        syslog["priority"] = facility * 8 + severity
    if syslog:
        doc["log"] = {"syslog": syslog}

    rest = {k.lower(): v for k, v in fields.items() if v is not None and v != []}
    if rest:
        doc["journald"] = rest
    return doc
