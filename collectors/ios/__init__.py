"""Cisco IOS router logs (syslog `%FACILITY-SEV-MNEMONIC`) to ECS."""

from collectors.ios.parse import parse

__all__ = ["parse"]
