"""Vendor parsers by name, and detection of the format from content when the source is unknown."""

from __future__ import annotations

import re

from collectors import (
    apache,
    asa,
    auditd,
    checkpoint,
    fortigate,
    ios,
    iptables,
    journald_parse,
    linux_auth,
    nginx,
    panos,
    pfsense,
    snort,
    sophos_xg,
    srx,
    suricata,
)
from collectors.parsing import Parser
from collectors.syslog import parse as syslog_parse
from collectors.windows.parse import parse as windows_parse

PARSERS: dict[str, Parser] = {
    "fortigate": fortigate.parse,
    "syslog": syslog_parse.parse,
    "journald": journald_parse.parse,
    "windows": windows_parse,
    "asa": asa.parse,
    "ios": ios.parse,
    "panos": panos.parse,
    "checkpoint": checkpoint.parse,
    "linux_auth": linux_auth.parse,
    "auditd": auditd.parse,
    "apache": apache.parse,
    "nginx": nginx.parse,
    "snort": snort.parse,
    "suricata": suricata.parse,
    "sophos_xg": sophos_xg.parse,
    "iptables": iptables.parse,
    "pfsense": pfsense.parse,
    "srx": srx.parse,
}
DATASETS: dict[str, str] = {
    "fortigate": "fortinet.fortigate",
    "syslog": "syslog",
    "journald": journald_parse.DATASET,
    "windows": "windows.other",
    "asa": "cisco_asa.log",
    "ios": "cisco_ios.log",
    "panos": "panw.panos",
    "checkpoint": "checkpoint.firewall",
    "linux_auth": "system.auth",
    "auditd": "auditd.log",
    "apache": "apache.access",  # error-log lines set apache.error themselves
    "nginx": "nginx.access",  # error-log lines set nginx.error themselves
    "snort": "snort.log",
    "suricata": "suricata.eve",
    "sophos_xg": "sophos.xg",
    "iptables": iptables.DATASET,
    "pfsense": pfsense.DATASET,
    "srx": srx.DATASET,
}

_FORTIGATE = re.compile(r"(?:^|\s)(?:devid|logid)=\S")
_ASA = re.compile(r"%(?:ASA|FTD)-(?:[^0-9\s%-]+-)?\d-\d+")
_IOS = re.compile(r"%[A-Z][A-Z0-9_]*-(?:[A-Z0-9_]+-)?[0-7]-[A-Z0-9_]+:")


def detect(message: str) -> str:
    """The parser name for a message from an unknown source."""
    if _FORTIGATE.search(message[:512]) and "type=" in message:
        return "fortigate"
    head = message[:512]
    if head.startswith("{") and '"event_type"' in head:
        return "suricata"
    if "log_id=" in head and "device_id=" in head:
        return "sophos_xg"
    if "[**] [" in head:
        return "snort"
    if _ASA.search(head):
        return "asa"
    if _IOS.search(head):
        return "ios"
    return "syslog"


def parser_names() -> list[str]:
    return [*PARSERS, "auto"]
