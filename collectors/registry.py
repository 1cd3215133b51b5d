"""Vendor parsers by name, and detection of the format from content when the source is unknown."""

from __future__ import annotations

import re

from collectors import fortigate, journald_parse
from collectors.parsing import Parser
from collectors.syslog import parse as syslog_parse
from collectors.windows.parse import parse as windows_parse

PARSERS: dict[str, Parser] = {
    "fortigate": fortigate.parse,
    "syslog": syslog_parse.parse,
    "journald": journald_parse.parse,
    "windows": windows_parse,
}
DATASETS: dict[str, str] = {
    "fortigate": "fortinet.fortigate",
    "syslog": "syslog",
    "journald": journald_parse.DATASET,
    "windows": "windows.other",
}

_FORTIGATE = re.compile(r"(?:^|\s)(?:devid|logid)=\S")


def detect(message: str) -> str:
    """The parser name for a message from an unknown source."""
    if _FORTIGATE.search(message[:512]) and "type=" in message:
        return "fortigate"
    return "syslog"


def parser_names() -> list[str]:
    return [*PARSERS, "auto"]
