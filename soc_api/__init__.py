"""The FastAPI application and web console; the incident service and audit log."""

from soc_api.app import create_app
from soc_api.auth import create_user, issue_token
from soc_api.incidents import AlertPuller, IncidentService, IncidentStage

__all__ = [
    "AlertPuller",
    "IncidentService",
    "IncidentStage",
    "create_app",
    "create_user",
    "issue_token",
]
