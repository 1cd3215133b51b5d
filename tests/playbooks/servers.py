"""Real local servers speaking the documented request shapes of the adapters' targets:
FortiOS REST (cmdb firewall address / addrgrp member), PAN-OS XML API, a webhook receiver.
Each runs a ThreadingHTTPServer on 127.0.0.1 in a thread and records what it received."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler], state: Any) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _Base(BaseHTTPRequestHandler):
    def log_message(self, *_args: Any) -> None:  # keep pytest output clean
        pass

    def _read(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FortiOsState(Recorder):
    def __init__(self, token: str, groups: list[str]) -> None:
        super().__init__()
        self.token = token
        self.addresses: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, list[str]] = {g: [] for g in groups}  # IPv4 addrgrp
        self.groups6: dict[str, list[str]] = {}  # addrgrp6
        self.reject: set[str] = set()  # address object names answered with error -651


class FortiOsHandler(_Base):
    """FortiOS cmdb: POST firewall/address[6]; POST firewall/addrgrp[6]/<name>/member."""

    def do_POST(self) -> None:
        st: FortiOsState = self.server.state  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        body = json.loads(self._read() or b"{}")
        with st.lock:
            st.requests.append(
                {
                    "method": "POST",
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "auth": self.headers.get("Authorization"),
                    "json": body,
                }
            )
            if self.headers.get("Authorization") != f"Bearer {st.token}":
                return self._json(401, {"status": "error", "http_status": 401})
            parts = [unquote(p) for p in url.path.split("/")]
            if url.path in ("/api/v2/cmdb/firewall/address", "/api/v2/cmdb/firewall/address6"):
                if (
                    not body.get("name")
                    or ("subnet" not in body and "ip6" not in body)
                    or body["name"] in st.reject
                ):
                    return self._json(424, {"status": "error", "http_status": 424, "error": -651})
                if body["name"] in st.addresses:
                    return self._json(500, {"status": "error", "http_status": 500, "error": -5})
                st.addresses[body["name"]] = body
                return self._json(
                    200, {"status": "success", "http_status": 200, "mkey": body["name"]}
                )
            if len(parts) == 8 and parts[5] in ("addrgrp", "addrgrp6") and parts[7] == "member":
                table = st.groups if parts[5] == "addrgrp" else st.groups6
                group = parts[6]
                if group not in table:
                    return self._json(404, {"status": "error", "http_status": 404})
                if body.get("name") not in st.addresses:
                    return self._json(500, {"status": "error", "http_status": 500, "error": -3})
                if body["name"] in table[group]:
                    return self._json(500, {"status": "error", "http_status": 500, "error": -5})
                table[group].append(body["name"])
                return self._json(200, {"status": "success", "http_status": 200})
            return self._json(404, {"status": "error", "http_status": 404})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._reply(status, json.dumps(body).encode(), "application/json")


class PanOsState(Recorder):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.config: dict[str, list[str]] = {}
        self.commits = 0


class PanOsHandler(_Base):
    """PAN-OS XML API: type=config&action=set (xpath, element); type=commit."""

    def do_POST(self) -> None:
        st: PanOsState = self.server.state  # type: ignore[attr-defined]
        form = {k: v[0] for k, v in parse_qs(self._read().decode()).items()}
        with st.lock:
            st.requests.append(
                {
                    "path": urlsplit(self.path).path,
                    "key": self.headers.get("X-PAN-KEY"),
                    "form": form,
                }
            )
            if urlsplit(self.path).path != "/api/":
                return self._xml(404, "error", "<msg>not found</msg>")
            if self.headers.get("X-PAN-KEY") != st.key:
                return self._xml(403, "error", "<result><msg>Invalid Credential</msg></result>")
            if form.get("type") == "config" and form.get("action") == "set":
                xpath, element = form.get("xpath", ""), form.get("element", "")
                if not xpath.startswith("/config/devices/entry[@name='localhost.localdomain']"):
                    return self._xml(200, "error", "<msg>No such node</msg>")
                if xpath.endswith("/static"):
                    member = element.removeprefix("<member>").removesuffix("</member>")
                    root = xpath.split("/address-group/")[0]
                    if f"{root}/address/entry[@name='{member}']" not in st.config:
                        return self._xml(
                            200, "error", f"<msg>{member} is not a valid reference</msg>"
                        )
                st.config.setdefault(xpath, []).append(element)
                return self._xml(200, "success", "<msg>command succeeded</msg>", code="20")
            if form.get("type") == "commit" and form.get("cmd") == "<commit></commit>":
                st.commits += 1
                return self._xml(
                    200,
                    "success",
                    f"<result><msg><line>Commit job enqueued with jobid {st.commits}</line></msg>"
                    f"<job>{st.commits}</job></result>",
                    code="19",
                )
            return self._xml(400, "error", "<msg>bad request</msg>")

    def _xml(self, status: int, result: str, inner: str, code: str = "") -> None:
        attr = f' code="{code}"' if code else ""
        body = f'<response status="{result}"{attr}>{inner}</response>'.encode()
        self._reply(status, body, "application/xml")


class WebhookState(Recorder):
    def __init__(self, status: int = 204) -> None:
        super().__init__()
        self.status = status


class WebhookHandler(_Base):
    def do_POST(self) -> None:
        st: WebhookState = self.server.state  # type: ignore[attr-defined]
        raw = self._read()
        with st.lock:
            st.requests.append(
                {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "json": json.loads(raw or b"null"),
                }
            )
        self._reply(st.status, b"" if st.status == 204 else b'{"ok": true}', "application/json")
