"""Suricata EVE JSON records to ECS."""

from collectors.suricata.parse import parse

__all__ = ["parse"]
