"""Check Point firewall logs (syslog `key:"value"` format) to ECS."""

from collectors.checkpoint.parse import parse

__all__ = ["parse"]
