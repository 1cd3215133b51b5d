"""Small pure helpers shared by the vendor parsers.

- `parse_kv`: FortiGate-style ``k=v k2="quoted value"`` lists, one compiled regex.
- `set_field` / `get_field`: dotted ECS names on nested dicts.
- `network_direction`: the semantics of Elastic's `network_direction` ingest processor.
- `iana_protocol_name`: IANA protocol number to the lower-case keyword (`6` -> `tcp`).
- Timestamps: UTC offsets as devices print them, epochs of unknown unit, wall-clock
  date + time in a zone, and the ISO 8601 form written to `@timestamp`.

Everything here is pure: no I/O, no global state beyond bounded caches.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from socket import inet_aton
from typing import Any

# Re-exported for the parsers: the kernel owns dotted-field access.
from socmon.ecs import get_field as get_field
from socmon.ecs import set_field as set_field

IPAddress = IPv4Address | IPv6Address

# --------------------------------------------------------------------------- key=value

# A key is a run of ASCII word characters that starts the text or follows whitespace (a key
# glued to other characters, such as `a.b=1`, is not a key: Elastic drops such keys). The value
# is either quoted - everything up to the next double quote, or to the end of the text when the
# quote is never closed - or bare, up to the next whitespace or quote. Empty values
# (`k=` or `k=""`) produce no pair.
_KV_RE = re.compile(r'(?<![^\s])([A-Za-z0-9_]+)="?((?<=")[^"]+|[^\s"]+)"?')
_KV_FINDALL = _KV_RE.findall

# C0 controls and DEL. Elastic removes them before splitting; whitespace controls become a space
# here so that `a=1<TAB>b=2` stays two pairs.
_CONTROL_BYTES = bytes(range(32)) + b"\x7f"
_CONTROL_TABLE = {code: None for code in (*range(32), 127)} | {
    code: " " for code in (9, 10, 11, 12, 13)
}


def strip_controls(text: str) -> str:
    """`text` without C0 control characters and DEL (tab, CR, LF, VT, FF become spaces)."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw.translate(None, _CONTROL_BYTES)) == len(raw):
        return text
    return text.translate(_CONTROL_TABLE)


def parse_kv(text: str) -> dict[str, str]:
    """Split a ``k=v k2="v 2"`` list into a dict; the last occurrence of a key wins.

    Quoted values may contain spaces and `=`; a quote that is never closed runs to the end of
    the text. Tokens without `=` and keys with characters other than ASCII letters, digits and
    `_` are ignored, as are empty values.
    """
    return dict(_KV_FINDALL(text))


# --------------------------------------------------------------------------- dotted fields


def append_unique(doc: dict[str, Any], path: str, value: Any) -> None:
    """Append `value` to the list at `path` (created when missing) unless already present."""
    current = get_field(doc, path)
    if current is None:
        set_field(doc, path, [value])
    elif isinstance(current, list):
        if value not in current:
            current.append(value)
    elif current != value:
        set_field(doc, path, [current, value])


# --------------------------------------------------------------------------- IP addresses


# Longer text is no address (IPv6 with an embedded IPv4 and a scope id stays well below); the
# bound also keeps hostile values out of the caches below.
_MAX_IP_TEXT = 64

# A dotted-quad IPv4 address as `ipaddress` spells it (ASCII digits, no leading zeros): its text is
# already canonical, and `inet_aton` packs it (the forms only inet_aton would take never match).
# `ipaddress` takes microseconds per address, which live traffic, with few repeated addresses,
# pays on nearly every record.
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_FULLMATCH = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}").fullmatch


def parse_ip(text: str) -> IPAddress | None:
    """The address in `text`, or None. IPv4-mapped IPv6 addresses become IPv4 (as in Java's
    `InetAddresses.forString`, which Elasticsearch uses)."""
    return _parse_ip(text) if len(text) <= _MAX_IP_TEXT else None


@lru_cache(maxsize=8192)
def _parse_ip(text: str) -> IPAddress | None:
    if _IPV4_FULLMATCH(text) is not None:
        return IPv4Address(inet_aton(text))
    try:
        address = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalize_ip(text: str) -> str | None:
    """Canonical text of the address in `text` (`fe80:0000::1` -> `fe80::1`), or None."""
    return _normalize_ip(text) if len(text) <= _MAX_IP_TEXT else None


@lru_cache(maxsize=8192)
def _normalize_ip(text: str) -> str | None:
    if _IPV4_FULLMATCH(text) is not None:
        return text
    address = _parse_ip(text)
    return None if address is None else str(address)


_PRIVATE_NETS = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
    IPv6Network("fd00::/8"),
)
# The IPv4 blocks as integer bounds: containment without `ipaddress` objects.
_PRIVATE_V4_BOUNDS = tuple(
    (int(net.network_address), int(net.broadcast_address))
    for net in _PRIVATE_NETS
    if isinstance(net, IPv4Network)
)
_BROADCAST = IPv4Address("255.255.255.255")
_LINK_LOCAL_MULTICAST_V4 = IPv4Network("224.0.0.0/24")


def _is_private(ip: IPAddress) -> bool:
    if isinstance(ip, IPv4Address):
        value = int(ip)
        return any(low <= value <= high for low, high in _PRIVATE_V4_BOUNDS)
    return any(ip.version == net.version and ip in net for net in _PRIVATE_NETS)


def _multicast_scope(ip: IPAddress) -> int | None:
    """The IPv6 multicast scope nibble (`ffXS::`), None for IPv4 or non-multicast."""
    if isinstance(ip, IPv6Address) and ip.is_multicast:
        return ip.packed[1] & 0x0F
    return None


def _is_link_local_multicast(ip: IPAddress) -> bool:
    if isinstance(ip, IPv4Address):
        return ip in _LINK_LOCAL_MULTICAST_V4
    return _multicast_scope(ip) == 2


def _is_interface_local_multicast(ip: IPAddress) -> bool:
    return _multicast_scope(ip) == 1


def _is_unicast(ip: IPAddress) -> bool:
    return not (
        ip == _BROADCAST
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_multicast
        or ip.is_link_local
    )


def _is_public(ip: IPAddress) -> bool:
    return not (
        _is_private(ip)
        or ip.is_loopback
        or ip.is_unspecified
        or ip.is_link_local
        or _is_link_local_multicast(ip)
        or _is_interface_local_multicast(ip)
        or ip == _BROADCAST
    )


# Named networks of Elastic's `network_direction` processor (plus `link_local`: link-local
# unicast or multicast). Anything else must be an address or a CIDR block.
_NAMED_NETWORKS: dict[str, Callable[[IPAddress], bool]] = {
    "loopback": lambda ip: ip.is_loopback,
    "unicast": _is_unicast,
    "global_unicast": _is_unicast,
    "link_local_unicast": lambda ip: ip.is_link_local,
    "link_local_multicast": _is_link_local_multicast,
    "link_local": lambda ip: ip.is_link_local or _is_link_local_multicast(ip),
    "interface_local_multicast": _is_interface_local_multicast,
    "multicast": lambda ip: ip.is_multicast,
    "unspecified": lambda ip: ip.is_unspecified,
    "private": _is_private,
    "public": _is_public,
}
NAMED_NETWORKS = frozenset(_NAMED_NETWORKS)


@lru_cache(maxsize=1024)
def _cidr(network: str) -> IPv4Network | IPv6Network:
    try:
        return ip_network(network.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"internal network {network!r} is neither a CIDR block nor one of "
            f"{', '.join(sorted(NAMED_NETWORKS))}"
        ) from None


def validate_networks(networks: Iterable[str]) -> None:
    """Raise ValueError naming the first entry that is neither a named network nor a CIDR."""
    for network in networks:
        if network not in _NAMED_NETWORKS:
            _cidr(network)


# Not cached: the tests are cheaper than hashing an `ipaddress` object (`_direction` caches pairs).
def _in_network(ip: IPAddress, network: str) -> bool:
    named = _NAMED_NETWORKS.get(network)
    if named is not None:
        return bool(named(ip))
    cidr = _cidr(network)
    return ip.version == cidr.version and ip in cidr


def in_network(ip: str | IPAddress, network: str) -> bool:
    """Whether `ip` belongs to `network` (a named network or a CIDR block).

    Raises ValueError for a network that is neither; an unparsable `ip` is in no network.
    """
    address = parse_ip(ip) if isinstance(ip, str) else ip
    if address is None:
        if network not in _NAMED_NETWORKS:
            _cidr(network)
        return False
    return _in_network(address, network)


def is_internal(ip: str | IPAddress, networks: Iterable[str]) -> bool:
    """Whether `ip` belongs to any of `networks`."""
    return any(in_network(ip, network) for network in networks)


def network_direction(
    source_ip: str | None, destination_ip: str | None, internal_networks: Iterable[str]
) -> str | None:
    """`network.direction` from the two addresses, as Elastic's `network_direction` processor.

    internal + internal -> "internal", internal -> external "outbound", external -> internal
    "inbound", external + external -> "external". None when an address is missing or invalid
    (the processor's `ignore_missing`). Raises ValueError for an unknown network name.
    """
    if not source_ip or not destination_ip:
        return None
    networks = (
        internal_networks if isinstance(internal_networks, tuple) else tuple(internal_networks)
    )
    if len(source_ip) > _MAX_IP_TEXT or len(destination_ip) > _MAX_IP_TEXT:
        validate_networks(networks)
        return None
    return _direction(source_ip, destination_ip, networks)


@lru_cache(maxsize=16384)
def _direction(source_ip: str, destination_ip: str, networks: tuple[str, ...]) -> str | None:
    source, destination = parse_ip(source_ip), parse_ip(destination_ip)
    if source is None or destination is None:
        validate_networks(networks)
        return None
    source_internal = is_internal(source, networks)
    destination_internal = is_internal(destination, networks)
    if source_internal:
        return "internal" if destination_internal else "outbound"
    return "inbound" if destination_internal else "external"


# --------------------------------------------------------------------------- IANA protocols

# Lower-case keywords of the IANA "Assigned Internet Protocol Numbers" registry.
IANA_PROTOCOLS: Mapping[int, str] = {
    0: "hopopt",
    1: "icmp",
    2: "igmp",
    3: "ggp",
    4: "ipv4",
    5: "st",
    6: "tcp",
    8: "egp",
    9: "igp",
    17: "udp",
    27: "rdp",
    33: "dccp",
    41: "ipv6",
    43: "ipv6-route",
    44: "ipv6-frag",
    46: "rsvp",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "ipv6-icmp",
    59: "ipv6-nonxt",
    60: "ipv6-opts",
    88: "eigrp",
    89: "ospfigp",
    94: "ipip",
    97: "etherip",
    103: "pim",
    112: "vrrp",
    115: "l2tp",
    132: "sctp",
    136: "udplite",
    137: "mpls-in-ip",
}

# The common spelling of each number ("6"), looked up before any parsing.
_IANA_NAMES_BY_TEXT = {str(number): name for number, name in IANA_PROTOCOLS.items()}


def iana_protocol_name(number: int | str) -> str | None:
    """`network.transport` for an IANA protocol number (`6` or "6" -> "tcp"), None if unknown."""
    if isinstance(number, str):
        name = _IANA_NAMES_BY_TEXT.get(number)
        if name is not None:
            return name
        number = number.strip()
        if not number.isdecimal() or len(number) > 3:
            return None
        number = int(number)
    return IANA_PROTOCOLS.get(number)


# --------------------------------------------------------------------------- timestamps

# "-0500", "+01:00", "+2", "UTC-5:00", "GMT+0200", "EST-5": an optional 1-4 letter prefix
# (ignored, as in Elastic's FortiGate pipeline), a sign, hours and optional minutes.
_OFFSET_RE = re.compile(r"(?:[A-Za-z]{1,4})?([+-])(\d{1,2})(?::?(\d{2}))?")
_UTC_NAMES = frozenset({"z", "utc", "gmt", "ut"})
_MAX_OFFSET_TEXT = 16


def parse_utc_offset(text: str) -> timezone | None:
    """A fixed-offset zone from a device's time-zone text, or None when it is not an offset.

    Accepts "Z", "UTC", "GMT", "-0500", "+01:00", "+02", "UTC-5:00", "GMT+0200". Offsets beyond
    ±18:00 (Java's limit) are refused.
    """
    return _parse_utc_offset(text) if len(text) <= _MAX_OFFSET_TEXT else None


@lru_cache(maxsize=256)
def _parse_utc_offset(text: str) -> timezone | None:
    value = text.strip()
    if value.lower() in _UTC_NAMES:
        return UTC
    match = _OFFSET_RE.fullmatch(value)
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    total = int(hours) * 60 + int(minutes or 0)
    if int(minutes or 0) >= 60 or total > 18 * 60:
        return None
    if total == 0:
        return UTC
    return timezone(timedelta(minutes=-total if sign == "-" else total))


def offset_text(text: str) -> str:
    """A device's time-zone text in `±HHMM` form when it is an offset ("UTC-5:00" -> "-0500"),
    otherwise unchanged."""
    return _offset_text(text) if len(text) <= _MAX_OFFSET_TEXT else text


@lru_cache(maxsize=256)
def _offset_text(text: str) -> str:
    match = _OFFSET_RE.fullmatch(text.strip())
    if match is None:
        return text
    sign, hours, minutes = match.groups()
    return f"{sign}{int(hours):02d}{minutes or '00'}"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_to_datetime(value: str | int, tz: tzinfo | None = None) -> datetime | None:
    """An aware datetime from a Unix epoch whose unit is inferred from its number of digits.

    Up to 11 digits: seconds; 12-14: milliseconds; 15-17: microseconds; 18-19: nanoseconds
    (truncated to microseconds). None for anything else. The result is expressed in `tz`
    (UTC when None).
    """
    text = str(value).strip()
    digits = len(text)
    if not text.isdigit() or not text.isascii() or digits > 19:
        return None
    number = int(text)
    if digits <= 11:
        micros = number * 1_000_000
    elif digits <= 14:
        micros = number * 1_000
    elif digits <= 17:
        micros = number
    elif digits <= 19:
        micros = number // 1_000
    else:
        return None
    try:
        moment = _EPOCH + timedelta(microseconds=micros)
    except OverflowError:
        return None
    return moment.astimezone(tz) if tz is not None else moment


def local_datetime(date_text: str, time_text: str, tz: tzinfo | None) -> datetime | None:
    """`YYYY-MM-DD` + `HH:MM:SS[.ffffff]` read as wall-clock time in `tz` (UTC when None).

    None when either part is malformed.
    """
    if len(date_text) != 10 or date_text[4] != "-" or date_text[7] != "-":
        return None
    if len(time_text) < 8 or time_text[2] != ":" or time_text[5] != ":":
        return None
    parts = (date_text[:4], date_text[5:7], date_text[8:], time_text[:2], time_text[3:5])
    seconds = time_text[6:8]
    fraction = time_text[9:] if len(time_text) > 8 else ""
    if len(time_text) > 8 and (time_text[8] not in ".," or not fraction):
        return None
    if not all(p.isdigit() and p.isascii() for p in (*parts, seconds)) or not (
        fraction.isdigit() or not fraction
    ):
        return None
    micros = int((fraction + "000000")[:6]) if fraction else 0
    try:
        return datetime(
            int(parts[0]),
            int(parts[1]),
            int(parts[2]),
            int(parts[3]),
            int(parts[4]),
            int(seconds),
            micros,
            tzinfo=tz or UTC,
        )
    except ValueError:
        return None


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 with milliseconds and the moment's own offset; UTC as `Z`
    (`2020-04-23T12:17:48.000-05:00`, `2020-04-23T17:17:48.000Z`)."""
    text = moment.isoformat(timespec="milliseconds")
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    return text


def wallclock_timestamp(date_text: str, time_text: str, tz: tzinfo | None) -> str | None:
    """`format_timestamp(local_datetime(...))`, cached: a busy source logs many events in the
    same second."""
    if len(date_text) != 10 or len(time_text) > 15:
        return None
    return _wallclock_timestamp(date_text, time_text, tz)


@lru_cache(maxsize=4096)
def _wallclock_timestamp(date_text: str, time_text: str, tz: tzinfo | None) -> str | None:
    moment = local_datetime(date_text, time_text, tz)
    return None if moment is None else format_timestamp(moment)


@lru_cache(maxsize=4096)
def _second_text(seconds: int, tz: tzinfo | None) -> tuple[str, str] | None:
    """("YYYY-MM-DDTHH:MM:SS.", offset suffix) of a whole epoch second in `tz`."""
    try:
        moment = (_EPOCH + timedelta(seconds=seconds)).astimezone(tz or UTC)
    except OverflowError:
        return None
    text = format_timestamp(moment)
    return text[:20], text[23:]


def epoch_timestamp(value: str, tz: tzinfo | None = None) -> str | None:
    """`format_timestamp(epoch_to_datetime(value, tz))` without building a datetime per event
    (the text of each second is cached); None when `value` is not an epoch."""
    digits = len(value)
    if digits > 19 or not value.isascii() or not value.isdigit():
        return None
    # The digits themselves give the second and the millisecond (units as in epoch_to_datetime).
    if digits <= 11:
        seconds, millis = value, "000"
    else:
        start = digits - (3 if digits <= 14 else 6 if digits <= 17 else 9)
        seconds, millis = value[:start], value[start : start + 3]
    parts = _second_text(int(seconds), tz)
    if parts is None:
        return None
    return parts[0] + millis + parts[1]


def zone_name(tz: tzinfo | None) -> str:
    """`event.timezone` for a configured zone: its IANA key or offset name, "UTC" when None."""
    if tz is None:
        return "UTC"
    key = getattr(tz, "key", None)
    return key if isinstance(key, str) else str(tz)


def year_for_month(month: int, tz: tzinfo, now: datetime | None = None) -> int:
    """The year of a year-less timestamp (BSD syslog, Snort) in `month`, seen from `now` in
    `tz` (the clock when None): a December line read in January belongs to last year, and a
    January line read in December (a clock running ahead) to next year."""
    local_now = (now or datetime.now(UTC)).astimezone(tz)
    if month == 12 and local_now.month == 1:
        return local_now.year - 1
    if month == 1 and local_now.month == 12:
        return local_now.year + 1
    return local_now.year


# English month abbreviations -> 1..12 (BSD syslog, Cisco, Apache, Snort timestamps).
MONTHS: dict[str, int] = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
