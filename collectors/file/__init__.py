"""Tailing log files by glob, with file identity by fingerprint and durable offsets."""

from collectors.file.collector import FileCollector, FileOptions

__all__ = ["FileCollector", "FileOptions"]
