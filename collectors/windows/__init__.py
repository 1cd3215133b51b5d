"""Windows event logs: the JSON event parser, `socmon import evtx` and the watched folder."""

from collectors.windows.parse import parse

__all__ = ["parse"]
