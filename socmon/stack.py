"""The whole stack in one process (`socmon up`): store, database, listener, stages and API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import uvicorn

from socmon.config import Settings
from socmon.db import Database
from socmon.embedded import EMBEDDED_NOTICE, EmbeddedStore
from socmon.errors import StoreError
from socmon.logging import kv
from socmon.spool import Spool
from socmon.store import Store
from socmon.supervisor import Supervisor

log = logging.getLogger("socmon.stack")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the stack owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Stack:
    settings: Settings
    embedded: EmbeddedStore | None = None
    store: Store | None = None
    db: Database | None = None
    spools: dict[str, Spool] = field(default_factory=dict)

    def open(self) -> None:
        """Start the embedded store if needed, connect, install templates, migrate."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        url = s.es_url
        if s.embedded_store:
            log.warning(EMBEDDED_NOTICE.format(cap=s.embedded_max_events))
            self.embedded = EmbeddedStore()
            url = self.embedded.start()
        self.store = Store.connect(s, url)
        self.store.setup()
        self.db = Database(s.effective_db_url)
        self.db.migrate()
        spool_root = s.data_dir / "spool"
        for name, consumers in (("events", ["ship", "detect"]), ("alerts", ["ship", "incident"])):
            self.spools[name] = Spool(
                spool_root / name,
                consumers=consumers,
                max_bytes=s.spool_max_bytes,
                fsync=s.spool_fsync,
                fsync_interval=s.spool_fsync_interval,
            )

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()
        if self.db is not None:
            self.db.dispose()
        if self.store is not None:
            self.store.close()
        if self.embedded is not None:
            self.embedded.stop()

    async def run(self) -> None:
        from collectors import Pipeline, Shipper, SyslogUdpCollector, events_target
        from collectors.base import CollectorContext
        from detections import DetectStage, load_matcher
        from soc_api import IncidentService, IncidentStage, create_app

        s = self.settings
        assert self.store is not None and self.db is not None
        store, db = self.store, self.db
        events, alerts = self.spools["events"], self.spools["alerts"]
        sup = Supervisor()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, sup.shutdown.set)

        matcher, _ruleset, _report = load_matcher(s.rules_dirs)
        deadletters = s.data_dir / "deadletter"
        ship_events = Shipper(events, store, events_target(store), deadletters)
        ship_alerts = Shipper(alerts, store, lambda _doc: store.alerts_target, deadletters)
        detect = DetectStage(events, alerts, matcher)
        incidents = IncidentStage(
            alerts, db, IncidentService(timedelta(seconds=s.incident_window_seconds))
        )
        udp = SyslogUdpCollector(s.syslog_host, s.syslog_udp_port, parser=s.syslog_parser)
        pipeline = Pipeline(events)

        async def run_udp(shutdown: asyncio.Event) -> None:
            await udp.run(CollectorContext(out=pipeline, shutdown=shutdown))

        app = create_app(db, store, embedded=self.embedded is not None)
        server = _Server(
            uvicorn.Config(
                app, host=s.api_host, port=s.api_port, log_level="warning", lifespan="off"
            )
        )

        async def run_api(shutdown: asyncio.Event) -> None:
            task = asyncio.create_task(server.serve())
            await shutdown.wait()
            server.should_exit = True
            await task

        sup.add("syslog_udp", run_udp)
        sup.add("ship_events", ship_events.run)
        sup.add("ship_alerts", ship_alerts.run)
        sup.add("detect", detect.run)
        sup.add("incidents", incidents.run)
        sup.add("api", run_api)
        if self.embedded is not None:
            sup.add("embedded_cap", self._cap_loop)
        log.info(
            "socmon up %s",
            kv(
                api=f"http://{s.api_host}:{s.api_port}",
                syslog_udp=s.syslog_udp_port,
                store=store.url,
                data_dir=s.data_dir,
            ),
        )
        await sup.run()
        log.info("socmon stopped")

    async def _cap_loop(self, shutdown: asyncio.Event) -> None:
        assert self.store is not None
        while not shutdown.is_set():
            try:
                removed = await asyncio.to_thread(
                    self.store.enforce_event_cap, self.settings.embedded_max_events
                )
                if removed:
                    log.info("embedded cap removed oldest events %s", kv(count=removed))
            except StoreError as e:
                log.warning("embedded cap check failed %s", kv(error=e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), timeout=30)
