"""File identity and line cutting for the file collector. Pure functions, no I/O.

Identity
--------
A file is identified by the *fingerprint* of its first `FINGERPRINT_BYTES` bytes (a blake2b
hash), not by its inode: an inode is reused after a file is deleted, and a copy
(``copytruncate``) has a new inode but the same content. A file shorter than that is
identified by device + inode, checked against the hash of the bytes it had (a *head hash* of
fewer bytes), until it has grown to `FINGERPRINT_BYTES`; from then on it also has a content
fingerprint. Short heads are not matched by content alone - a head like "ok\\n" says too
little to skip data on its strength - with one exception: content truncated moments ago
(copytruncate) is matched by the head it had, to find its copy.

Every tracked file also has a *key*, fixed when the file is first seen and stored with its
offset: the fingerprint, or for a file first seen shorter than `FINGERPRINT_BYTES` a hash of
device, inode and its first bytes. Event positions are ``f"{key}:{offset}"``, so a line read
twice (after a crash between spooling and saving the offset) gets the same event id.

Line cutting
------------
Lines end with LF. A line longer than the limit is cut into pieces; a cut never splits a
UTF-8 sequence that is whole within the piece, and depends only on the piece's own bytes, so
a re-read cuts at the same offsets (same positions, same ids). Runs of NUL bytes at a line
start (the hole a writer without ``O_APPEND`` leaves after a ``copytruncate``) are skipped
and counted. Empty lines (``""`` or ``"\\r"``) carry nothing and are counted, not delivered.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Final

#: Bytes of a file's beginning hashed into its fingerprint.
FINGERPRINT_BYTES: Final = 1024

_NULS: Final = re.compile(rb"\x00+")


def head_hash(data: bytes) -> str:
    """Hash of a file's first bytes (its fingerprint when `len(data)` is the full length)."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def short_key(head: bytes, dev: int, ino: int) -> str:
    """Key of a file first seen shorter than the fingerprint length: device, inode, head."""
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{dev}:{ino}:".encode())
    h.update(head)
    return "s" + h.hexdigest()


def unique_key(base: str, dev: int, ino: int, used: set[str] | frozenset[str]) -> str:
    """`base`, or `base` with a device/inode suffix when another file already has it.

    Two different files with the same first bytes (a long identical header) have the same
    fingerprint; their keys must still differ, or lines at the same offsets would get the
    same event ids and one would be taken for a replay of the other.
    """
    if base not in used:
        return base
    key = f"{base}~{dev:x}.{ino:x}"
    n = 1
    while key in used:
        n += 1
        key = f"{base}~{dev:x}.{ino:x}.{n}"
    return key


def cut_point(data: bytes, start: int, max_bytes: int) -> int:
    """End of a piece of at most `max_bytes` bytes from `start` that ends on a UTF-8 boundary.

    Only bytes inside the piece are looked at (so the cut does not depend on what follows):
    an incomplete multi-byte sequence at its end moves to the next piece.
    """
    end = start + max_bytes
    for back in range(1, 5):
        i = end - back
        if i <= start:
            break
        b = data[i]
        if b & 0xC0 == 0x80:  # continuation byte: look further back for the lead byte
            continue
        if b >= 0xC0:
            need = 2 if b < 0xE0 else 3 if b < 0xF0 else 4
            if back < need:
                return i
        break
    return end


#: A line start, its bytes (without the LF), the offset after it, and notes for the event.
Line = tuple[int, bytes, int, tuple[str, ...]]


def _notes(max_bytes: int) -> tuple[str, str, str]:
    return (
        f"line longer than {max_bytes} bytes: cut here, continued in the next event",
        f"continues the previous event (a line longer than {max_bytes} bytes)",
        "no line end: the file was closed before the line was completed",
    )


@dataclass
class Lines:
    """What `split_lines` found in a buffer."""

    lines: list[Line] = field(default_factory=list)
    consumed: int = 0  # bytes of the buffer fully accounted for (lines, blanks, NULs)
    blank: int = 0  # empty lines not delivered
    nul_bytes: int = 0  # NUL bytes skipped at line starts
    after_cut: bool = False  # the buffer ends inside a line whose first piece was delivered


def split_lines(
    data: bytes,
    base: int,
    max_bytes: int,
    *,
    final: bool = False,
    after_cut: bool = False,
) -> Lines:
    """Cut `data` (which starts at file offset `base`) into complete lines.

    Bytes after the last LF are left unconsumed (a partial line) unless they reach
    `max_bytes` (then they are delivered in pieces) or `final` is true (the file is gone for
    good: the partial line is delivered as it is). Pieces and unterminated lines carry notes
    (`RawMessage.notes`); `after_cut` says that `data` starts inside a line already cut (the
    previous call's `Lines.after_cut`). Notes do not change positions or bytes.
    """
    cut_note, continued, unterminated = _notes(max_bytes)
    out = Lines()
    lines = out.lines
    pos = 0
    n = len(data)
    find = data.find
    cont = after_cut
    while pos < n:
        if data[pos] == 0 and not cont:
            m = _NULS.match(data, pos)
            assert m is not None
            out.nul_bytes += m.end() - pos
            pos = m.end()
            continue
        nl = find(b"\n", pos, pos + max_bytes + 1)
        if nl < 0:
            if n - pos >= max_bytes:
                cut = cut_point(data, pos, max_bytes)
                notes = (continued, cut_note) if cont else (cut_note,)
                lines.append((base + pos, data[pos:cut], base + cut, notes))
                pos = cut
                cont = True
                continue
            if final:
                notes = (continued, unterminated) if cont else (unterminated,)
                lines.append((base + pos, data[pos:], base + n, notes))
                pos = n
                cont = False
            break
        if nl == pos or (nl == pos + 1 and data[pos] == 0x0D):
            if not cont:  # after a cut this is only the end of the long line
                out.blank += 1
        else:
            lines.append((base + pos, data[pos:nl], base + nl + 1, (continued,) if cont else ()))
        pos = nl + 1
        cont = False
    out.consumed = pos
    out.after_cut = cont
    return out
