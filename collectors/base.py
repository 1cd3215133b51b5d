"""The collector contract (STYLE.md §2) and the registry of collector types.

A collector is a class registered under the entry-point group `socmon.collectors` with:

    type_name: ClassVar[str]           # the `type:` of a source in the configuration
    can_acknowledge: ClassVar[bool]    # True when the source can be made to resend what was
                                       # not spooled (file offsets, journal cursor): end-to-end
                                       # at-least-once. False for UDP (best-effort) and for
                                       # syslog over TCP/TLS (at-least-once from the socket on)
    Options: ClassVar[type[CollectorOptions]]
    def __init__(self, options: Options) -> None
    def resources(self) -> list[Resource]
    async def run(self, ctx: CollectorContext) -> None

Its docstring states the delivery guarantee (at-least-once or best-effort).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from collectors.health import SourceHealth
from collectors.pipeline import Pipeline
from socmon.errors import ConfigError

ENTRY_POINT_GROUP = "socmon.collectors"


class CollectorOptions(BaseModel):
    """Options every source accepts; each collector extends this model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = None  # label for health and logs; default: derived from the source
    parser: str = "auto"
    timezone: str | None = None  # IANA name, for timestamps without an offset (RFC 3164, files)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v and v.upper() != "UTC":
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as e:
                raise ValueError(f"unknown time zone {v!r}") from e
        return v


@dataclass(frozen=True)
class Resource:
    """A port or path a collector holds; two collectors may not hold the same one."""

    kind: str  # "udp", "tcp", "path"
    address: str | int


@dataclass
class CollectorContext:
    out: Pipeline
    shutdown: asyncio.Event
    state_dir: Path  # durable per-collector state (file offsets, cursors)
    health: SourceHealth
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Collector(Protocol):
    type_name: ClassVar[str]
    can_acknowledge: ClassVar[bool]

    def resources(self) -> list[Resource]: ...

    async def run(self, ctx: CollectorContext) -> None: ...


def collector_types() -> dict[str, Any]:
    """Collector classes by `type:` name, from the `socmon.collectors` entry points."""
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


def build_collectors(specs: list[dict[str, Any]]) -> list[Any]:
    """Collectors for the configured sources; every problem names the source and the key."""
    types = collector_types()
    built: list[Any] = []
    held: dict[Resource, int] = {}
    for i, spec in enumerate(specs):
        where = f"sources[{i}]"
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in types:
            raise ConfigError(
                f"{where}.type: unknown source type {kind!r}; known: {', '.join(sorted(types))}"
            )
        cls = types[kind]
        try:
            options = cls.Options.model_validate(spec)
        except ValidationError as e:
            problems = "; ".join(
                f"{where}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in e.errors()
            )
            raise ConfigError(problems) from e
        collector = cls(options)
        for res in collector.resources():
            if res in held:
                raise ConfigError(
                    f"{where}: {res.kind} {res.address} is already used by sources[{held[res]}]"
                )
            held[res] = i
        built.append(collector)
    return built
