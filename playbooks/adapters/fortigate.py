"""Block IPs on a FortiGate through the FortiOS REST API.

Two requests per address (FortiOS `cmdb` API, token in `Authorization: Bearer`):
1. `POST /api/v2/cmdb/firewall/address?vdom=V` `{"name", "type": "ipmask", "subnet", "comment"}`
   (`firewall/address6` with `ip6` for IPv6) — the address object;
2. `POST /api/v2/cmdb/firewall/addrgrp/<group>/member?vdom=V` `{"name"}` (`addrgrp6`) —
   membership of the block group that a deny policy references.
An object or membership that already exists (FortiOS error -5) counts as done.

Parameters: `ip` (one address: a protected or malformed one fails the action) or `ips` (a
list, e.g. `${source.ips}`: each address is checked on its own, a refused one is reported
and the others are blocked; more than option `max_per_action` (256) refuse the action).
With `ips` every request shown carries its `address`, and after execution its `outcome`;
each refused address appears as `{"address", "outcome": "refused", "reason"}`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from playbooks.adapters._http import (
    IpAddress,
    body_of,
    describe,
    listing,
    parse_ip,
    send,
    targets,
    wants_list,
)
from playbooks.adapters.base import Action, ActionResult
from playbooks.errors import ActionError

DUPLICATE = -5  # FortiOS "entry already exists"


class FortiGateBlockIp(Action):
    """Options: base_url, api_key_env, group, vdom (root), prefix, verify, timeout, protected,
    max_per_action (256)."""

    type: ClassVar[str] = "fortigate"
    required_options: ClassVar[tuple[str, ...]] = ("base_url", "api_key_env", "group")
    required_params: ClassVar[tuple[str, ...]] = ("ip",)

    def requests_for(
        self, ip: IpAddress, params: Mapping[str, Any], token: str
    ) -> list[dict[str, Any]]:
        """The two requests blocking `ip`, with the real token (callers redact)."""
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

    def plan(self, params: Mapping[str, Any], token: str) -> list[dict[str, Any]]:
        """The requests of one `ip`, with the real token (callers redact before showing)."""
        self.check_params(params)
        ip = parse_ip(params["ip"], self.options.get("protected") or ())
        return self.requests_for(ip, params, token)

    def _token(self, dry_run: bool) -> str:
        token = "" if dry_run else self.secret("api_key_env")
        return token or "<from " + str(self.options["api_key_env"]) + ">"

    @staticmethod
    def _shown(req: Mapping[str, Any]) -> dict[str, Any]:
        return describe(
            req["method"],
            req["url"],
            headers=req["headers"],
            secret_headers=("Authorization",),
            params=req["params"],
            json=req["json"],
        )

    def _client(self) -> httpx.Client:
        verify = self.options.get("verify", True)
        return httpx.Client(verify=verify, timeout=float(self.options.get("timeout", 10)))

    def run(self, params: Mapping[str, Any], dry_run: bool = True) -> ActionResult:
        if wants_list(params):
            return self._run_many(params, dry_run)
        plan = self.plan(params, self._token(dry_run))
        shown = [self._shown(r) for r in plan]
        if dry_run:
            return ActionResult(self.name, True, True, f"would block {params['ip']}", shown)
        responses: list[dict[str, Any]] = []
        try:
            with self._client() as client:
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

    def _run_many(self, params: Mapping[str, Any], dry_run: bool) -> ActionResult:
        """Block every address of `ips`: per-address outcome, one failing the others not."""
        found = targets(self.name, params, self.options)
        token = self._token(dry_run)
        group = self.options["group"]
        plans = [(ip, self.requests_for(ip, params, token)) for ip in found.addresses]
        shown = [self._shown(r) | {"address": str(ip)} for ip, plan in plans for r in plan]
        refused = [
            {"address": value, "outcome": "refused", "reason": reason}
            for value, reason in found.refused
        ]
        total = len(found.addresses) + len(found.refused)
        if dry_run:
            parts = [
                f"would block {len(found.addresses)} of {total} addresses ({group})",
                listing("to block", found.addresses),
                listing("refused", [f"{v} ({r})" for v, r in found.refused]),
            ]
            return ActionResult(
                self.name,
                True,
                bool(found.addresses),
                "; ".join(p for p in parts if p),
                shown + refused,
            )
        outcomes: dict[str, list[str]] = {"blocked": [], "already blocked": [], "failed": []}
        responses: list[dict[str, Any]] = []
        position = 0
        down: str | None = None
        try:
            with self._client() as client:
                for ip, plan in plans:
                    outcome, reason = "blocked", ""
                    for req in plan:
                        entry = shown[position]
                        position += 1
                        if outcome == "failed" or down is not None:
                            entry["outcome"] = "not sent"
                            continue
                        try:
                            resp = send(
                                client,
                                req["method"],
                                req["url"],
                                headers=req["headers"],
                                params=req["params"],
                                json=req["json"],
                            )
                        except ActionError as e:
                            down, outcome, reason = str(e), "failed", str(e)
                            entry["outcome"] = "failed"
                            continue
                        body = body_of(resp)
                        responses.append(
                            {"address": str(ip), "status": resp.status_code, "body": body}
                        )
                        error = body.get("error") if isinstance(body, dict) else None
                        if resp.status_code == 200:
                            entry["outcome"] = "done"
                        elif error == DUPLICATE:
                            entry["outcome"] = "exists"
                            if req is plan[-1]:
                                outcome = "already blocked"  # already in the group
                        else:
                            entry["outcome"] = "failed"
                            outcome = "failed"
                            reason = f"FortiOS refused {req['method']} {req['url']}: HTTP " + str(
                                resp.status_code
                            )
                    if down is not None and outcome != "failed":
                        outcome, reason = "failed", down
                    outcomes[outcome].append(f"{ip} ({reason})" if reason else str(ip))
        except httpx.HTTPError as e:  # opening the client (TLS setup): nothing was sent
            return ActionResult(
                self.name, False, False, f"FortiOS unreachable: {e}", shown + refused
            )
        failed = outcomes["failed"]
        done = len(outcomes["blocked"]) + len(outcomes["already blocked"])
        parts = [
            f"blocked {len(outcomes['blocked'])}, already blocked "
            f"{len(outcomes['already blocked'])}, refused {len(found.refused)}, failed "
            f"{len(failed)} of {total} addresses ({group})",
            listing("blocked", outcomes["blocked"]),
            listing("already blocked", outcomes["already blocked"]),
            listing("refused", [f"{v} ({r})" for v, r in found.refused]),
            listing("failed", failed),
        ]
        return ActionResult(
            self.name,
            False,
            done > 0 and not failed,
            "; ".join(p for p in parts if p),
            shown + refused,
            responses,
        )
