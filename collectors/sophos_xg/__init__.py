"""Sophos XG firewall logs (syslog key=value) to ECS."""

from collectors.sophos_xg.parse import parse

__all__ = ["parse"]
