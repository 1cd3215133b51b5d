"""Juniper SRX (Junos structured syslog) to ECS."""

from collectors.srx.parse import DATASET, parse

__all__ = ["DATASET", "parse"]
