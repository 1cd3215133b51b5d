"""Errors of the playbooks package."""

from __future__ import annotations

from socmon.errors import SocmonError


class PlaybookError(SocmonError):
    """A playbook file, a run or an action is invalid or failed."""


class ActionError(PlaybookError):
    """An adapter is misconfigured or its target refused the request."""
