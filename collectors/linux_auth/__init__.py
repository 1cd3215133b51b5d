"""Linux authentication logs (auth.log / secure) to ECS."""

from collectors.linux_auth.parse import parse

__all__ = ["parse"]
