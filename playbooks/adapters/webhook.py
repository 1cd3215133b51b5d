"""POST a JSON event to a webhook (httpx).

Options: url, headers_env ({header: ENV_VAR} for tokens), verify, timeout.
Parameters: any JSON object, sent as the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from playbooks.adapters._http import body_of, describe, send
from playbooks.adapters.base import Action, ActionResult
from playbooks.errors import ActionError


class Webhook(Action):
    type: ClassVar[str] = "webhook"
    required_options: ClassVar[tuple[str, ...]] = ("url",)

    def run(self, params: Mapping[str, Any], dry_run: bool = True) -> ActionResult:
        secret_vars: Mapping[str, str] = self.options.get("headers_env") or {}
        headers = {"Content-Type": "application/json", "User-Agent": "socmon-playbooks"}
        for header, var in secret_vars.items():
            headers[header] = f"<from {var}>"
        url = str(self.options["url"])
        body = dict(params)
        shown = [
            describe("POST", url, headers=headers, secret_headers=tuple(secret_vars), json=body)
        ]
        if dry_run:
            return ActionResult(self.name, True, True, f"would POST to {url}", shown)
        try:
            for header, var in secret_vars.items():
                headers[header] = self.env(str(var))
            with httpx.Client(
                verify=self.options.get("verify", True),
                timeout=float(self.options.get("timeout", 10)),
            ) as client:
                resp = send(client, "POST", url, headers=headers, json=body)
        except ActionError as e:
            return ActionResult(self.name, False, False, str(e), shown)
        ok = 200 <= resp.status_code < 300
        return ActionResult(
            self.name,
            False,
            ok,
            f"POST {url}: HTTP {resp.status_code}",
            shown,
            [{"status": resp.status_code, "body": body_of(resp)}],
        )
