"""Process wiring: `socmon up` (everything on one machine) and `socmon collect` (a collector host).

Roles:
- collect: the configured sources -> pipeline -> events spool -> shipper -> store, the
  streaming detection stage -> alerts spool -> alerts index, and source health published
  to the store;
- central: incidents from the alerts spool, the silent-source watch, the API, and (embedded
  mode) the event cap. `socmon up` runs both roles in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from socmon.config import Settings
from socmon.db import Database
from socmon.embedded import EMBEDDED_NOTICE, EmbeddedStore
from socmon.errors import StoreError
from socmon.logging import kv
from socmon.spool import Spool
from socmon.store import Store
from socmon.supervisor import Supervisor

if TYPE_CHECKING:
    from collectors.enrich import Enricher
    from detections.catalog import RuleCatalog
    from inventory import IpLookup

log = logging.getLogger("socmon.stack")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the stack owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Stack:
    settings: Settings
    central: bool = True  # False for `socmon collect`
    embedded: EmbeddedStore | None = None
    store: Store | None = None
    db: Database | None = None
    spools: dict[str, Spool] = field(default_factory=dict)
    catalog: RuleCatalog | None = None  # the running rules (collect role), shown by the API
    demo: bool = False  # `socmon up --demo`: the sample province and its evidence in the DB
    enricher: Enricher | None = None

    def open(self) -> None:
        """Start the embedded store if needed, connect, install templates, migrate, open spools."""
        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        url = s.es_url
        if s.embedded_store:
            if not self.central:
                raise StoreError("socmon collect needs SOCMON_ES_URL (the store to ship to)")
            log.warning(EMBEDDED_NOTICE.format(cap=s.embedded_max_events))
            self.embedded = EmbeddedStore()
            url = self.embedded.start()
        self.store = Store.connect(s, url)
        self.store.setup()
        if self.central:
            self.db = Database(s.effective_db_url)
            self.db.migrate()
            if self.demo:
                from lab.demo import load_demo

                with self.db.session() as session:
                    log.info("demo province loaded %s", kv(**load_demo(session)))
        alert_consumers = ["ship", "incident"] if self.central else ["ship"]
        for name, consumers in (("events", ["ship", "detect"]), ("alerts", alert_consumers)):
            self.spools[name] = Spool(
                s.data_dir / "spool" / name,
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
        sup = Supervisor()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, sup.shutdown.set)
        self._add_collect_role(sup)
        if self.central:
            self._add_central_role(sup)
        await sup.run()
        log.info("socmon stopped")

    def _add_collect_role(self, sup: Supervisor) -> None:
        from collectors import Pipeline, Shipper, events_target
        from collectors.base import CollectorContext, build_collectors
        from collectors.enrich import Enricher
        from collectors.health import SourceHealth, publish_health
        from collectors.intel import IndicatorSet
        from detections import BUILTIN_RULES, DetectStage
        from detections.catalog import RuleCatalog, RulePolicy
        from detections.correlation import CorrelationEngine
        from inventory import IpLookup, load_inventory

        s = self.settings
        assert self.store is not None
        store = self.store
        events, alerts = self.spools["events"], self.spools["alerts"]
        health = SourceHealth(host=socket.gethostname())
        enricher = Enricher(
            IpLookup(load_inventory(s.inventory_file)) if s.inventory_file else self._db_lookup(),
            IndicatorSet.load(s.intel_file) if s.intel_file else None,
        )
        self.enricher = enricher
        pipeline = Pipeline(events, health, enricher)
        collectors = build_collectors(s.effective_sources)
        catalog = RuleCatalog.load(
            [BUILTIN_RULES, *s.rules_dirs],
            RulePolicy.model_validate(s.rules_policy),
            placeholders=s.sigma_placeholders,
        )
        assert catalog.ruleset is not None
        engine, correlations = CorrelationEngine.from_ruleset(
            catalog.ruleset, catalog.compiled_rules(), lateness=s.correlation_lateness_seconds
        )
        catalog.report_correlation_report(correlations)
        self.catalog = catalog
        log.info("rules ready %s", kv(**catalog.counts()))
        deadletters = s.data_dir / "deadletter"
        state_root = s.data_dir / "state"

        for i, collector in enumerate(collectors):
            state_dir = state_root / f"{collector.type_name}-{i}"
            state_dir.mkdir(parents=True, exist_ok=True)

            async def run_collector(shutdown: asyncio.Event, c=collector, d=state_dir) -> None:  # type: ignore[no-untyped-def]
                await c.run(
                    CollectorContext(out=pipeline, shutdown=shutdown, state_dir=d, health=health)
                )

            sup.add(f"source:{collector.type_name}:{i}", run_collector)
        sup.add("ship_events", Shipper(events, store, events_target(store), deadletters).run)
        sup.add(
            "detect",
            DetectStage(events, alerts, catalog.matcher, correlations=engine, catalog=catalog).run,
        )
        sup.add(
            "ship_alerts", Shipper(alerts, store, lambda _doc: store.alerts_target, deadletters).run
        )

        async def run_health(shutdown: asyncio.Event) -> None:
            await publish_health(store, health, shutdown)

        sup.add("source_health", run_health)
        log.info("collecting %s", kv(sources=len(collectors), store=store.url, data_dir=s.data_dir))

    def _add_central_role(self, sup: Supervisor) -> None:
        from detections.silence import watch_silent_sources
        from soc_api import AlertPuller, IncidentStage, create_app

        s = self.settings
        assert self.store is not None and self.db is not None
        store, db = self.store, self.db
        alerts = self.spools["alerts"]
        from playbooks.engine import SlaWatcher, service_with_playbooks, spool_sink

        # every opened incident gets its playbook run; the API's changes replan it
        service, playbooks = service_with_playbooks(s, db)
        incidents = IncidentStage(alerts, db, service)
        sup.add("incidents", incidents.run)
        puller = AlertPuller(
            store, db, incidents.service, s.data_dir / "state" / "alert-puller.json"
        )
        sup.add("remote_alerts", puller.run)

        async def run_silence(shutdown: asyncio.Event) -> None:
            await watch_silent_sources(store, alerts, s.source_silence_seconds, shutdown)

        sup.add("silent_sources", run_silence)
        sla = SlaWatcher(db, spool_sink(alerts))

        async def run_sla(shutdown: asyncio.Event) -> None:
            sla.start()
            try:
                await shutdown.wait()
            finally:
                await asyncio.to_thread(sla.stop)

        sup.add("playbook_sla", run_sla)
        if s.hunt_rules_dirs:
            from detections.hunt import HuntScheduler
            from detections.sigma.loader import load_rules

            hunts = HuntScheduler(
                store,
                db,
                load_rules(s.hunt_rules_dirs).rules,
                interval=s.hunt_interval_seconds,
                lag=s.hunt_lag_seconds,
            )

            async def run_hunts(shutdown: asyncio.Event) -> None:
                hunts.start()
                try:
                    await shutdown.wait()
                finally:
                    await asyncio.to_thread(hunts.shutdown)

            sup.add("hunts", run_hunts)
        if s.compliance_catalogue is not None:
            from soc_api.compliance.evaluate import compliance_scheduler

            compliance_jobs = compliance_scheduler(db, store, s, self.catalog)

            async def run_compliance(shutdown: asyncio.Event) -> None:
                compliance_jobs.start()
                try:
                    await shutdown.wait()
                finally:
                    await asyncio.to_thread(compliance_jobs.shutdown)

            sup.add("compliance", run_compliance)
        else:
            log.warning("compliance off: no control catalogue (set compliance_catalogue)")
        app = create_app(
            db,
            store,
            embedded=self.embedded is not None,
            silence_seconds=s.source_silence_seconds,
            catalog=self.catalog,
        )
        app.state.playbook_engine = playbooks
        app.state.incident_service = service
        app.state.settings = s
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

        sup.add("api", run_api)
        sup.add("retention", self._retention_loop)
        if not s.inventory_file:  # a configured file wins; otherwise the database's inventory
            sup.add("inventory", self._inventory_loop)
        if self.embedded is not None:
            sup.add("embedded_cap", self._cap_loop)
        log.info(
            "socmon up %s",
            kv(api=f"http://{s.api_host}:{s.api_port}", store=store.url, data_dir=s.data_dir),
        )

    def _db_lookup(self) -> IpLookup | None:
        """The inventory of the database (imported, edited through the API), if it has one."""
        from inventory import IpLookup
        from inventory.store import load_from_db

        if self.db is None:
            return None
        with self.db.session() as session:
            inventory = load_from_db(session)
        return IpLookup(inventory) if inventory.assets or inventory.zones else None

    async def _inventory_loop(self, shutdown: asyncio.Event) -> None:
        """Enrichment follows the database's inventory: re-read when it changed (every 30 s)."""
        from inventory.store import fingerprint

        assert self.db is not None and self.enricher is not None
        seen: str | None = None
        while not shutdown.is_set():
            try:
                with self.db.session() as session:
                    now = fingerprint(session)
                if seen is not None and now != seen:
                    lookup = await asyncio.to_thread(self._db_lookup)
                    self.enricher.replace_lookup(lookup)
                    log.info("inventory reloaded for enrichment %s", kv(version=now))
                seen = now
            except SQLAlchemyError as e:
                log.warning("inventory check failed %s", kv(error=e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), timeout=30)

    async def _retention_loop(self, shutdown: asyncio.Event) -> None:
        """Delete events older than `retention_days` (by arrival), hourly; compliance checks
        the setting against each level's minimum (decision 0007)."""
        assert self.store is not None
        days = self.settings.retention_days
        while not shutdown.is_set():
            try:
                removed = await asyncio.to_thread(self.store.enforce_retention, days)
                if removed:
                    log.info("retention removed events %s", kv(count=removed, days=days))
            except StoreError as e:
                log.warning("retention enforcement failed %s", kv(error=e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shutdown.wait(), timeout=3600)

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
