"""pfSense syslog (filterlog CSV, OpenVPN) to ECS."""

from collectors.pfsense.parse import DATASET, parse

__all__ = ["DATASET", "parse"]
