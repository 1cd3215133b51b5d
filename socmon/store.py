"""The event store: the one place that creates the Elasticsearch client.

socmon talks to Elasticsearch 8 and 9 and to OpenSearch-compatible servers (OpenSearch,
the embedded osmem-server) with the `elasticsearch` 9.x client. The 9.x client sends
`application/vnd.elasticsearch+json; compatible-with=9`, which Elasticsearch 8 and
OpenSearch-compatible servers refuse (406/400). So every client starts with
`CompatibleJsonNode`, which sends plain `application/json`; once the server has said who it
is, an Elasticsearch 9+ server gets the stock node. OpenSearch does not send the
`X-Elastic-Product` header the client insists on, so the compatible node adds it to
responses of servers that lack it (the client's check exists to refuse unknown products;
socmon has already identified the product from `GET /`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import HttpHeaders, TransportError, Urllib3HttpNode
from elastic_transport._node import NodeApiResponse
from elasticsearch import ApiError, Elasticsearch

from socmon import ecs
from socmon.config import Settings
from socmon.errors import StoreError
from socmon.logging import kv

log = logging.getLogger("socmon.store")

_VENDOR_PREFIX = "application/vnd.elasticsearch+"


class CompatibleJsonNode(Urllib3HttpNode):
    """A transport node that speaks plain JSON, for servers that refuse the compat media type."""

    def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        **kwargs: Any,
    ) -> NodeApiResponse:
        if headers:
            headers = headers.copy()
            for name in ("content-type", "accept"):
                value = headers.get(name)
                if value and value.startswith(_VENDOR_PREFIX):
                    # application/vnd.elasticsearch+x-ndjson; compatible-with=9 -> application/x-ndjson
                    headers[name] = "application/" + value[len(_VENDOR_PREFIX) :].split(";", 1)[0]
        response = super().perform_request(method, target, body=body, headers=headers, **kwargs)
        if "x-elastic-product" not in response.meta.headers:
            response.meta.headers["x-elastic-product"] = "Elasticsearch"
        return response


@dataclass(frozen=True)
class ServerInfo:
    distribution: str  # "elasticsearch" or "opensearch"
    version: str
    name: str

    @property
    def major(self) -> int:
        try:
            return int(self.version.split(".", 1)[0])
        except ValueError:
            return 0


@dataclass
class BulkResult:
    """Per-item outcome of one bulk write."""

    created: int = 0
    duplicates: int = 0  # 409 on op_type=create: already stored earlier
    rejected: list[tuple[int, int, str]] = field(
        default_factory=list
    )  # (index in batch, status, reason)
    retryable: list[int] = field(default_factory=list)  # indexes in batch to send again (429/5xx)


_RETRYABLE_STATUS = {429, 500, 502, 503, 504}


def build_client(settings: Settings, url: str, *, stock_node: bool = False) -> Elasticsearch:
    kwargs: dict[str, Any] = {"request_timeout": 30, "retry_on_timeout": False, "max_retries": 0}
    if not stock_node:
        kwargs["node_class"] = CompatibleJsonNode
    if settings.es_api_key.get_secret_value():
        kwargs["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username:
        kwargs["basic_auth"] = (settings.es_username, settings.es_password.get_secret_value())
    if url.startswith("https"):
        kwargs["verify_certs"] = settings.es_verify_certs
        if settings.es_ca_certs:
            kwargs["ca_certs"] = settings.es_ca_certs
    return Elasticsearch(url, **kwargs)


def _describe(e: Exception) -> str:
    if isinstance(e, ApiError):
        return f"HTTP {e.meta.status}: {e.message}"
    if isinstance(e, TransportConnectionError):
        return f"connection failed: {e.message}"
    return f"{type(e).__name__}: {e}"


class Store:
    """Events, alerts and dead letters in Elasticsearch/OpenSearch, with socmon's templates."""

    def __init__(
        self, settings: Settings, client: Elasticsearch, info: ServerInfo, url: str
    ) -> None:
        self.settings = settings
        self.client = client
        self.info = info
        self.url = url
        self.namespace = settings.namespace
        self.data_streams = False
        self._ready_targets: set[str] = set()

    # -- connection -----------------------------------------------------------------------
    @classmethod
    def connect(
        cls, settings: Settings, url: str | None = None, *, max_wait: float | None = None
    ) -> Store:
        """Connect, retrying with backoff while the store is unreachable.

        Raises StoreError (one clear line, no traceback) when it is still unreachable after
        `max_wait` seconds (default: settings.store_retry_max_seconds).
        """
        url = url or settings.es_url
        if not url:
            raise StoreError("no store URL: set SOCMON_ES_URL or use the embedded store")
        deadline = time.monotonic() + (
            max_wait if max_wait is not None else settings.store_retry_max_seconds
        )
        client = build_client(settings, url)
        delay, attempt, last = 0.2, 0, ""
        while True:
            attempt += 1
            try:
                raw = client.info()
                break
            except (TransportError, ApiError) as e:
                reason = _describe(e)
                if isinstance(e, ApiError) and e.meta.status in (401, 403):
                    raise StoreError(f"store at {url} refused the credentials: {reason}") from e
                if reason != last:
                    log.warning("store unavailable %s", kv(url=url, attempt=attempt, error=reason))
                    last = reason
                if time.monotonic() + delay > deadline:
                    raise StoreError(
                        f"store at {url} unreachable after {attempt} attempts: {reason}"
                    ) from e
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)
        version = raw.get("version", {})
        info = ServerInfo(
            distribution=str(version.get("distribution", "elasticsearch")),
            version=str(version.get("number", "0")),
            name=str(raw.get("cluster_name", "")),
        )
        if info.distribution == "elasticsearch" and info.major >= 9:
            client.close()
            client = build_client(settings, url, stock_node=True)
        if attempt > 1:
            log.info("store available %s", kv(url=url, attempts=attempt))
        return cls(settings, client, info, url)

    def close(self) -> None:
        self.client.close()

    def health(self) -> dict[str, Any]:
        """A small health document: reachable, distribution, version, cluster status."""
        try:
            h = self.client.cluster.health()
            return {
                "status": "ok" if h.get("status") in ("green", "yellow") else "degraded",
                "cluster_status": h.get("status"),
                "distribution": self.info.distribution,
                "version": self.info.version,
                "data_streams": self.data_streams,
            }
        except (TransportError, ApiError) as e:
            return {"status": "unreachable", "error": _describe(e)}

    # -- templates and targets ------------------------------------------------------------
    def setup(self) -> None:
        """Install socmon's index templates (idempotent) and pick data streams or aliases."""
        self.data_streams = self._probe_data_streams()
        templates = {
            "socmon-logs": ecs.events_template(data_stream=self.data_streams),
            "socmon-alerts": ecs.alerts_template(),
            "socmon-deadletter": ecs.deadletter_template(),
            "socmon-sources": ecs.sources_template(),
        }
        try:
            for name, body in templates.items():
                self.client.indices.put_index_template(name=name, **body)
        except (TransportError, ApiError) as e:
            raise StoreError(f"cannot install index templates: {_describe(e)}") from e
        log.info(
            "store ready %s",
            kv(
                distribution=self.info.distribution,
                version=self.info.version,
                data_streams=self.data_streams,
            ),
        )

    def _probe_data_streams(self) -> bool:
        """True when the server really creates data streams (osmem lists none and creates none)."""
        probe = f"socmon-probe-ds-{self.namespace}"
        try:
            self.client.indices.put_index_template(
                name=probe, index_patterns=[probe], data_stream={}, priority=500
            )
            self.client.indices.create_data_stream(name=probe)
            got = self.client.indices.get_data_stream(name=probe)
            ok = bool(got.get("data_streams"))
        except (TransportError, ApiError):
            ok = False
        with contextlib.suppress(TransportError, ApiError):
            self.client.indices.delete_data_stream(name=probe)
        with contextlib.suppress(TransportError, ApiError):
            self.client.indices.delete_index_template(name=probe)
        return ok

    def events_target(self, dataset: str) -> str:
        safe = "".join(c if c.isalnum() or c in "._" else "_" for c in dataset.lower()) or "generic"
        return f"logs-{safe}-{self.namespace}"

    @property
    def alerts_target(self) -> str:
        return f"socmon-alerts-{self.namespace}"

    @property
    def deadletter_target(self) -> str:
        return f"socmon-deadletter-{self.namespace}"

    def ensure_target(self, target: str) -> None:
        """Make `target` writable: a data stream (created on first write) or index + write alias."""
        if target in self._ready_targets:
            return
        if not (self.data_streams and target.startswith("logs-")):
            try:
                if not self.client.indices.exists_alias(name=target):
                    self.client.indices.create(
                        index=f"{target}-000001", aliases={target: {"is_write_index": True}}
                    )
            except ApiError as e:
                if e.meta.status != 400 or "already_exists" not in str(e.message):
                    raise StoreError(f"cannot create {target}: {_describe(e)}") from e
            except TransportError as e:
                raise StoreError(f"cannot create {target}: {_describe(e)}") from e
        self._ready_targets.add(target)

    # -- writes and reads -----------------------------------------------------------------
    def bulk_create(self, target: str, docs: Sequence[tuple[str, Mapping[str, Any]]]) -> BulkResult:
        """Write (id, source) pairs with op_type=create; classify every item's outcome.

        Raises StoreError when the request as a whole failed (unreachable, 5xx on the
        request): the caller retries the batch.
        """
        result = BulkResult()
        if not docs:
            return result
        self.ensure_target(target)
        operations: list[Mapping[str, Any]] = []
        for doc_id, source in docs:
            operations.append({"create": {"_index": target, "_id": doc_id}})
            operations.append(source)
        try:
            resp = self.client.bulk(operations=operations)
        except (TransportError, ApiError) as e:
            raise StoreError(f"bulk to {target} failed: {_describe(e)}") from e
        for i, item in enumerate(resp.get("items", [])):
            outcome = item.get("create", {})
            status = int(outcome.get("status", 500))
            if status in (200, 201):
                result.created += 1
            elif status == 409:
                result.duplicates += 1
            elif status in _RETRYABLE_STATUS:
                result.retryable.append(i)
            else:
                err = outcome.get("error", {})
                reason = (
                    f"{err.get('type', 'error')}: {err.get('reason', '')}"
                    if isinstance(err, dict)
                    else str(err)
                )
                result.rejected.append((i, status, reason))
        return result

    def upsert(self, target: str, docs: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Write (id, source) pairs with op_type=index (replace): for state documents such as
        source health, not for events. Raises StoreError when any item fails."""
        if not docs:
            return
        self.ensure_target(target)
        operations: list[Mapping[str, Any]] = []
        for doc_id, source in docs:
            operations.append({"index": {"_index": target, "_id": doc_id}})
            operations.append(source)
        try:
            resp = self.client.bulk(operations=operations)
        except (TransportError, ApiError) as e:
            raise StoreError(f"bulk to {target} failed: {_describe(e)}") from e
        if resp.get("errors"):
            first = next(i["index"] for i in resp["items"] if i["index"].get("error"))
            raise StoreError(f"write to {target} failed: {first.get('error')}")

    @property
    def sources_target(self) -> str:
        return f"socmon-sources-{self.namespace}"

    def refresh(self, target: str) -> None:
        try:
            self.client.indices.refresh(index=target, ignore_unavailable=True)
        except (TransportError, ApiError) as e:
            raise StoreError(f"refresh of {target} failed: {_describe(e)}") from e

    def search(self, target: str, **body: Any) -> dict[str, Any]:
        try:
            return dict(self.client.search(index=target, ignore_unavailable=True, **body))
        except (TransportError, ApiError) as e:
            raise StoreError(f"search of {target} failed: {_describe(e)}") from e

    def count(self, target: str, query: Mapping[str, Any] | None = None) -> int:
        try:
            resp = self.client.count(index=target, ignore_unavailable=True, query=query)
        except (TransportError, ApiError) as e:
            raise StoreError(f"count of {target} failed: {_describe(e)}") from e
        return int(resp["count"])

    def enforce_event_cap(self, max_events: int) -> int:
        """Delete the oldest events beyond `max_events` (embedded mode). Returns how many."""
        pattern = f"logs-*-{self.namespace}"
        total = self.count(pattern)
        excess = total - max_events
        if excess <= 0:
            return 0
        batch = min(excess, 10_000)
        hits = self.search(pattern, size=batch, sort=[{"@timestamp": "asc"}], source=False)["hits"][
            "hits"
        ]
        ids_by_index: dict[str, list[str]] = {}
        for hit in hits:
            ids_by_index.setdefault(hit["_index"], []).append(hit["_id"])
        deleted = 0
        try:
            for index, ids in ids_by_index.items():
                resp = self.client.delete_by_query(
                    index=index, query={"ids": {"values": ids}}, refresh=True
                )
                deleted += int(resp.get("deleted", 0))
        except (TransportError, ApiError) as e:
            raise StoreError(f"cap enforcement failed: {_describe(e)}") from e
        return deleted

    def enforce_retention(self, days: int, *, now: float | None = None) -> int:
        """Delete events that arrived more than `days` days ago; returns how many.

        By arrival (`event.ingested`), not by `@timestamp`: an old log replayed today (an EVTX
        file from last year, a drill) is kept for the full period, as the retention duty is
        about what the SOC can still search. Runs on every server (Elasticsearch, OpenSearch,
        osmem) as a delete-by-query; no lifecycle policy is needed (decision 0007).
        """
        cutoff = (now if now is not None else time.time()) - days * 86_400
        bound = datetime.fromtimestamp(cutoff, UTC).isoformat().replace("+00:00", "Z")
        try:
            resp = self.client.delete_by_query(
                index=f"logs-*-{self.namespace}",
                query={"range": {"event.ingested": {"lt": bound}}},
                conflicts="proceed",
                refresh=True,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
        except (TransportError, ApiError) as e:
            raise StoreError(f"retention enforcement failed: {_describe(e)}") from e
        return int(resp.get("deleted", 0))

    def oldest_event(self, query: Mapping[str, Any] | None = None) -> str | None:
        """The earliest `event.ingested` among the events matching `query` (ISO text), if any:
        how far back the store can be searched."""
        resp = self.search(
            f"logs-*-{self.namespace}",
            size=0,
            query=query or {"match_all": {}},
            aggs={"oldest": {"min": {"field": "event.ingested"}}},
        )
        oldest = resp.get("aggregations", {}).get("oldest", {})
        text = oldest.get("value_as_string")
        return str(text) if text else None


def iter_hits(resp: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    for hit in resp.get("hits", {}).get("hits", []):
        yield {"_id": hit["_id"], "_index": hit["_index"], **hit.get("_source", {})}
