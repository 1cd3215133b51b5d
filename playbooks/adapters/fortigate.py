"""Block an IP on a FortiGate through the FortiOS REST API.

Two requests (FortiOS `cmdb` API, token in `Authorization: Bearer`):
1. `POST /api/v2/cmdb/firewall/address?vdom=V` `{"name", "type": "ipmask", "subnet", "comment"}`
   (`firewall/address6` with `ip6` for IPv6) — the address object;
2. `POST /api/v2/cmdb/firewall/addrgrp/<group>/member?vdom=V` `{"name"}` (`addrgrp6`) —
   membership of the block group that a deny policy references.
An object or membership that already exists (FortiOS error -5) counts as done.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from playbooks.adapters._http import body_of, describe, parse_ip, send
from playbooks.adapters.base import Action, ActionResult
from playbooks.errors import ActionError

DUPLICATE = -5  # FortiOS "entry already exists"


class FortiGateBlockIp(Action):
    """Options: base_url, api_key_env, group, vdom (root), prefix, verify, timeout, protected."""

    type: ClassVar[str] = "fortigate"
    required_options: ClassVar[tuple[str, ...]] = ("base_url", "api_key_env", "group")
    required_params: ClassVar[tuple[str, ...]] = ("ip",)

    def plan(self, params: Mapping[str, Any], token: str) -> list[dict[str, Any]]:
        """The requests, with the real token (callers redact before showing)."""
        self.check_params(params)
        ip = parse_ip(params["ip"], self.options.get("protected") or ())
        v6 = isinstance(ip, ipaddress.IPv6Address)
        vdom = str(self.options.get("vdom") or "root")
        name = f"{self.options.get('prefix') or 'socmon-block-'}{ip}"
        base = str(self.options["base_url"]).rstrip("/")
        group = quote(str(self.options["group"]), safe="")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        address: dict[str, Any] = {"name": name, "comment": str(params.get("comment") or "socmon")}
        if v6:
            address["ip6"] = f"{ip}/128"
        else:
            address.update(type="ipmask", subnet=f"{ip} 255.255.255.255")
        suffix = "6" if v6 else ""
        return [
            {
                "method": "POST",
                "url": f"{base}/api/v2/cmdb/firewall/address{suffix}",
                "headers": headers,
                "params": {"vdom": vdom},
                "json": address,
            },
            {
                "method": "POST",
                "url": f"{base}/api/v2/cmdb/firewall/addrgrp{suffix}/{group}/member",
                "headers": headers,
                "params": {"vdom": vdom},
                "json": {"name": name},
            },
        ]

    def run(self, params: Mapping[str, Any], dry_run: bool = True) -> ActionResult:
        token = "" if dry_run else self.secret("api_key_env")
        plan = self.plan(params, token or "<from " + str(self.options["api_key_env"]) + ">")
        shown = [
            describe(
                r["method"],
                r["url"],
                headers=r["headers"],
                secret_headers=("Authorization",),
                params=r["params"],
                json=r["json"],
            )
            for r in plan
        ]
        if dry_run:
            return ActionResult(self.name, True, True, f"would block {params['ip']}", shown)
        responses: list[dict[str, Any]] = []
        verify = self.options.get("verify", True)
        timeout = float(self.options.get("timeout", 10))
        try:
            with httpx.Client(verify=verify, timeout=timeout) as client:
                for req in plan:
                    resp = send(
                        client,
                        req["method"],
                        req["url"],
                        headers=req["headers"],
                        params=req["params"],
                        json=req["json"],
                    )
                    body = body_of(resp)
                    responses.append({"status": resp.status_code, "body": body})
                    error = body.get("error") if isinstance(body, dict) else None
                    if resp.status_code == 200 or error == DUPLICATE:
                        continue
                    return ActionResult(
                        self.name,
                        False,
                        False,
                        f"FortiOS refused {req['method']} {req['url']}: HTTP {resp.status_code}",
                        shown,
                        responses,
                    )
        except ActionError as e:
            return ActionResult(self.name, False, False, str(e), shown, responses)
        return ActionResult(
            self.name,
            False,
            True,
            f"blocked {params['ip']} ({self.options['group']})",
            shown,
            responses,
        )
