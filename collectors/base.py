"""The collector contract (STYLE.md §2): every source is a class with this shape."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from prometheus_client import Counter

from collectors.pipeline import Pipeline

RECEIVED = Counter(
    "socmon_collector_received_events_total",
    "Messages received by a collector",
    ["collector", "source"],
)
RECEIVED_BYTES = Counter(
    "socmon_collector_received_bytes_total",
    "Bytes received by a collector",
    ["collector", "source"],
)
DISCARDED = Counter(
    "socmon_component_discarded_events_total",
    "Events discarded, with the reason",
    ["component", "intentional", "reason"],
)


@dataclass(frozen=True)
class Resource:
    """A port or path a collector holds; two collectors may not hold the same one."""

    kind: str  # "udp", "tcp", "path"
    address: str | int


@dataclass
class CollectorContext:
    out: Pipeline
    shutdown: asyncio.Event
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Collector(Protocol):
    name: ClassVar[str]
    can_acknowledge: ClassVar[bool]

    def resources(self) -> list[Resource]: ...

    async def run(self, ctx: CollectorContext) -> None: ...
