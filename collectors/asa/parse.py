"""Cisco ASA syslog (`%ASA-<severity>-<message id>: <text>`) to ECS, as Elastic's `cisco_asa`
integration maps it.

Input: one message as received over syslog or read from a file, with or without a `<PRI>`, a
timestamp (`Apr 29 2013 12:59:50`, `Jan 23 15:10:55`, ISO 8601) and a host / process prefix.
Output: the ECS document; vendor fields that Elastic keeps under `cisco.asa.*` stay there.

The message text is parsed per message id with one table of regular expressions (`_PATTERNS`)
whose named groups are mapped to ECS by one function (`_apply`), and categorised with one table
(`_CATEGORIES`: event.category / type / outcome / action per id, as Elastic's pipeline).

Deliberate differences from Elastic's pipeline:

- `event.outcome` of 106023 is "failure" as Elastic's current pipeline sets it (older expected
  documents of the corpus carry "success").
- A year-less timestamp takes the current year (a December message read in January belongs to
  last year); a timestamp without a zone is read in `ctx.tz` (UTC when unset). Time zone
  abbreviations are fixed offsets (EDT = -04:00).
- 605004/605005 (ASDM/SSH/Telnet logins) and 611101-611103 (user authentication) are parsed
  into `source.*` and `source.user.name` as well as categorised.
- GeoIP/ASN enrichment and `network.community_id` are not produced; message text longer than
  `_MAX_PARSED` characters is kept whole but only its beginning is matched.
- `event.dataset` / `event.module` are set ("cisco_asa.log" / "cisco_asa").
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from collectors.ecs import (
    IANA_PROTOCOLS,
    MONTHS,
    format_timestamp,
    iana_protocol_name,
    normalize_ip,
    year_for_month,
    zone_name,
)
from collectors.parsing import EcsDoc, ParseError, SourceContext
from collectors.syslog.parse import split_pri

DATASET = "cisco_asa.log"
MODULE = "cisco_asa"

# The header is searched for the `%ASA-` label only in its first characters, and a message
# text is matched only up to `_MAX_PARSED` characters: ASA messages are short, and the bounds
# keep the cost of hostile input linear.
_MAX_HEADER = 512
_MAX_PARSED = 4096

# `%ASA-6-302013:`, `%FTD-session-5-106100:`, `%ASA-6-302016 ` (colon missing on old images).
_LABEL_RE = re.compile(r"%(?P<prefix>[A-Z]+)-(?:[^0-9\s%-]+-)?(?P<sev>\d)-(?P<id>\d+)?:?\s*")
_MONTHS = MONTHS
_DATE_RE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) )?(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2})"
    r"(?: (?P<year>\d{4}))? (?P<time>\d\d:\d\d:\d\d(?:\.\d{1,9})?)"
    r"(?: (?P<tz>[APMCE][SD]T|UTC))?:?(?:\s+|$)"
)
_ISO_RE = re.compile(
    r"(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d{1,9})?)?(?:Z|[+-]\d\d(?::?\d\d)?)?)"
    r":?(?:\s+|$)"
)
# `process: host` (Firepower management), else `host[:]` and an optional `process[pid]`.
_PROCESS_HOST_RE = re.compile(r"(?P<process>[^%\s:\[]+):\s(?P<host>[\w.:-]+)")
_HOST_PROCESS_RE = re.compile(
    r"(?:(?P<host>[\w.:-]+?):?\s+)?(?P<process>[^%\s:\[]+)?(?:\[(?P<pid>\d{1,9})\])?"
)
_HOST_TOKEN_RE = re.compile(r"[\w.:-]+")
_REPEATED_RE = re.compile(r"message repeated (?P<count>\d{1,9}) times: \[\s*(?P<text>.*?)\s*\]$")

_ABBREVIATED_ZONES: dict[str, tzinfo] = {
    "UTC": UTC,
    "EST": timezone(timedelta(hours=-5)),
    "EDT": timezone(timedelta(hours=-4)),
    "CST": timezone(timedelta(hours=-6)),
    "CDT": timezone(timedelta(hours=-5)),
    "MST": timezone(timedelta(hours=-7)),
    "MDT": timezone(timedelta(hours=-6)),
    "PST": timezone(timedelta(hours=-8)),
    "PDT": timezone(timedelta(hours=-7)),
    "AST": timezone(timedelta(hours=-4)),
    "ADT": timezone(timedelta(hours=-3)),
}
_LOG_LEVELS = (
    "unknown",
    "alert",
    "critical",
    "error",
    "warning",
    "notification",
    "informational",
    "debug",
)
_TRANSPORT_NUMBERS = {name: str(number) for number, name in IANA_PROTOCOLS.items()}
_MAX_PORT = 65535
_MAX_LONG = 2**63 - 1

# --------------------------------------------------------------------------- message patterns

# Named groups (each maps to one destination in `_apply`):
#   dir proto iana src sport dst dport sif dif nsrc nsport ndst ndport suser user server_user
#   rule outcome itype icode bytes sbytes dbytes dur reason protocol url sgroup gp assigned cid
# `_ADDR` is an address after `interface:` where the interface itself may hold colons
# (`v1:outside:10.8.1.9`): an IPv6 address, else a host name or IPv4 address.
_ADDR = r"(?:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]{1,60}|[\w.-]{1,253})"
_IF = r"\S{0,64}"
_CONN_SIDE = (
    r"(?P<{p}if>[^\s:]*):(?P<{p}>[^\s/]+)/(?P<{p}port>\d+) "
    r"\((?P<n{p}>[^\s/]+)/(?P<n{p}port>\d+)\)(?:\((?P<{p}user>[^)]*)\))?"
)
_GROUP_USER_IP = (
    r"Group <(?P<sgroup>[^>]*)> User <(?P<suser>[^>]*)> IP <(?P<src>[^>]*)>",
    r"Group (?P<sgroup>\S+) User (?P<suser>\S+) IP (?P<src>[^\s,]+)",
)
_DYNAMIC_FILTER = (
    r"Dynamic [Ff]ilter \S+ (?:black|white|grey) ?\S*d (?P<proto>\S+) traffic from "
    r"(?P<sif>[^\s:]+):(?P<src>[^\s/]+)/(?P<sport>\d+) \((?P<nsrc>[^\s/]+)/(?P<nsport>\d+)\) to "
    r"(?P<dif>[^\s:]+):(?P<dst>[^\s/]+)/(?P<dport>\d+) \((?P<ndst>[^\s/]+)/(?P<ndport>\d+)\),? "
    r"(?:source|destination) \S+ resolved from (?P<rule>\S+) list: [^,]*"
    r"(?:, threat-level: (?P<tlevel>[^,]*), category: (?P<tcat>.*))?"
)
_TEARDOWN = (
    r"Teardown (?P<proto>\S+) connection (?P<cid>\d+) for (?P<sif>[^\s:]*):(?P<src>[^\s/]+)/"
    r"(?P<sport>\d+)(?:\((?P<suser>[^)]*)\))?.*? to (?P<dif>[^\s:]*):(?P<dst>[^\s/]+)/"
    r"(?P<dport>\d+)(?:\((?P<duser>[^)]*)\))?.*? duration (?P<dur>\d+:\d\d:\d\d) "
    r"bytes (?P<bytes>\d+)(?: (?P<reason>[^()]*?))?(?: \([^)]*\))?\s*$"
)
_ICMP_CONNECTION = (
    r"(?:Built (?P<dir>\S+)|Teardown) (?P<ntype>\S+) connection for faddr (?P<f>[^\s/]+)/\d+"
    r"\s*(?:\([^)]*\)\s*)?gaddr (?P<g>[^\s/]+)/\d+ laddr (?P<l>[^\s/]+)/\d+\s*(?:\([^)]*\)\s*)?"
    r"(?:type (?P<itype>\d+) code (?P<icode>\d+))?"
)
_ACCESS_LIST = (
    r"access-list (?P<rule>\S+) (?P<outcome>\S+) (?P<proto>\S+) {user}(?P<sif>[^/\s]+)/"
    r"(?P<src>[^(\s]+)\((?P<sport>\d+)\).*?-> (?P<dif>[^/\s]+)/(?P<dst>[^(\s]+)\((?P<dport>\d+)\)"
)
_SOURCE_PATTERNS: dict[str, tuple[str, ...]] = {
    "106001": (
        r"(?P<dir>\S+) (?P<proto>\S+) connection denied from (?P<src>\S+)/(?P<sport>\d+) to "
        r"(?P<dst>\S+)/(?P<dport>\d+) flags .*? on interface (?P<sif>\S+)",
    ),
    "106002": (
        r"(?P<proto>\S+) Connection denied by (?P<dir>\S+) list (?P<rule>\S+) src (?P<src>\S+) "
        r"dest (?P<dst>\S+)",
    ),
    "106006": (
        r"Deny (?P<dir>\S+) (?P<proto>\S+) from (?P<src>\S+)/(?P<sport>\d+) to "
        r"(?P<dst>\S+)/(?P<dport>\d+) on interface (?P<sif>\S+)",
    ),
    "106007": (
        r"Deny (?P<dir>\S+) (?P<proto>\S+) from (?P<src>\S+)/(?P<sport>\d+) to "
        r"(?P<dst>\S+)/(?P<dport>\d+) due to (?P<protocol>\S+)",
    ),
    "106010": (
        rf"Deny (?P<dir>\S+) (?:protocol (?P<iana>\d+)|(?P<proto>\S+)) src (?P<sif>{_IF}?):"
        rf"(?P<src>{_ADDR})(?:/(?P<sport>\d+))? (?:.*?)?dst (?P<dif>{_IF}?):(?P<dst>{_ADDR})"
        r"(?:/(?P<dport>\d+))?",
    ),
    "106012": (r"Deny IP from (?P<src>\S+) to (?P<dst>\S+), (?P<reason>.*)",),
    "106013": (r"Dropping echo request from (?P<src>\S+) to PAT address (?P<dst>\S+)",),
    "106014": (
        rf"Deny (?P<dir>\S+) (?P<proto>\S+) src (?P<sif>{_IF}?):(?P<src>{_ADDR}) (?:.*?)?"
        rf"dst (?P<dif>{_IF}?):(?P<dst>[^\s(]+)",
    ),
    "106015": (
        r"Deny (?P<proto>\S+) \S+ \S+ from (?P<src>[^\s/]+)/(?P<sport>\d+) to "
        r"(?P<dst>[^\s/]+)/(?P<dport>\d+) flags .*? on interface (?P<sif>\S+)",
    ),
    "106016": (r"Deny IP spoof from \((?P<src>[^)]*)\) to (?P<dst>\S+) on interface (?P<sif>\S+)",),
    "106017": (r"Deny IP due to Land Attack from (?P<src>\S+) to (?P<dst>\S+)",),
    "106018": (
        r"(?P<proto>\S+) packet type (?P<itype>\S+) denied by (?P<dir>\S+) list (?P<rule>\S+) "
        r"src (?P<src>\S+) dest (?P<dst>\S+)",
    ),
    "106020": (
        r"Deny IP teardrop fragment \(size = [^,]*, offset = [^)]*\) from (?P<src>\S+) to "
        r"(?P<dst>\S+)",
    ),
    "106021": (
        r"Deny (?P<proto>\S+) reverse path check from (?P<src>\S+) to (?P<dst>\S+) on interface "
        r"(?P<sif>\S+)",
    ),
    "106022": (
        r"Deny (?P<proto>\S+) connection spoof from (?P<src>\S+) to (?P<dst>\S+) on interface "
        r"(?P<sif>\S+)",
    ),
    "106023": (
        rf"Deny (?:protocol (?P<iana>\d+)|(?P<proto>\S+)) src (?P<sif>{_IF}?):(?P<src>{_ADDR})"
        rf"(?:/(?P<sport>\d+))?\s*(?:\((?P<suser>[^)]*)\) )?dst (?P<dif>{_IF}?):(?P<dst>{_ADDR})"
        r'(?:/(?P<dport>\d+))?[(\s]+.*?by access-group "(?P<rule>[^"\s]+)"',
    ),
    "106027": (r'.*? Deny src (?P<src>\S+) dst (?P<dst>\S+) by access-group "(?P<rule>[^"]*)"',),
    "106100": (_ACCESS_LIST.format(user=""),),
    "106102": (_ACCESS_LIST.format(user=r"for user (?P<user>\S+) "),),
    "106103": (_ACCESS_LIST.format(user=r"for user (?P<user>\S+) "),),
    "111004": (r"(?P<src>\S+) end configuration: (?P<outcome>\S+)",),
    "111007": (r"Begin configuration: (?P<src>\S+) ",),
    "111009": (r"\S+ '(?P<server_user>\S+)' executed ",),
    "111010": (r"User '(?P<server_user>\S+)', running '[^']*' from IP (?P<src>\S+), executed ",),
    "113004": (
        r"AAA user .*? Successful\s*: server =\s*(?P<dst>\S+) [:,] [Uu]ser = (?P<suser>\S+)",
    ),
    "113005": (
        r"AAA user (?:authentication|authorization) Rejected\s*: reason = (?P<reason>.*?)\s*: "
        r"server = (?P<dst>\S+)\s*: user = ?(?P<suser>[^:\s]*)\s*: user IP = "
        r"(?:None|(?P<src>\S+))",
    ),
    "113008": (r"AAA transaction status ACCEPT\s*: user = (?P<suser>.+)",),
    "113009": (r"AAA retrieved default group policy (?P<gp>.+?) for user (?P<suser>.+)",),
    "113012": (
        r"AAA user authentication Successful\s*: local database\s*: [Uu]ser = (?P<suser>\S+)",
    ),
    "113015": (
        r"AAA user authentication Rejected\s*: reason = (?P<reason>.*?)\s*: local database\s*: "
        r"[Uu]ser = (?P<suser>\S+?)\s*: [Uu]ser IP = (?P<src>\S+)",
    ),
    "113019": (
        r"Group = (?P<sgroup>[^,]*), Username = (?P<suser>[^,]*), IP = (?P<dst>[^,]*), Session "
        r"disconnected\. Session Type: [^,]*, Duration: (?P<dur>[^,]*), Bytes xmt: "
        r"(?P<sbytes>\d+), Bytes rcv: (?P<dbytes>\d+), Reason: (?P<reason>.*)",
    ),
    "113021": (
        r"Attempted console login failed\. User (?P<suser>\S+) did NOT have appropriate Admin",
    ),
    "113022": (r"AAA Marking (?P<protocol>\S+) server (?P<dst>\S+) in aaa-server group",),
    "113023": (r"AAA Marking (?P<protocol>\S+) server (?P<dst>\S+) in aaa-server group",),
    "302013": (
        r"Built (?P<dir>\S+) (?P<proto>\S+) connection (?P<cid>\d+) for "
        + _CONN_SIDE.format(p="a")
        + " to "
        + _CONN_SIDE.format(p="b"),
    ),
    "302014": (_TEARDOWN,),
    "302016": (_TEARDOWN,),
    "302018": (_TEARDOWN,),
    "302020": (_ICMP_CONNECTION,),
    "302021": (_ICMP_CONNECTION,),
    "304001": (
        r"(?:(?P<suser>[^\s@]+)@)?(?P<src>[0-9A-Fa-f.:]+)(?:\([^)]*\))? .*? (?:\S+@)?"
        r"(?P<dst>[\w.-]+):(?P<url>.*)",
    ),
    "304002": (
        r"Access denied URL (?P<url>\S+) SRC (?P<src>\S+) .*?EST (?P<dst>\S+) on interface "
        r"(?P<sif>\S+)",
    ),
    "305011": (
        r"Built \S+ (?P<proto>\S+) translation from (?P<sif>[^\s:]+):(?P<src>[^\s/]+)/"
        r"(?P<sport>\d+)(?:\((?P<suser>[^)\s]+)\))? to (?P<dif>[^\s:]+):(?P<dst>[^\s/]+)/"
        r"(?P<dport>\d+)",
    ),
    "305012": (
        r"Teardown .*? (?P<proto>\S+) translation from (?P<sif>[^\s:]*):(?P<src>[^\s/]+)/"
        r"(?P<sport>\d+)(?:\s*\((?P<suser>[^)]*)\))? to (?P<dif>[^\s:]*):(?P<dst>[^\s/]+)/"
        r"(?P<dport>\d+) duration (?P<dur>\d+:\d\d:\d\d)",
    ),
    "313001": (
        r"Denied (?P<proto>\S+) type=(?P<itype>[^,]*), code=(?P<icode>\S+) from (?P<src>\S+) "
        r"on interface (?P<sif>\S+)",
    ),
    "313004": (
        r"Denied (?P<proto>\S+) type=(?P<itype>[^,]*), from.*?addr (?P<src>\S+) on interface "
        r"(?P<sif>\S+) to (?P<dst>\S+?): no matching session",
    ),
    "313008": (
        r"Denied (?P<proto>\S+) type=(?P<itype>[^,]*), code=(?P<icode>\S+) from (?P<src>\S+) "
        r"on interface (?P<sif>\S+)",
    ),
    "315011": (
        r"SSH session from (?P<src>\S+) on interface (?P<sif>\S+) for user (?P<suser>\S+) "
        r"disconnected by SSH server, reason: (?P<reason>.*)",
    ),
    "605004": (
        r"Login denied from (?P<src>[^\s/]+)/(?P<sport>\S+) to (?P<dif>[^\s:]+):"
        r'(?P<dst>[^\s/]+)/(?P<protocol>\S+) for user "(?P<suser>[^"]*)"',
    ),
    "605005": (
        r"Login permitted from (?P<src>[^\s/]+)/(?P<sport>\S+) to (?P<dif>[^\s:]+):"
        r'(?P<dst>[^\s/]+)/(?P<protocol>\S+) for user "(?P<suser>[^"]*)"',
    ),
    "611101": (
        r"User authentication succeeded: IP address: (?P<src>[^,\s]+), Uname: (?P<suser>.+)",
    ),
    "611102": (r"User authentication failed: IP address: (?P<src>[^,\s]+), Uname: (?P<suser>.+)",),
    "611103": (r"User logged out: Uname: (?P<suser>.+)",),
    "751025": (
        r"Local:(?P<src>\S+):(?P<sport>\d+) Remote:(?P<dst>\S+):(?P<dport>\d+) "
        r"Username:(?P<suser>\S+)(?: \S+)? Group:(?P<gp>\S+) IPv4 Address=(?P<assigned>\S+)",
    ),
}
for _id in ("302015",):
    _SOURCE_PATTERNS[_id] = _SOURCE_PATTERNS["302013"]
for _id in (*(f"3380{n:02d}" for n in range(1, 9)), "338101", "338102", "338103", "338104"):
    _SOURCE_PATTERNS[_id] = (_DYNAMIC_FILTER,)
for _id in (
    "113029",
    "113030",
    "113031",
    "113032",
    "113033",
    "113034",
    "113035",
    "113036",
    "113038",
    "113039",
    "716001",
    "716002",
    "716039",
    "716058",
    "716059",
    "722022",
    "722023",
    "722028",
    "722032",
    "722033",
    "722034",
    "722037",
    "722051",
    "722055",
):
    _SOURCE_PATTERNS[_id] = _GROUP_USER_IP

_PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    message_id: tuple(re.compile(source) for source in sources)
    for message_id, sources in _SOURCE_PATTERNS.items()
}
# Fixed values a message id implies when its text does not say them.
_STATIC: dict[str, dict[str, str]] = {"106013": {"proto": "icmp", "dir": "inbound"}}

# --------------------------------------------------------------------------- categorisation

_DENIED = (("connection", "denied"), "failure", "firewall-rule")
_FLOW_START = (("connection", "start"), "success", "flow-creation")
_FLOW_END = (("connection", "end"), "success", "flow-expiration")
_LOGGED_IN = (("allowed", "info"), "success", "logged-in", ("authentication", "network"))
_LOGON_FAILED = (("denied", "info"), "failure", "logon-failed", ("authentication", "network"))
_VPN_ERROR = (("connection", "denied"), "failure", "client-vpn-error")
_FILTER_INFO = (("connection", "info"), None, "dynamic-filter")
_FILTER_DENIED = (("connection", "denied"), "failure", "dynamic-filter")

# Message id -> (event.type, event.outcome, event.action[, event.category]); None: not set.
Category = tuple[Any, ...]
_CATEGORIES: dict[str, Category] = {
    **dict.fromkeys(
        (
            "106001",
            "106002",
            "106006",
            "106007",
            "106010",
            "106012",
            "106013",
            "106014",
            "106015",
            "106016",
            "106017",
            "106018",
            "106020",
            "106021",
            "106022",
            "106023",
            "106027",
            "106103",
            "313001",
            "313004",
            "313005",
            "313008",
            "313009",
            "322001",
            "434002",
            "710003",
            "710005",
            "710006",
        ),
        _DENIED,
    ),
    "110002": (("connection", "info"), "failure", "firewall-rule"),
    "111007": (("info",), "success", "configuration", ("configuration",)),
    "111009": (("info",), "success", "configuration", ("configuration",)),
    "111010": (("change",), "success", "configuration", ("configuration",)),
    **dict.fromkeys(
        ("113004", "113008", "113009", "113012", "605005", "611101", "734001"), _LOGGED_IN
    ),
    **dict.fromkeys(("113005", "113015", "113021", "605004", "611102"), _LOGON_FAILED),
    "113019": (("connection", "end"), None, "client-vpn-disconnected"),
    "113022": (("info",), "failure", "server-failed"),
    "113023": (("info",), "success", "server-active"),
    **dict.fromkeys(
        (
            "113029",
            "113030",
            "113031",
            "113032",
            "113033",
            "113034",
            "113035",
            "113036",
            "113037",
            "113038",
            "113040",
        ),
        _VPN_ERROR,
    ),
    "113039": (("connection", "start"), "success", "client-vpn-connected", ("network", "session")),
    **dict.fromkeys(("302013", "302015", "302020", "302022", "302024", "302026"), _FLOW_START),
    **dict.fromkeys(("302016", "302018", "302021", "302023", "302025", "302027"), _FLOW_END),
    **dict.fromkeys(
        ("302014", "302036", "302304", "302306"), (("connection", "end"), None, "flow-expiration")
    ),
    "303002": (("access",), "success", "ftp", ("network", "file")),
    "304001": (("access", "allowed"), "success", "url-access"),
    "304002": (("access", "denied"), "failure", "url-access"),
    "305011": (("creation",), "success", "nat-slot", ("network", "configuration")),
    "305012": (("deletion",), "success", "nat-slot", ("network", "configuration")),
    "315011": (("connection", "end"), None, "ssh-session-ended"),
    **dict.fromkeys(
        ("338001", "338002", "338003", "338004", "338101", "338102", "338103", "338104"),
        _FILTER_INFO,
    ),
    **dict.fromkeys(("338201", "338202"), _FILTER_INFO),
    **dict.fromkeys(("338005", "338006", "338007", "338008", "338203", "338204"), _FILTER_DENIED),
    "338301": (("connection", "info"), None, "firewall-rule"),
    "419002": (("connection", "info"), None, "firewall-rule"),
    "425005": (("info",), None, "interface-switchover"),
    "434004": (("info",), None, "bypass"),
    "502103": (("user", "change"), "success", "privilege-level-changed", ("iam",)),
    "507003": (("connection", "end"), None, "flow-termination"),
    "602303": (("connection", "start"), "success", "sa-created"),
    "602304": (("connection", "end"), "success", "sa-deleted"),
    "607001": (("info",), "success", "firewall-rule"),
    "609001": _FLOW_START,
    "609002": _FLOW_END,
    "611103": (("info",), "success", "logged-out", ("authentication", "network")),
    "713049": (("connection", "start"), "success", "firewall-rule"),
    "713120": (("connection", "info"), "success", "firewall-rule"),
    "713202": (("connection", "info"), None, "firewall-rule"),
    "713901": (("info",), "failure", "client-vpn-error"),
    "713902": (("info",), "failure", "client-vpn-error"),
    **dict.fromkeys(
        ("713903", "713904", "713905", "713906", "722011", "733100"), (("info",), None, None)
    ),
    "716002": (("connection", "end"), None, "client-vpn-disconnected"),
    "716003": (("allowed", "info"), "success", None, ("authentication", "network")),
    "716039": _LOGON_FAILED,
    "716058": (("connection", "end"), None, "client-vpn-disconnected"),
    "716059": (("connection", "start"), None, "client-vpn-resumed"),
    "721016": (("connection", "start"), "success", "client-vpn-connected"),
    "721018": (("connection", "end"), "success", "client-vpn-disconnected"),
    "722022": (("connection", "info"), "success", None),
    "722023": (("connection", "end"), "success", None),
    "722028": (("connection", "end"), "success", None),
    "722032": (("connection", "start"), "success", None),
    "722033": (("connection", "start"), "success", None),
    "722034": (("connection", "info"), None, None),
    "722037": (("connection", "end"), None, None),
    "722051": (("connection", "info"), "success", "address-assigned"),
    "722055": (("connection", "info"), None, None),
    "725001": (("connection", "start"), "success", None),
    "725002": (("connection", "info"), "success", None),
    "725007": (("connection", "end"), "failure", None),
    "725016": (("connection", "info"), "success", None),
    "737003": (("connection", "info"), "failure", None),
    "737006": (("connection", "info"), "success", None),
    "737016": (("connection", "info"), "success", None),
    "737026": (("connection", "info"), "success", None),
    "737034": (("connection", "info"), "failure", None),
    "750002": (("connection", "start"), "success", "connection-started"),
    "750003": (("connection", "start"), "failure", None),
    "805001": (("connection", "start"), "success", "flow-offload-started"),
    "805002": (("connection", "end"), "success", "flow-offload-ended"),
}
# (message id, outcome word in the text) -> categorisation, for messages that say it.
_ACL_DENIED = (("connection", "denied"), "failure", "firewall-rule")
_ACL_ALLOWED = (("connection", "allowed"), "success", "firewall-rule")
_OUTCOME_CATEGORIES: dict[tuple[str, str], Category] = {
    ("106100", "denied"): _ACL_DENIED,
    ("106100", "permitted"): _ACL_ALLOWED,
    ("106100", "est-allowed"): _ACL_ALLOWED,
    ("106102", "denied"): _ACL_DENIED,
    ("106102", "permitted"): _ACL_ALLOWED,
    ("111004", "failed"): (("info",), "failure", "configuration", ("configuration",)),
    ("111004", "ok"): (("change",), "success", "configuration", ("configuration",)),
}


# --------------------------------------------------------------------------- parsing


def parse(message: str, ctx: SourceContext) -> EcsDoc:
    """One ASA syslog message to an ECS document; ParseError when it carries no `%ASA-` label."""
    label = _LABEL_RE.search(message, 0, _MAX_HEADER)
    if label is None:
        raise ParseError("no Cisco ASA/FTD label (%ASA-<severity>-<id>) in the message header")
    event: dict[str, Any] = {
        "kind": "event",
        "category": ["network"],
        "dataset": DATASET,
        "module": MODULE,
    }
    observer: dict[str, Any] = {"vendor": "Cisco", "product": "asa", "type": "firewall"}
    doc: EcsDoc = {"event": event, "observer": observer}
    _header(message[: label.start()], doc, ctx)

    severity = int(label.group("sev"))
    event["severity"] = severity
    doc.setdefault("log", {})["level"] = _LOG_LEVELS[severity]
    text = message[label.end() :]
    cisco: dict[str, Any] = {}
    repeated = _REPEATED_RE.match(text) if text.startswith("message repeated ") else None
    if repeated is not None:
        cisco["message_repeats"] = int(repeated.group("count"))
        text = repeated.group("text")
    doc["message"] = text
    message_id = label.group("id")
    if message_id is not None:
        event["code"] = message_id
        _message_fields(message_id, text, doc, cisco)
    if cisco:
        doc["cisco"] = {"asa": cisco}
    _related(doc)
    event["original"] = message
    return doc


def _header(prefix: str, doc: EcsDoc, ctx: SourceContext) -> None:
    """PRI, timestamp, host and process from the text before the `%ASA-` label."""
    rest = prefix
    if rest.startswith("<"):
        try:
            priority, rest = split_pri(rest)
        except ParseError:
            pass
        else:
            doc["log"] = {
                "syslog": {
                    "priority": priority,
                    "facility": {"code": priority >> 3},
                    "severity": {"code": priority & 7},
                }
            }
    rest = rest.lstrip()
    date = _DATE_RE.match(rest)
    moment: datetime | None = None
    if date is not None:
        moment = _asa_time(date, ctx)
        if date.group("tz"):
            doc["event"]["timezone"] = date.group("tz")
        rest = rest[date.end() :]
    else:
        iso = _ISO_RE.match(rest)
        if iso is not None:
            moment = _iso_time(iso.group("iso"), ctx.tz)
            rest = rest[iso.end() :]
    if moment is not None:
        doc["@timestamp"] = format_timestamp(moment)
    doc["event"].setdefault("timezone", zone_name(ctx.tz))
    rest = rest.strip().rstrip(":").rstrip()
    if not rest:
        return
    both = _PROCESS_HOST_RE.fullmatch(rest)
    if both is not None:
        doc["process"] = {"name": both.group("process")}
        doc["host"] = {"name": both.group("host")}
        return
    parts = _HOST_PROCESS_RE.fullmatch(rest)
    if parts is None:
        return
    host, process, pid = parts.group("host", "process", "pid")
    if host is None and process is not None and pid is None:
        if _HOST_TOKEN_RE.fullmatch(process) is None:
            return
        host, process = process, None
    if host is not None:
        doc["host"] = {"hostname": host}
        doc["observer"]["hostname"] = host
    if process is not None:
        doc["process"] = {"name": process}
        if pid is not None:
            doc["process"]["pid"] = int(pid)


def _asa_time(date: re.Match[str], ctx: SourceContext) -> datetime | None:
    """`Apr 29 2013 12:59:50[.fff] [EDT]`; the current year when the text has none."""
    month = _MONTHS.get(date.group("mon"))
    if month is None:
        return None
    tz = _ABBREVIATED_ZONES.get(date.group("tz") or "") or ctx.tz or UTC
    year_text = date.group("year")
    year = int(year_text) if year_text is not None else year_for_month(month, tz)
    clock = date.group("time")
    fraction = clock[9:]
    micros = int((fraction + "000000")[:6]) if fraction else 0
    try:
        return datetime(
            year,
            month,
            int(date.group("day")),
            int(clock[0:2]),
            int(clock[3:5]),
            int(clock[6:8]),
            micros,
            tzinfo=tz,
        )
    except ValueError:
        return None


def _iso_time(text: str, tz: tzinfo | None) -> datetime | None:
    normalized = text.replace(" ", "T", 1).replace("Z", "+00:00")
    if "." in normalized:
        # Python reads at most microseconds.
        head, _, tail = normalized.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        normalized = head + "." + tail[: min(digits, 6)].ljust(6, "0") + tail[digits:]
    try:
        moment = datetime.fromisoformat(normalized)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=tz or UTC)


# --------------------------------------------------------------------------- message fields


def _message_fields(message_id: str, text: str, doc: EcsDoc, cisco: dict[str, Any]) -> None:
    patterns = _PATTERNS.get(message_id)
    groups: dict[str, str] = dict(_STATIC.get(message_id, {}))
    if patterns is not None:
        head = text[:_MAX_PARSED]
        for pattern in patterns:
            match = pattern.match(head)
            if match is not None:
                groups.update({k: v for k, v in match.groupdict().items() if v is not None})
                break
    if groups:
        _apply(message_id, groups, doc, cisco)
    category = None
    outcome_word = groups.get("outcome")
    if outcome_word is not None:
        category = _OUTCOME_CATEGORIES.get((message_id, outcome_word.lower()))
    if category is None:
        category = _CATEGORIES.get(message_id)
    if category is not None:
        _categorise(doc["event"], category)


def _categorise(event: dict[str, Any], category: Category) -> None:
    types, outcome, action = category[0], category[1], category[2]
    event["type"] = list(types)
    if outcome is not None:
        event["outcome"] = outcome
    if action is not None:
        event["action"] = action
    if len(category) > 3:
        event["category"] = list(category[3])


def _apply(message_id: str, groups: dict[str, str], doc: EcsDoc, cisco: dict[str, Any]) -> None:
    """Map the named groups of a message pattern to ECS and `cisco.asa.*`."""
    if "a" in groups:
        _connection_sides(groups)
    elif "f" in groups:
        _icmp_sides(groups, doc, cisco)
    source: dict[str, Any] = {}
    destination: dict[str, Any] = {}
    network: dict[str, Any] = {}
    _endpoint(source, groups.get("src"), groups.get("sport"))
    _endpoint(destination, groups.get("dst"), groups.get("dport"))
    _nat(source, cisco, "source", groups.get("nsrc"), groups.get("nsport"))
    _nat(destination, cisco, "destination", groups.get("ndst"), groups.get("ndport"))
    direction = groups.get("dir")
    if direction is not None:
        network["direction"] = direction.lower()
    _transport(network, groups.get("proto"), groups.get("iana"))
    if "protocol" in groups:
        network["protocol"] = groups["protocol"].lower()
    if "ntype" in groups:
        network["type"] = groups["ntype"].lower()
    for key, target in (("bytes", network), ("sbytes", source), ("dbytes", destination)):
        number = _long(groups.get(key))
        if number is not None:
            target["bytes"] = number
    if "bytes" in source and "bytes" in destination and "bytes" not in network:
        network["bytes"] = source["bytes"] + destination["bytes"]
    observer = doc["observer"]
    if "sif" in groups:
        cisco["source_interface"] = groups["sif"]
        observer["ingress"] = {"interface": {"name": groups["sif"]}}
    if "dif" in groups:
        cisco["destination_interface"] = groups["dif"]
        observer["egress"] = {"interface": {"name": groups["dif"]}}
    for key, field in _CISCO_FIELDS:
        if key in groups:
            cisco[field] = groups[key]
    for key, field in (("itype", "icmp_type"), ("icode", "icmp_code")):
        value = groups.get(key)
        if value is not None:
            number = _long(value)
            cisco[field] = number if number is not None else value
    event = doc["event"]
    if "reason" in groups:
        event["reason"] = groups["reason"]
    duration = _duration(groups.get("dur"))
    if duration is not None:
        event["duration"] = duration
    if "suser" in groups:
        _user(source, groups["suser"])
    if "duser" in groups:
        _user(destination, groups["duser"])
    if "sgroup" in groups:
        source.setdefault("user", {})["group"] = {"name": groups["sgroup"]}
    if "user" in groups:
        doc["user"] = {"name": groups["user"].strip("'\"")}
    elif "name" in destination.get("user", {}):
        doc["user"] = {"name": destination["user"]["name"]}
    if "server_user" in groups:
        doc["server"] = {"user": {"name": groups["server_user"]}}
    if "url" in groups:
        doc["url"] = {"original": groups["url"]}
    for name, section in (("source", source), ("destination", destination), ("network", network)):
        if section:
            doc[name] = section


_CISCO_FIELDS = (
    ("rule", "rule_name"),
    ("cid", "connection_id"),
    ("gp", "group_policy"),
    ("assigned", "assigned_ip"),
    ("tlevel", "threat_level"),
    ("tcat", "threat_category"),
    ("tuser", "termination_user"),
)


def _connection_sides(groups: dict[str, str]) -> None:
    """302013/302015: the first side is the source of an inbound connection and the
    destination of an outbound one (the initiator is inside)."""
    outbound = groups.get("dir", "").lower() == "outbound"
    first, second = ("d", "s") if outbound else ("s", "d")
    for side, prefix in (("a", first), ("b", second)):
        name = "src" if prefix == "s" else "dst"
        for key, target in (
            (side, name),
            (f"{side}port", f"{prefix}port"),
            (f"{side}if", f"{prefix}if"),
            (f"n{side}", f"n{name}"),
            (f"n{side}port", f"n{prefix}port"),
            (f"{side}user", f"{prefix}user"),
        ):
            if key in groups:
                groups[target] = groups.pop(key)


def _icmp_sides(groups: dict[str, str], doc: EcsDoc, cisco: dict[str, Any]) -> None:
    """302020/302021: faddr (foreign), gaddr (global, the mapped local address), laddr (local).
    Inbound: faddr -> laddr; outbound: laddr -> faddr. gaddr is the NAT address of the local
    side when it differs from laddr."""
    faddr_if, faddr = _split_interface(groups.pop("f"))
    _, gaddr = _split_interface(groups.pop("g"))
    laddr_if, laddr = _split_interface(groups.pop("l"))
    outbound = groups.get("dir", "").lower() == "outbound"
    if outbound:
        groups["src"], groups["dst"] = laddr, faddr
        interfaces = (laddr_if, faddr_if)
        mapped_key, mapped_field = "nsrc", "mapped_source_ip"
    else:
        groups["src"], groups["dst"] = faddr, laddr
        interfaces = (faddr_if, laddr_if)
        mapped_key, mapped_field = "ndst", "mapped_destination_ip"
    for interface, key in zip(interfaces, ("sif", "dif"), strict=True):
        if interface:
            groups[key] = interface
    mapped = normalize_ip(gaddr)
    if mapped is not None:
        cisco[mapped_field] = mapped
        if mapped != normalize_ip(laddr):
            groups[mapped_key] = mapped


def _split_interface(token: str) -> tuple[str | None, str]:
    """`inside:10.0.0.1` -> ("inside", "10.0.0.1"); a bare address (IPv6 included) has none."""
    if ":" not in token or normalize_ip(token) is not None:
        return None, token
    interface, _, address = token.partition(":")
    return interface, address


def _endpoint(section: dict[str, Any], address: str | None, port: str | None) -> None:
    if address is not None and address:
        section["address"] = address
        ip = normalize_ip(address)
        if ip is not None:
            section["ip"] = ip
        else:
            section["domain"] = address
    number = _port(port)
    if number is not None:
        section["port"] = number


def _nat(
    section: dict[str, Any],
    cisco: dict[str, Any],
    side: str,
    address: str | None,
    port: str | None,
) -> None:
    """`<side>.nat.*` only where the firewall translated (the mapped value differs)."""
    nat: dict[str, Any] = {}
    if address is not None:
        ip = normalize_ip(address)
        if ip is not None:
            cisco[f"mapped_{side}_ip"] = ip
            if ip != section.get("ip"):
                nat["ip"] = ip
        else:
            cisco[f"mapped_{side}_host"] = address
    number = _port(port)
    if number is not None:
        cisco[f"mapped_{side}_port"] = number
        if number != section.get("port"):
            nat["port"] = number
    if nat:
        section["nat"] = nat


def _transport(network: dict[str, Any], proto: str | None, iana: str | None) -> None:
    """`network.transport` (lower case; `icmpv6` -> `ipv6-icmp`) and `network.iana_number`."""
    if proto is not None:
        transport = proto.lower()
        if transport == "icmpv6":
            transport = "ipv6-icmp"
        number = _TRANSPORT_NUMBERS.get(transport)
        if number is None and transport.isdecimal():
            name = iana_protocol_name(transport)
            if name is not None:
                number, transport = transport, name
        network["transport"] = transport
        if number is not None:
            network["iana_number"] = number
    elif iana is not None:
        network["iana_number"] = iana
        name = iana_protocol_name(iana)
        if name is not None:
            network["transport"] = name


_USER_RE = re.compile(
    r"(?:LOCAL\\)?(?:(?P<domain>[^\\@]+)\\)?(?P<name>[^\\@]+?)(?:@(?P<email_domain>[^@\\]+))?"
)


def _user(section: dict[str, Any], text: str) -> None:
    """`[LOCAL\\][domain\\]name[@domain]` -> `<side>.user.{name,domain,email}`."""
    user: dict[str, Any] = section.setdefault("user", {})
    match = _USER_RE.fullmatch(text)
    if match is None or set(text) == {"*"}:
        user["name"] = text
        return
    user["name"] = match.group("name")
    domain = match.group("email_domain")
    if domain is not None:
        user["email"] = text
        user["domain"] = domain
    elif match.group("domain") is not None:
        user["domain"] = match.group("domain")


def _port(text: str | None) -> int | None:
    if text is None or not text.isdecimal() or len(text) > 5:
        return None
    number = int(text)
    return number if number <= _MAX_PORT else None


def _long(text: str | None) -> int | None:
    if text is None or not text.isdecimal() or len(text) > 19:
        return None
    number = int(text)
    return number if number <= _MAX_LONG else None


def _duration(text: str | None) -> int | None:
    """`h:mm:ss` to nanoseconds."""
    if text is None:
        return None
    parts = text.strip().split(":")
    if len(parts) != 3 or not all(p.isdecimal() and len(p) <= 9 for p in parts):
        return None
    hours, minutes, seconds = (int(p) for p in parts)
    return ((hours * 60 + minutes) * 60 + seconds) * 1_000_000_000


def _related(doc: EcsDoc) -> None:
    """`related.ip`, `related.user`, `related.hosts` in Elastic's order, without repeats."""
    ips: list[str] = []
    users: list[str] = []
    hosts: list[str] = []
    source = doc.get("source", {})
    destination = doc.get("destination", {})
    for section in (source, source.get("nat", {}), destination, destination.get("nat", {})):
        if "ip" in section:
            ips.append(section["ip"])
    for section in (doc, doc.get("server", {}), source, destination):
        name = section.get("user", {}).get("name")
        if name and name != "*****":
            users.append(name)
    host = doc.get("host", {}).get("hostname")
    if host:
        hosts.append(host)
    for section in (destination, source):
        if "domain" in section:
            hosts.append(section["domain"])
    for section in (source, destination):
        domain = section.get("user", {}).get("domain")
        if domain:
            hosts.append(domain)
    related = {
        key: list(dict.fromkeys(values))
        for key, values in (("ip", ips), ("user", users), ("hosts", hosts))
        if values
    }
    if related:
        doc["related"] = related
