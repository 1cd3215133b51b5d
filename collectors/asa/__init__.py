"""Cisco ASA firewall logs (syslog `%ASA-n-NNNNNN`) to ECS."""

from collectors.asa.parse import parse

__all__ = ["parse"]
