"""Action adapters: firewall block-IP (FortiGate, PAN-OS), e-mail (SMTP), webhook.

`AdapterRegistry.from_config({"perimeter-firewall": {"type": "fortigate", ...}, ...})` maps
the logical adapter names used by the playbook library to configured instances.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from playbooks.adapters.base import Action, ActionResult
from playbooks.adapters.email import SmtpEmail
from playbooks.adapters.fortigate import FortiGateBlockIp
from playbooks.adapters.panos import PanOsBlockIp
from playbooks.adapters.webhook import Webhook
from playbooks.errors import ActionError

TYPES: dict[str, type[Action]] = {
    cls.type: cls for cls in (FortiGateBlockIp, PanOsBlockIp, SmtpEmail, Webhook)
}


class AdapterRegistry:
    """Configured adapters by logical name."""

    def __init__(self, actions: Mapping[str, Action] | None = None) -> None:
        self.actions: dict[str, Action] = dict(actions or {})

    @classmethod
    def from_config(cls, config: Mapping[str, Mapping[str, Any]]) -> AdapterRegistry:
        actions: dict[str, Action] = {}
        for name, spec in config.items():
            options = dict(spec)
            kind = options.pop("type", None)
            if kind not in TYPES:
                raise ActionError(
                    f"adapter {name!r}: unknown type {kind!r}; types: {sorted(TYPES)}"
                )
            actions[name] = TYPES[str(kind)](name, options)
        return cls(actions)

    def get(self, name: str) -> Action:
        action = self.actions.get(name)
        if action is None:
            raise ActionError(f"adapter {name!r} is not configured")
        return action


__all__ = ["TYPES", "Action", "ActionResult", "AdapterRegistry"]
