"""Sources, vendor parsers to ECS, enrichment, event ids, shipping, source health.

Exports load lazily (PEP 562) so that `socmon --help` and the CLI's argument parsing do not
pay for the Elasticsearch client and the parsers.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Pipeline": "collectors.pipeline",
    "RawMessage": "collectors.pipeline",
    "parse_message": "collectors.pipeline",
    "Shipper": "collectors.ship",
    "events_target": "collectors.ship",
    "SyslogUdpCollector": "collectors.syslog.collector",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'collectors' has no attribute {name!r}")
