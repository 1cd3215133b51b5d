"""Block an IP on a PAN-OS firewall through the XML API (`/api/`, key in `X-PAN-KEY`).

1. `type=config&action=set` at `.../address/entry[@name='N']` with
   `<ip-netmask>IP/32</ip-netmask><description>..</description>` — the address object;
2. `type=config&action=set` at `.../address-group/entry[@name='G']/static` with
   `<member>N</member>` — membership of the static block group a deny rule references;
3. `type=commit&cmd=<commit></commit>` unless `commit: false`.
Parameters: `ip` (one address) or `ips` (a list, e.g. `${source.ips}`): requests 1–2 for
each address, each checked on its own (a protected or malformed one is refused with the
reason, the others blocked; more than option `max_per_action` (256) refuse the action), and
one commit at the end when at least one address was set. PAN-OS `set` is idempotent: an
address already in the group is reported blocked. With `ips` every request shown carries
its `address` and, after execution, its `outcome`; a refused address appears as
`{"address", "outcome": "refused", "reason"}`.
Parameters travel as an `application/x-www-form-urlencoded` POST body; the answer is
`<response status="success">` or `status="error"` with a `<msg>`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, ClassVar
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import httpx

from playbooks.adapters._http import (
    IpAddress,
    describe,
    listing,
    parse_ip,
    send,
    targets,
    wants_list,
)
from playbooks.adapters.base import Action, ActionResult
from playbooks.errors import ActionError


def _xpath_name(value: str) -> str:
    if "'" in value:
        raise ActionError(f"name {value!r} cannot contain a quote")
    return value


class PanOsBlockIp(Action):
    """Options: base_url, api_key_env, group, vsys (vsys1), device, prefix, commit, verify,
    timeout, protected, max_per_action (256)."""

    type: ClassVar[str] = "panos"
    required_options: ClassVar[tuple[str, ...]] = ("base_url", "api_key_env", "group")
    required_params: ClassVar[tuple[str, ...]] = ("ip",)

    def forms_for(self, ip: IpAddress, params: Mapping[str, Any]) -> list[dict[str, str]]:
        """The two `set` forms blocking `ip` (address object, group membership)."""
        bits = 128 if isinstance(ip, ipaddress.IPv6Address) else 32
        name = _xpath_name(f"{self.options.get('prefix') or 'socmon-block-'}{ip}")
        device = _xpath_name(str(self.options.get("device") or "localhost.localdomain"))
        vsys = _xpath_name(str(self.options.get("vsys") or "vsys1"))
        group = _xpath_name(str(self.options["group"]))
        root = f"/config/devices/entry[@name='{device}']/vsys/entry[@name='{vsys}']"
        comment = escape(str(params.get("comment") or "socmon"))
        return [
            {
                "type": "config",
                "action": "set",
                "xpath": f"{root}/address/entry[@name='{name}']",
                "element": f"<ip-netmask>{ip}/{bits}</ip-netmask><description>{comment}</description>",
            },
            {
                "type": "config",
                "action": "set",
                "xpath": f"{root}/address-group/entry[@name='{group}']/static",
                "element": f"<member>{escape(name)}</member>",
            },
        ]

    def plan(self, params: Mapping[str, Any]) -> list[dict[str, str]]:
        """The forms of one `ip`: its two `set`s and the commit."""
        self.check_params(params)
        ip = parse_ip(params["ip"], self.options.get("protected") or ())
        forms = self.forms_for(ip, params)
        if self.options.get("commit", True):
            forms.append(dict(COMMIT))
        return forms

    def run(self, params: Mapping[str, Any], dry_run: bool = True) -> ActionResult:
        if wants_list(params):
            return self._run_many(params, dry_run)
        forms = self.plan(params)
        key = "" if dry_run else self.secret("api_key_env")
        url = str(self.options["base_url"]).rstrip("/") + "/api/"
        headers = {"X-PAN-KEY": key or f"<from {self.options['api_key_env']}>"}
        shown = [
            describe("POST", url, headers=headers, secret_headers=("X-PAN-KEY",), data=f)
            for f in forms
        ]
        if dry_run:
            return ActionResult(self.name, True, True, f"would block {params['ip']}", shown)
        responses: list[dict[str, Any]] = []
        verify = self.options.get("verify", True)
        try:
            with httpx.Client(verify=verify, timeout=float(self.options.get("timeout", 30))) as c:
                for form in forms:
                    resp = send(c, "POST", url, headers=headers, data=form)
                    status, msg = _status(resp.text)
                    responses.append({"status": resp.status_code, "result": status, "msg": msg})
                    if resp.status_code != 200 or status != "success":
                        return ActionResult(
                            self.name,
                            False,
                            False,
                            f"PAN-OS refused {form['type']}: {msg or resp.status_code}",
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
        key = "" if dry_run else self.secret("api_key_env")
        url = str(self.options["base_url"]).rstrip("/") + "/api/"
        headers = {"X-PAN-KEY": key or f"<from {self.options['api_key_env']}>"}
        group = self.options["group"]
        plans = [(ip, self.forms_for(ip, params)) for ip in found.addresses]
        commit = bool(self.options.get("commit", True)) and bool(plans)

        def show(form: Mapping[str, str]) -> dict[str, Any]:
            return describe("POST", url, headers=headers, secret_headers=("X-PAN-KEY",), data=form)

        shown = [show(f) | {"address": str(ip)} for ip, forms in plans for f in forms]
        commit_shown = [show(COMMIT)] if commit else []
        refused = [
            {"address": value, "outcome": "refused", "reason": reason}
            for value, reason in found.refused
        ]
        total = len(found.addresses) + len(found.refused)
        refused_list = listing("refused", [f"{v} ({r})" for v, r in found.refused])
        if dry_run:
            parts = [
                f"would block {len(found.addresses)} of {total} addresses ({group})",
                listing("to block", found.addresses),
                refused_list,
            ]
            return ActionResult(
                self.name,
                True,
                bool(found.addresses),
                "; ".join(p for p in parts if p),
                shown + commit_shown + refused,
            )
        blocked: list[str] = []
        failed: list[str] = []
        responses: list[dict[str, Any]] = []
        commit_error = ""
        position = 0
        down: str | None = None
        verify = self.options.get("verify", True)
        with httpx.Client(verify=verify, timeout=float(self.options.get("timeout", 30))) as c:
            for ip, forms in plans:
                reason = ""
                for form in forms:
                    entry = shown[position]
                    position += 1
                    if reason or down is not None:
                        entry["outcome"] = "not sent"
                        continue
                    try:
                        resp = send(c, "POST", url, headers=headers, data=form)
                    except ActionError as e:
                        down = reason = str(e)
                        entry["outcome"] = "failed"
                        continue
                    status, msg = _status(resp.text)
                    responses.append(
                        {"address": str(ip), "status": resp.status_code, "result": status}
                        | {"msg": msg}
                    )
                    if resp.status_code == 200 and status == "success":
                        entry["outcome"] = "done"
                    else:
                        entry["outcome"] = "failed"
                        reason = f"PAN-OS refused {form['type']}: {msg or resp.status_code}"
                reason = reason or (down or "")
                (failed if reason else blocked).append(f"{ip} ({reason})" if reason else str(ip))
            if commit and blocked and down is None:
                try:
                    resp = send(c, "POST", url, headers=headers, data=COMMIT)
                    status, msg = _status(resp.text)
                    responses.append({"status": resp.status_code, "result": status, "msg": msg})
                    if resp.status_code != 200 or status != "success":
                        commit_error = f"PAN-OS refused commit: {msg or resp.status_code}"
                except ActionError as e:
                    commit_error = str(e)
                commit_shown[0]["outcome"] = "failed" if commit_error else "done"
            elif commit_shown:
                commit_shown[0]["outcome"] = "not sent"
        parts = [
            commit_error,
            f"blocked {len(blocked)}, refused {len(found.refused)}, failed {len(failed)} of "
            f"{total} addresses ({group})",
            listing("blocked", blocked),
            refused_list,
            listing("failed", failed),
        ]
        return ActionResult(
            self.name,
            False,
            bool(blocked) and not failed and not commit_error,
            "; ".join(p for p in parts if p),
            shown + commit_shown + refused,
            responses,
        )


COMMIT = {"type": "commit", "cmd": "<commit></commit>"}


def _status(text: str) -> tuple[str, str]:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return "error", text[:200]
    msg = " ".join(t.strip() for t in root.itertext() if t.strip())
    return root.get("status", "error"), msg


__all__ = ["PanOsBlockIp"]
