"""parse -> enrich -> id -> spool: what every source hands its raw messages to.

Nothing is dropped here: a message no parser understands is stored with its original
text, the tag `_parse_failure` and the reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from collectors import registry
from collectors.enrich import Enricher
from collectors.health import SourceHealth
from collectors.ids import event_id
from collectors.parsing import EcsDoc, ParseError, SourceContext
from socmon.logging import kv
from socmon.spool import Spool

log = logging.getLogger("socmon.collectors.pipeline")
_DEFAULT_CONTEXT = SourceContext()


@dataclass(frozen=True)
class RawMessage:
    """One message as received: `source` names the source (e.g. `syslog+udp://10.0.0.1`)."""

    source: str
    data: bytes
    received_at: float
    sender: str | None = None  # "ip:port" for network sources
    position: str | None = None  # file fingerprint:offset; None for sockets (spool seq is used)
    parser: str = "auto"
    context: SourceContext | None = None
    collector: str = "unknown"  # the collector type that received it (for source health)
    notes: tuple[str, ...] = ()  # what the transport did to it (cut, truncated), kept on the event


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def decode(data: bytes) -> tuple[str, str | None]:
    """Text of a message and, when it is not valid UTF-8, the reason."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return data.decode("utf-8", errors="backslashreplace"), f"invalid UTF-8 at byte {e.start}"


_observer_contexts: dict[tuple[int, str], tuple[SourceContext, SourceContext]] = {}


def _with_observer(ctx: SourceContext, sender: str) -> SourceContext:
    """`ctx` with the sender as observer (cached: contexts are long-lived, senders few)."""
    key = (id(ctx), sender)
    hit = _observer_contexts.get(key)
    if hit is not None and hit[0] is ctx:
        return hit[1]
    if len(_observer_contexts) > 4096:
        _observer_contexts.clear()
    derived = replace(ctx, observer_ip=sender.rsplit(":", 1)[0])
    _observer_contexts[key] = (ctx, derived)
    return derived


def parse_message(msg: RawMessage, *, ingested: str | None = None) -> EcsDoc:
    """Parse one message into ECS; never raises (failures become `_parse_failure` documents)."""
    text, decode_error = decode(msg.data)
    text = text.rstrip("\r\n")
    ctx = msg.context or _DEFAULT_CONTEXT
    if msg.sender and ctx.observer_ip is None:
        ctx = _with_observer(ctx, msg.sender)
    name = registry.detect(text) if msg.parser == "auto" else msg.parser
    parser = registry.PARSERS.get(name)
    reason = decode_error
    doc: EcsDoc | None = None
    if parser is None:
        reason = f"unknown parser {name!r}"
    elif reason is None:
        try:
            doc = parser(text, ctx)
        except ParseError as e:
            reason = e.msg
        except Exception as e:  # a parser bug must not lose the message
            reason = f"parser {name} failed: {type(e).__name__}: {e}"
            log.exception("parser error %s", kv(parser=name, source=msg.source))
    if doc is None:
        doc = {
            "@timestamp": _iso(msg.received_at),
            "message": text,
            "event": {
                "original": text,
                "kind": "event",
                "dataset": registry.DATASETS.get(name, "syslog"),
            },
            "tags": ["_parse_failure"],
            "error": {"message": reason or "unparsed", "type": "parse_failure"},
        }
    doc.setdefault("@timestamp", _iso(msg.received_at))
    event = doc.setdefault("event", {})
    event.setdefault("original", text)
    event.setdefault("dataset", registry.DATASETS.get(name, "syslog"))
    event["ingested"] = ingested or _iso(time.time())
    if msg.sender:
        doc.setdefault("log", {})["source"] = {"address": msg.sender}
    if msg.notes:
        tags = doc.setdefault("tags", [])
        if "_framing" not in tags:
            tags.append("_framing")
        error = doc.setdefault("error", {})
        error["message"] = "; ".join(
            [*msg.notes, *([error["message"]] if "message" in error else [])]
        )
        error.setdefault("type", "framing")
    return doc


class Pipeline:
    """Turns raw messages into ECS documents with ids and appends them to the spool."""

    def __init__(
        self, spool: Spool, health: SourceHealth | None = None, enricher: Enricher | None = None
    ) -> None:
        self.spool = spool
        self.health = health or SourceHealth()
        self.enricher = enricher or Enricher()

    def process(self, messages: Sequence[RawMessage], *, timeout: float | None = None) -> list[int]:
        """Parse and spool `messages`; returns their spool sequence numbers ([] if dropped)."""
        now = time.time()
        ingested = _iso(now)
        docs = [(m, parse_message(m, ingested=ingested)) for m in messages]
        enrich = self.enricher.enrich
        for _m, doc in docs:
            enrich(doc)
        tally: dict[tuple[str, str], list[int]] = {}
        for m, doc in docs:
            counts = tally.setdefault((m.source, m.collector), [0, 0, 0])
            counts[0] += 1
            counts[1] += len(m.data)
            if "error" in doc and "_parse_failure" in doc.get("tags", ()):
                counts[2] += 1
        for (source, collector), (n, nbytes, failures) in tally.items():
            self.health.record(
                source, collector, nbytes=nbytes, events=n, parse_failures=failures, now=now
            )
        instance = f"{self.spool.instance_id}:{self.spool.epoch}"

        def encode(item: tuple[RawMessage, dict[str, Any]], seq: int) -> bytes:
            msg, doc = item
            position = msg.position or f"{instance}:{seq}"
            doc["_id"] = event_id(msg.source, position, msg.data)
            return orjson.dumps(doc)

        return self.spool.append(docs, encode, timeout=timeout)
