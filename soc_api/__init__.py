"""The FastAPI application; the incident service, inventory and compliance views, audit log.

The names below load on first use (PEP 562): importing a submodule such as `soc_api.labels`
or `soc_api.models` (the playbook engine does) must not build the whole application, whose
routes import the playbook engine back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from soc_api.app import create_app
    from soc_api.auth import create_user, issue_token
    from soc_api.incidents import AlertPuller, IncidentService, IncidentStage

_EXPORTS = {
    "create_app": "soc_api.app",
    "create_user": "soc_api.auth",
    "issue_token": "soc_api.auth",
    "AlertPuller": "soc_api.incidents",
    "IncidentService": "soc_api.incidents",
    "IncidentStage": "soc_api.incidents",
}

__all__ = [
    "AlertPuller",
    "IncidentService",
    "IncidentStage",
    "create_app",
    "create_user",
    "issue_token",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'soc_api' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
