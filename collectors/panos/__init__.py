"""Palo Alto Networks PAN-OS firewall logs (syslog CSV) to ECS."""

from collectors.panos.parse import parse

__all__ = ["parse"]
