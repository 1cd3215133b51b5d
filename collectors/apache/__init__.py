"""Apache HTTP Server access and error logs to ECS."""

from collectors.apache.parse import parse

__all__ = ["parse"]
