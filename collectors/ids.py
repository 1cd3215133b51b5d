"""Deterministic event ids: a hash of the event's identity, used as the document `_id`.

Identity = source, position in that source (file fingerprint + offset, or the spool
instance and sequence for a socket) and the raw bytes. A replay of the same spool record
gets the same id (the store answers 409: already stored), while two identical lines at two
positions remain two events.
"""

from __future__ import annotations

import hashlib


def event_id(source: str, position: str, raw: bytes) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(source.encode())
    h.update(b"\x00")
    h.update(position.encode())
    h.update(b"\x00")
    h.update(raw)
    return h.hexdigest()
