"""Shared helpers of the HTTP adapters: IP checks (one `ip` or a list `ips`), request
description, execution."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from playbooks.adapters.base import REDACTED
from playbooks.errors import ActionError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_ip(value: Any, protected: Sequence[str] = ()) -> IpAddress:
    """One host address; refuses networks, garbage and addresses in `protected` ranges."""
    try:
        ip = ipaddress.ip_address(str(value).strip())
    except ValueError as e:
        raise ActionError(f"not a single IP address: {value!r}") from e
    for cidr in protected:
        if ip in ipaddress.ip_network(str(cidr), strict=False):
            raise ActionError(f"{ip} is in the protected range {cidr}: never blocked")
    return ip


def describe(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    secret_headers: Sequence[str] = (),
    params: Mapping[str, str] | None = None,
    json: Any = None,
    data: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A request as shown in a dry-run or the audit log (secret headers redacted)."""
    lowered = {h.lower() for h in secret_headers}
    out: dict[str, Any] = {
        "method": method,
        "url": url,
        "headers": {k: (REDACTED if k.lower() in lowered else v) for k, v in headers.items()},
    }
    if params:
        out["params"] = dict(params)
    if json is not None:
        out["json"] = json
    if data is not None:
        out["data"] = dict(data)
    return out


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    params: Mapping[str, str] | None = None,
    json: Any = None,
    data: Mapping[str, str] | None = None,
) -> httpx.Response:
    try:
        return client.request(
            method, url, headers=dict(headers), params=params, json=json, data=data
        )
    except httpx.HTTPError as e:
        raise ActionError(f"{method} {url} failed: {e}") from e


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:2000]


#: How many addresses one block action takes at most (option `max_per_action`).
DEFAULT_MAX_PER_ACTION = 256


@dataclass
class Targets:
    """The addresses of a list block action (`ips`): those to block, in the order given,
    and those refused with the reason (protected range, not a single address)."""

    addresses: list[IpAddress] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def refused_text(self) -> str:
        return "; ".join(f"{value} ({reason})" for value, reason in self.refused)


def wants_list(params: Mapping[str, Any]) -> bool:
    """True when the parameters name a list of addresses (`ips`), not only `ip`."""
    return params.get("ips") is not None


def targets(adapter: str, params: Mapping[str, Any], options: Mapping[str, Any]) -> Targets:
    """The distinct addresses of `ip` and `ips`, each checked on its own: a protected or
    malformed one is refused with the reason and the others stay. More distinct addresses
    than `max_per_action` (default 256) refuse the whole action."""
    ips = params.get("ips")
    if not isinstance(ips, list | tuple):
        raise ActionError(
            f"adapter {adapter!r}: parameter ips must be a list of addresses, "
            f"not {type(ips).__name__}"
        )
    values = ([params["ip"]] if params.get("ip") not in (None, "") else []) + list(ips)
    distinct: dict[str, None] = {}
    for value in values:
        try:
            key = str(ipaddress.ip_address(str(value).strip()))
        except ValueError:
            key = str(value)
        distinct.setdefault(key, None)
    if not distinct:
        raise ActionError(f"adapter {adapter!r}: no address to block (ips is empty)")
    cap = max_per_action(adapter, options)
    if len(distinct) > cap:
        raise ActionError(
            f"adapter {adapter!r}: {len(distinct)} addresses to block, more than "
            f"max_per_action ({cap}): refused, nothing sent; block them in smaller sets "
            f"or raise max_per_action"
        )
    out = Targets()
    protected = options.get("protected") or ()
    for key in distinct:
        try:
            out.addresses.append(parse_ip(key, protected))
        except ActionError as e:
            out.refused.append((key, str(e)))
    return out


def max_per_action(adapter: str, options: Mapping[str, Any]) -> int:
    value = options.get("max_per_action", DEFAULT_MAX_PER_ACTION)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ActionError(
            f"adapter {adapter!r}: max_per_action must be a positive integer, not {value!r}"
        )
    return value


def listing(label: str, values: Sequence[Any]) -> str:
    """`label N: a, b, c` (empty when there is nothing)."""
    return f"{label} {len(values)}: {', '.join(str(v) for v in values)}" if values else ""
