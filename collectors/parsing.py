"""The parser contract: a pure function from one raw message to one ECS document.

A parser never does I/O. It raises `ParseError` with a reason when it cannot understand the
message; the pipeline then stores the message anyway with the tag `_parse_failure`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from socmon.errors import SocmonError

EcsDoc = dict[str, Any]


class ParseError(SocmonError):
    """The message could not be parsed; `msg` is the reason stored with the event."""


@dataclass(frozen=True)
class SourceContext:
    """What a parser may know about where a message came from.

    tz: time zone for timestamps that carry no offset (None = UTC).
    internal_networks: CIDRs (or the names "private", "loopback") counted as internal for
    `network.direction`.
    observer_ip: address of the sending device, when known (syslog sender).
    """

    tz: tzinfo | None = None
    internal_networks: tuple[str, ...] = ("private",)
    observer_ip: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


Parser = Callable[[str, SourceContext], EcsDoc]
