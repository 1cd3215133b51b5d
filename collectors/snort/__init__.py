"""Snort IDS alerts (alert_fast and syslog alert formats) to ECS."""

from collectors.snort.parse import parse

__all__ = ["parse"]
