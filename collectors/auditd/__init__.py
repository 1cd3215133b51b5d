"""Linux audit logs (audit.log records) to ECS."""

from collectors.auditd.parse import parse

__all__ = ["parse"]
