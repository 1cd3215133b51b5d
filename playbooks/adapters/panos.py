"""Block an IP on a PAN-OS firewall through the XML API (`/api/`, key in `X-PAN-KEY`).

1. `type=config&action=set` at `.../address/entry[@name='N']` with
   `<ip-netmask>IP/32</ip-netmask><description>..</description>` — the address object;
2. `type=config&action=set` at `.../address-group/entry[@name='G']/static` with
   `<member>N</member>` — membership of the static block group a deny rule references;
3. `type=commit&cmd=<commit></commit>` unless `commit: false`.
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

from playbooks.adapters._http import describe, parse_ip, send
from playbooks.adapters.base import Action, ActionResult
from playbooks.errors import ActionError


def _xpath_name(value: str) -> str:
    if "'" in value:
        raise ActionError(f"name {value!r} cannot contain a quote")
    return value


class PanOsBlockIp(Action):
    """Options: base_url, api_key_env, group, vsys (vsys1), device, prefix, commit, verify."""

    type: ClassVar[str] = "panos"
    required_options: ClassVar[tuple[str, ...]] = ("base_url", "api_key_env", "group")
    required_params: ClassVar[tuple[str, ...]] = ("ip",)

    def plan(self, params: Mapping[str, Any]) -> list[dict[str, str]]:
        self.check_params(params)
        ip = parse_ip(params["ip"], self.options.get("protected") or ())
        bits = 128 if isinstance(ip, ipaddress.IPv6Address) else 32
        name = _xpath_name(f"{self.options.get('prefix') or 'socmon-block-'}{ip}")
        device = _xpath_name(str(self.options.get("device") or "localhost.localdomain"))
        vsys = _xpath_name(str(self.options.get("vsys") or "vsys1"))
        group = _xpath_name(str(self.options["group"]))
        root = f"/config/devices/entry[@name='{device}']/vsys/entry[@name='{vsys}']"
        comment = escape(str(params.get("comment") or "socmon"))
        forms = [
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
        if self.options.get("commit", True):
            forms.append({"type": "commit", "cmd": "<commit></commit>"})
        return forms

    def run(self, params: Mapping[str, Any], dry_run: bool = True) -> ActionResult:
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


def _status(text: str) -> tuple[str, str]:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return "error", text[:200]
    msg = " ".join(t.strip() for t in root.itertext() if t.strip())
    return root.get("status", "error"), msg


__all__ = ["PanOsBlockIp"]
