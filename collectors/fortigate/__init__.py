"""FortiGate firewall logs (syslog key=value) to ECS."""

from collectors.fortigate.parse import parse

__all__ = ["parse"]
