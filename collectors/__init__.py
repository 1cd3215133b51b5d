"""Sources, vendor parsers to ECS, enrichment, event ids, shipping, source health."""

from collectors.pipeline import Pipeline, RawMessage, parse_message
from collectors.ship import Shipper, events_target
from collectors.syslog.collector import SyslogUdpCollector

__all__ = [
    "Pipeline",
    "RawMessage",
    "Shipper",
    "SyslogUdpCollector",
    "events_target",
    "parse_message",
]
