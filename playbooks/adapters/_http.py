"""Shared helpers of the HTTP adapters: IP checks, request description, execution."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
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
