"""Each adapter in dry-run (the exact requests, nothing sent) and against a real local
server: FortiOS REST, PAN-OS XML API, SMTP (aiosmtpd), webhook. Secrets from env vars."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from playbooks.adapters import AdapterRegistry
from playbooks.errors import ActionError
from tests.playbooks.servers import (
    FortiOsHandler,
    FortiOsState,
    PanOsHandler,
    PanOsState,
    WebhookHandler,
    WebhookState,
    serve,
)

TOKEN = "fgt-token-0123456789"
PAN_KEY = "LUFRPT1-pan-key"


@pytest.fixture
def fortios() -> Iterator[tuple[str, FortiOsState]]:
    state = FortiOsState(TOKEN, ["socmon-blocklist"])
    with serve(FortiOsHandler, state) as url:
        yield url, state


def fortigate(url: str, **extra: Any) -> AdapterRegistry:
    return AdapterRegistry.from_config(
        {
            "perimeter-firewall": {
                "type": "fortigate",
                "base_url": url,
                "api_key_env": "TEST_FGT_KEY",
                "group": "socmon-blocklist",
                "vdom": "root",
                **extra,
            }
        }
    )


def test_fortigate_dry_run_returns_the_exact_requests_and_sends_nothing(
    fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    action = fortigate(url).get("perimeter-firewall")
    result = action.run({"ip": "203.0.113.7", "comment": "socmon incident 4"})  # default dry-run
    assert result.dry_run and result.ok and state.requests == []
    assert result.requests == [
        {
            "method": "POST",
            "url": f"{url}/api/v2/cmdb/firewall/address",
            "headers": {"Authorization": "***", "Content-Type": "application/json"},
            "params": {"vdom": "root"},
            "json": {
                "name": "socmon-block-203.0.113.7",
                "comment": "socmon incident 4",
                "type": "ipmask",
                "subnet": "203.0.113.7 255.255.255.255",
            },
        },
        {
            "method": "POST",
            "url": f"{url}/api/v2/cmdb/firewall/addrgrp/socmon-blocklist/member",
            "headers": {"Authorization": "***", "Content-Type": "application/json"},
            "params": {"vdom": "root"},
            "json": {"name": "socmon-block-203.0.113.7"},
        },
    ]
    assert TOKEN not in repr(result.to_dict())


def test_fortigate_blocks_against_a_real_server_and_is_idempotent(
    fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    action = fortigate(url).get("perimeter-firewall")
    result = action.run({"ip": "203.0.113.7"}, dry_run=False)
    assert result.ok and not result.dry_run, result.message
    assert state.addresses["socmon-block-203.0.113.7"]["subnet"] == "203.0.113.7 255.255.255.255"
    assert state.groups["socmon-blocklist"] == ["socmon-block-203.0.113.7"]
    assert [r["query"] for r in state.requests] == [{"vdom": ["root"]}] * 2
    assert all(r["auth"] == f"Bearer {TOKEN}" for r in state.requests)
    again = action.run({"ip": "203.0.113.7"}, dry_run=False)  # exists already (error -5)
    assert again.ok and [r["status"] for r in again.responses] == [500, 500]
    v6 = action.run({"ip": "2001:db8::5"}, dry_run=False)
    assert not v6.ok and "HTTP 404" in v6.message  # no addrgrp6 group on this box
    assert state.addresses["socmon-block-2001:db8::5"]["ip6"] == "2001:db8::5/128"


def test_fortigate_refusals_and_bad_input(
    fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", "wrong")
    result = fortigate(url).get("perimeter-firewall").run({"ip": "198.51.100.9"}, dry_run=False)
    assert not result.ok and "HTTP 401" in result.message
    monkeypatch.delenv("TEST_FGT_KEY")
    with pytest.raises(ActionError, match="TEST_FGT_KEY is empty"):
        fortigate(url).get("perimeter-firewall").run({"ip": "198.51.100.9"}, dry_run=False)
    guarded = fortigate(url, protected=["10.0.0.0/8"]).get("perimeter-firewall")
    with pytest.raises(ActionError, match="protected"):
        guarded.run({"ip": "10.1.2.3"})
    with pytest.raises(ActionError, match="single IP"):
        guarded.run({"ip": "10.0.0.0/8"})
    with pytest.raises(ActionError, match="api_key_env"):
        AdapterRegistry.from_config(
            {"fw": {"type": "fortigate", "base_url": url, "api_key": "x", "group": "g"}}
        )
    with pytest.raises(ActionError, match="not configured"):
        AdapterRegistry().get("perimeter-firewall")
    closed = fortigate("http://127.0.0.1:9").get("perimeter-firewall")
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    down = closed.run({"ip": "198.51.100.9"}, dry_run=False)
    assert not down.ok and "failed" in down.message


@pytest.fixture
def panos() -> Iterator[tuple[str, PanOsState]]:
    state = PanOsState(PAN_KEY)
    with serve(PanOsHandler, state) as url:
        yield url, state


def pan(url: str, **extra: Any) -> AdapterRegistry:
    return AdapterRegistry.from_config(
        {
            "perimeter-firewall": {
                "type": "panos",
                "base_url": url,
                "api_key_env": "TEST_PAN_KEY",
                "group": "socmon-blocklist",
                **extra,
            }
        }
    )


ROOT = "/config/devices/entry[@name='localhost.localdomain']/vsys/entry[@name='vsys1']"


def test_panos_dry_run_returns_the_exact_requests(
    panos: tuple[str, PanOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = panos
    monkeypatch.setenv("TEST_PAN_KEY", PAN_KEY)
    result = pan(url).get("perimeter-firewall").run({"ip": "203.0.113.7", "comment": "inc <4>"})
    assert result.dry_run and state.requests == []
    assert [r["data"] for r in result.requests] == [
        {
            "type": "config",
            "action": "set",
            "xpath": f"{ROOT}/address/entry[@name='socmon-block-203.0.113.7']",
            "element": "<ip-netmask>203.0.113.7/32</ip-netmask><description>inc &lt;4&gt;</description>",
        },
        {
            "type": "config",
            "action": "set",
            "xpath": f"{ROOT}/address-group/entry[@name='socmon-blocklist']/static",
            "element": "<member>socmon-block-203.0.113.7</member>",
        },
        {"type": "commit", "cmd": "<commit></commit>"},
    ]
    assert all(r["headers"] == {"X-PAN-KEY": "***"} for r in result.requests)
    assert all(r["url"] == f"{url}/api/" for r in result.requests)


def test_panos_blocks_and_commits_against_a_real_server(
    panos: tuple[str, PanOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = panos
    monkeypatch.setenv("TEST_PAN_KEY", PAN_KEY)
    result = pan(url).get("perimeter-firewall").run({"ip": "203.0.113.7"}, dry_run=False)
    assert result.ok, result.message
    assert state.config[f"{ROOT}/address-group/entry[@name='socmon-blocklist']/static"] == [
        "<member>socmon-block-203.0.113.7</member>"
    ]
    assert state.commits == 1 and [r["key"] for r in state.requests] == [PAN_KEY] * 3
    assert result.responses[-1]["msg"].startswith("Commit job enqueued")
    no_commit = pan(url, commit=False).get("perimeter-firewall")
    assert no_commit.run({"ip": "2001:db8::9"}, dry_run=False).ok and state.commits == 1
    monkeypatch.setenv("TEST_PAN_KEY", "bad")
    refused = pan(url).get("perimeter-firewall").run({"ip": "203.0.113.8"}, dry_run=False)
    assert not refused.ok and "Invalid Credential" in refused.message


@pytest.fixture
def webhook() -> Iterator[tuple[str, WebhookState]]:
    state = WebhookState()
    with serve(WebhookHandler, state) as url:
        yield url, state


def test_webhook_dry_run_and_real_post(
    webhook: tuple[str, WebhookState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = webhook
    reg = AdapterRegistry.from_config(
        {
            "notify-webhook": {
                "type": "webhook",
                "url": f"{url}/hooks/soc",
                "headers_env": {"Authorization": "TEST_HOOK_AUTH"},
            }
        }
    )
    hook = reg.get("notify-webhook")
    dry = hook.run({"event": "incident.serious", "incident": "4"})
    assert dry.dry_run and state.requests == []
    assert dry.requests[0]["headers"]["Authorization"] == "***"
    assert dry.requests[0]["json"] == {"event": "incident.serious", "incident": "4"}
    monkeypatch.setenv("TEST_HOOK_AUTH", "Bearer hook-secret")
    sent = hook.run({"event": "incident.serious", "incident": "4"}, dry_run=False)
    assert sent.ok and sent.responses[0]["status"] == 204
    got = state.requests[0]
    assert got["path"] == "/hooks/soc" and got["headers"]["authorization"] == "Bearer hook-secret"
    assert got["json"] == {"event": "incident.serious", "incident": "4"}
    state.status = 500
    assert not hook.run({"event": "x"}, dry_run=False).ok


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(_server: Any, _session: Any, _env: Any, _mech: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"soc",
            b"smtp-secret",
        )
        return AuthResult(success=ok)

    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_smtp_dry_run_and_real_delivery_with_login(
    smtp_server: tuple[int, Inbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, inbox = smtp_server
    reg = AdapterRegistry.from_config(
        {
            "notify-email": {
                "type": "smtp",
                "host": "127.0.0.1",
                "port": port,
                "sender": "socmon@soc.example",
                "to": ["irt@soc.example"],
                "username": "soc",
                "password_env": "TEST_SMTP_PASSWORD",
                # a refused login makes smtplib try the next mechanism, which this server
                # leaves unanswered: the timeout bounds that case
                "timeout": 2,
            }
        }
    )
    mail = reg.get("notify-email")
    params = {"subject": "[socmon] Sự cố nghiêm trọng #4", "body": "Sự cố 4 nghiêm trọng."}
    dry = mail.run(params)
    assert dry.dry_run and inbox.messages == []
    assert dry.requests[0]["rcpt_to"] == ["irt@soc.example"]
    assert dry.requests[0]["subject"] == params["subject"]
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "smtp-secret")
    sent = mail.run({**params, "to": ["lead@soc.example"]}, dry_run=False)
    assert sent.ok, sent.message
    envelope = inbox.messages[0]
    assert envelope.mail_from == "socmon@soc.example"
    assert envelope.rcpt_tos == ["irt@soc.example", "lead@soc.example"]
    from email import message_from_bytes, policy

    msg = message_from_bytes(envelope.original_content, policy=policy.default)
    assert msg["Subject"] == params["subject"]
    assert msg.get_content().strip() == params["body"]
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    refused = mail.run(params, dry_run=False)
    assert not refused.ok and "SMTP failed" in refused.message and len(inbox.messages) == 1


# -- a list of addresses (`ips`, from `${source.ips}`) -----------------------------------------

ATTACKERS = [f"45.95.147.{n}" for n in range(1, 31)]


def test_fortigate_blocks_a_list_each_address_on_its_own(
    fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    action = fortigate(url, protected=["45.95.147.0/30"]).get("perimeter-firewall")
    ips = [*ATTACKERS, "45.95.147.5", "not-an-ip", "10.0.0.0/8"]  # a duplicate, garbage
    dry = action.run({"ips": ips, "comment": "socmon incident 9"})
    assert dry.dry_run and dry.ok and state.requests == []
    assert dry.message.startswith("would block 27 of 32 addresses (socmon-blocklist); to block 27")
    assert "refused 5: 45.95.147.1 (45.95.147.1 is in the protected range 45.95.147.0/30" in (
        dry.message
    )
    sent = [r for r in dry.requests if "method" in r]
    assert [r["address"] for r in sent] == [a for a in ATTACKERS[3:] for _ in (1, 2)]
    assert sent[0] | {"address": "-"} == {
        "method": "POST",
        "url": f"{url}/api/v2/cmdb/firewall/address",
        "headers": {"Authorization": "***", "Content-Type": "application/json"},
        "params": {"vdom": "root"},
        "json": {
            "name": "socmon-block-45.95.147.4",
            "comment": "socmon incident 9",
            "type": "ipmask",
            "subnet": "45.95.147.4 255.255.255.255",
        },
        "address": "-",
    }
    assert [(r["address"], r["outcome"]) for r in dry.requests if "method" not in r] == [
        ("45.95.147.1", "refused"),
        ("45.95.147.2", "refused"),
        ("45.95.147.3", "refused"),
        ("not-an-ip", "refused"),
        ("10.0.0.0/8", "refused"),
    ]
    assert "single IP" in dry.requests[-1]["reason"]

    state.reject.add("socmon-block-45.95.147.10")  # the box refuses this one object
    action.run({"ip": "45.95.147.4"}, dry_run=False)  # blocked before: already blocked
    result = action.run({"ips": ips}, dry_run=False)
    assert not result.ok and not result.dry_run  # one failure makes the action not ok
    assert result.message.startswith(
        "blocked 25, already blocked 1, refused 5, failed 1 of 32 addresses (socmon-blocklist)"
    )
    assert "already blocked 1: 45.95.147.4" in result.message
    assert "failed 1: 45.95.147.10 (FortiOS refused POST" in result.message
    others = [a for a in ATTACKERS[3:] if a != "45.95.147.10"]
    assert sorted(state.groups["socmon-blocklist"]) == sorted(f"socmon-block-{a}" for a in others)
    outcome = {
        (r["address"], r["url"].rsplit("/", 1)[-1]): r["outcome"]
        for r in result.requests
        if "method" in r
    }
    assert outcome[("45.95.147.4", "member")] == "exists"
    assert outcome[("45.95.147.10", "address")] == "failed"
    assert outcome[("45.95.147.10", "member")] == "not sent"
    assert outcome[("45.95.147.11", "member")] == "done"
    assert TOKEN not in repr(result.to_dict())


def test_fortigate_list_cap_and_bad_lists(
    fortios: tuple[str, FortiOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fortios
    monkeypatch.setenv("TEST_FGT_KEY", TOKEN)
    action = fortigate(url).get("perimeter-firewall")
    too_many = [f"45.95.{n // 250}.{n % 250 + 1}" for n in range(257)]
    with pytest.raises(
        ActionError, match=r"257 addresses to block, more than max_per_action \(256\)"
    ):
        action.run({"ips": too_many}, dry_run=False)
    assert action.run({"ips": too_many[:256] + too_many[:5]}).ok  # duplicates count once
    small = fortigate(url, max_per_action=2).get("perimeter-firewall")
    with pytest.raises(ActionError, match="3 addresses"):
        small.run({"ips": ATTACKERS[:2], "ip": ATTACKERS[2]})  # ip counts with ips
    with pytest.raises(ActionError, match="no address to block"):
        action.run({"ips": []})
    with pytest.raises(ActionError, match="must be a list"):
        action.run({"ips": "45.95.147.1"})
    with pytest.raises(ActionError, match="max_per_action must be a positive integer"):
        fortigate(url, max_per_action=0).get("perimeter-firewall").run({"ips": ATTACKERS})
    guarded = fortigate(url, protected=["45.95.147.0/24"]).get("perimeter-firewall")
    nothing = guarded.run({"ips": ATTACKERS[:3]}, dry_run=False)
    assert not nothing.ok and nothing.message.startswith("blocked 0, already blocked 0, refused 3")
    assert state.requests == []


def test_panos_blocks_a_list_with_one_commit(
    panos: tuple[str, PanOsState], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = panos
    monkeypatch.setenv("TEST_PAN_KEY", PAN_KEY)
    action = pan(url, protected=["45.95.147.5/32"], max_per_action=30).get("perimeter-firewall")
    dry = action.run({"ips": ATTACKERS})
    assert dry.dry_run and dry.ok and state.requests == []
    forms = [r["data"] for r in dry.requests if "data" in r]
    assert len(forms) == 2 * 29 + 1 and forms[-1] == {"type": "commit", "cmd": "<commit></commit>"}
    assert forms[0]["element"].startswith("<ip-netmask>45.95.147.1/32</ip-netmask>")
    assert dry.requests[-1]["address"] == "45.95.147.5"
    assert dry.requests[-1]["outcome"] == "refused"

    result = action.run({"ips": ATTACKERS}, dry_run=False)
    assert result.ok, result.message
    assert result.message.startswith("blocked 29, refused 1, failed 0 of 30 addresses")
    members = state.config[f"{ROOT}/address-group/entry[@name='socmon-blocklist']/static"]
    assert members == [
        f"<member>socmon-block-{a}</member>" for a in ATTACKERS if a != "45.95.147.5"
    ]
    assert state.commits == 1 and len(state.requests) == 2 * 29 + 1
    assert {r.get("outcome") for r in result.requests} == {"done", "refused"}
    with pytest.raises(ActionError, match="31 addresses"):
        action.run({"ips": [*ATTACKERS, "45.95.148.1"]})
    monkeypatch.setenv("TEST_PAN_KEY", "bad")
    refused = action.run({"ips": ATTACKERS[:2]}, dry_run=False)
    assert not refused.ok and "failed 2 of 2" in refused.message
    assert "Invalid Credential" in refused.message and state.commits == 1
