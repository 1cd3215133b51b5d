"""One root error for socmon, with a location when the error comes from a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Location:
    """Where an error comes from: a file and, where known, a line (1-based)."""

    path: Path | str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)


class SocmonError(Exception):
    """The root of every error socmon raises on purpose."""

    def __init__(self, msg: str, source: Location | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {self.msg}" if self.source else self.msg


class ConfigError(SocmonError):
    """The configuration is invalid (unknown key, bad value, default secret in production)."""


class StoreError(SocmonError):
    """The event store (Elasticsearch / OpenSearch / osmem-server) failed or is unreachable."""


class DeliveryError(SocmonError):
    """Events could not be delivered to their destination."""


class SpoolError(SocmonError):
    """The local spool failed (I/O error, corruption that cannot be skipped)."""


class SpoolFull(SpoolError):
    """The spool reached its byte cap and the caller would not wait."""
