"""The embedded event store: osmem-server run as a managed child process on loopback."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import time

import osmem_server

from socmon.errors import StoreError
from socmon.logging import kv

log = logging.getLogger("socmon.embedded")

EMBEDDED_NOTICE = (
    "embedded event store (osmem-server): events are kept IN MEMORY ONLY and are lost when "
    "socmon stops; about 13 KB of RAM per event and about 3,000 events/s of indexing; at most "
    "{cap:,} events are kept (oldest out first, SOCMON_EMBEDDED_MAX_EVENTS). This is for "
    "evaluation, drills and CI. For production set SOCMON_ES_URL to an Elasticsearch or "
    "OpenSearch cluster."
)


class EmbeddedStore:
    """Start, wait for and stop one osmem-server child process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 15.0) -> str:
        binary = osmem_server.resolve_binary()
        cmd = [str(binary), "-addr", f"{self.host}:{self.port}", "-no-stdin-watch", "-no-ja"]
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as e:
            raise StoreError(f"cannot start embedded store {binary}: {e}") from e
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StoreError(f"embedded store exited at start with code {self.proc.returncode}")
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if not ready:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            buf += chunk
            if b"\n" in buf:
                line = buf.split(b"\n", 1)[0]
                try:
                    self.url = str(json.loads(line)["url"])
                except (ValueError, KeyError) as e:
                    self.stop()
                    raise StoreError(
                        f"embedded store printed an unexpected start line: {line!r}"
                    ) from e
                log.info("embedded store started %s", kv(url=self.url, pid=self.proc.pid))
                return self.url
        self.stop()
        raise StoreError(f"embedded store did not become ready within {timeout:.0f} s")

    def stop(self, timeout: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        log.info("embedded store stopped")

    def __enter__(self) -> EmbeddedStore:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
