"""nginx access and error logs to ECS."""

from collectors.nginx.parse import parse

__all__ = ["parse"]
