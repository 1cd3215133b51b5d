"""RFC 6587 framing of syslog over TCP and TLS: an incremental frame decoder. Pure, no I/O.

Two framings exist (RFC 6587 §3.4):

- octet counting: ``MSG-LEN SP SYSLOG-MSG``, where MSG-LEN is a decimal number without a
  leading zero;
- non-transparent framing: every message ends with a trailer, LF in RFC 6587; CRLF and NUL,
  which some devices send, are accepted too.

``framing="auto"`` decides once per connection from its first byte: a digit 1-9 means octet
counting, anything else non-transparent framing. A sender in newline framing whose first
message starts with a digit (no PRI header) is detected as octet counting, fails the length
check and falls back to newline framing with its bytes intact; configure ``newline`` for such
senders to avoid the ``bad_length`` report.

Nothing is dropped silently. Every anomaly still yields a frame, which carries one or more
``FramingIssue`` (a bounded ``code`` for metrics and a ``detail`` for logs):

- ``oversized``: a message longer than ``max_message_bytes`` is cut to that size and
  delivered; the rest of it is discarded while reading (the buffer never grows beyond the
  limit).
- ``bad_length``: an invalid octet-counting length prefix; the decoder falls back to newline
  framing for the rest of the connection and re-reads the bytes from that prefix on as
  newline-framed data, so they are delivered too. The issue is attached to the next frame.
- ``truncated``: the connection ended inside a frame; what was received is delivered.

Empty lines (a lone trailer, CRLF pairs, NUL padding) carry no message and are skipped, as
are LF/CR/NUL bytes between octet-counted frames (some senders append a newline).

The decoder's output does not depend on how the byte stream is split into ``feed`` calls.
"""

from __future__ import annotations

import re
from typing import Final, Literal, NamedTuple

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Frame",
    "FrameDecoder",
    "Framing",
    "FramingIssue",
    "IssueCode",
]

Framing = Literal["auto", "octet", "newline"]
IssueCode = Literal["oversized", "truncated", "bad_length"]

DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024
#: Longest accepted MSG-LEN (in digits); more digits are a garbage prefix.
_MAX_LENGTH_DIGITS: Final = 10
_NONZERO_DIGITS: Final = frozenset(b"123456789")
_SEPARATORS: Final = frozenset(b"\n\r\x00")
_CR: Final = 13
_ZERO: Final = 48
_TRAILER: Final = re.compile(rb"[\n\x00]")


class FramingIssue(NamedTuple):
    """Why a frame is not a clean, complete message."""

    code: IssueCode
    detail: str


class Frame(NamedTuple):
    """One decoded message (without its trailer or length prefix)."""

    data: bytes
    issues: tuple[FramingIssue, ...] = ()

    @property
    def reason(self) -> str | None:
        """The issues as one text, or None for a clean frame."""
        return "; ".join(i.detail for i in self.issues) if self.issues else None


class FrameDecoder:
    """Decodes one connection's byte stream into frames; feed it bytes as they arrive.

    Memory is bounded: at most ``max_message_bytes`` (+1) of a message plus the bytes of the
    current ``feed`` call are buffered. Never raises on any input.
    """

    def __init__(
        self, framing: Framing = "auto", max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        if framing not in ("auto", "octet", "newline"):
            raise ValueError(f"unknown framing {framing!r}")
        if max_message_bytes < 1:
            raise ValueError("max_message_bytes must be at least 1")
        self.framing: Framing = framing
        self.max_message_bytes = max_message_bytes
        self._mode: Literal["octet", "newline"] | None = None if framing == "auto" else framing
        self._closed = False
        self._pending: list[FramingIssue] = []  # attached to the next frame
        self._buf = bytearray()  # newline framing: the incomplete line
        self._head = b""  # octet counting: an incomplete length prefix
        # octet counting: -1 while reading a length prefix, else body bytes still to read
        self._need = -1
        self._body = bytearray()
        self._body_issues: tuple[FramingIssue, ...] = ()
        self._declared = 0
        self._skip = 0  # bytes of an oversized octet-counted message still to discard
        # newline framing: the kept head of an oversized message whose trailer is not seen yet
        self._cut: bytes | None = None
        self._cut_size = 0
        self._cut_cr = False

    @property
    def mode(self) -> Literal["octet", "newline"] | None:
        """The framing in use (None until the first byte when auto-detecting)."""
        return self._mode

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete message."""
        cut = len(self._cut) if self._cut else 0
        return len(self._head) + len(self._buf) + len(self._body) + cut

    def feed(self, data: bytes) -> list[Frame]:
        """The frames completed by ``data``."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        out: list[Frame] = []
        if not data:
            return out
        if self._mode is None:
            self._mode = "octet" if data[0] in _NONZERO_DIGITS else "newline"
        if self._mode == "octet":
            self._feed_octet(data, out)
        else:
            self._feed_newline(data, out)
        return out

    def close(self, why: str = "connection closed") -> list[Frame]:
        """End of stream: an incomplete frame is delivered with a ``truncated`` issue."""
        if self._closed:
            return []
        self._closed = True
        out: list[Frame] = []
        if self._mode == "octet":
            if self._need >= 0:
                got = len(self._body)
                truncated = FramingIssue(
                    "truncated",
                    f"truncated frame: {why} after {got} of {self._declared} bytes",
                )
                self._emit(bytes(self._body), out, (*self._body_issues, truncated))
            elif self._head:  # inside a length prefix (digits only, else it was garbage)
                truncated = FramingIssue(
                    "truncated", f"truncated frame: {why} inside an octet-counting length prefix"
                )
                self._emit_final(self._head, out, truncated)
        elif self._cut is not None:
            truncated = FramingIssue("truncated", f"truncated frame: {why} before the trailer")
            self._emit(self._cut, out, (self._oversized(self._cut_size), truncated))
        elif self._buf:
            truncated = FramingIssue("truncated", f"truncated frame: {why} before the trailer")
            self._emit_final(bytes(self._buf), out, truncated)
        self._buf = bytearray()
        self._head = b""
        self._body = bytearray()
        self._cut = None
        return out

    # ------------------------------------------------------------------ internals

    def _oversized(self, size: int) -> FramingIssue:
        return FramingIssue("oversized", f"message of {size} bytes cut to {self.max_message_bytes}")

    def _emit_final(self, data: bytes, out: list[Frame], truncated: FramingIssue) -> None:
        """The incomplete last frame (cut to the maximum size when longer)."""
        if len(data) > self.max_message_bytes:
            self._emit(data[: self.max_message_bytes], out, (self._oversized(len(data)), truncated))
        else:
            self._emit(data, out, (truncated,))

    def _emit(self, data: bytes, out: list[Frame], issues: tuple[FramingIssue, ...] = ()) -> None:
        if self._pending:
            issues = (*self._pending, *issues)
            self._pending.clear()
        out.append(Frame(data, issues))

    def _feed_octet(self, data: bytes, out: list[Frame]) -> None:
        buf = self._head + data if self._head else data
        self._head = b""
        n = len(buf)
        pos = 0
        max_bytes = self.max_message_bytes
        while pos < n:
            need = self._need
            if need >= 0:  # inside a message body
                end = pos + need
                if end > n:
                    self._body += buf[pos:]
                    self._need = end - n
                    return
                if self._body:
                    self._body += buf[pos:end]
                    body = bytes(self._body)
                    self._body = bytearray()
                else:
                    body = buf[pos:end]
                pos = end
                self._emit(body, out, self._body_issues)
                self._body_issues = ()
                self._need = -1
                continue
            if self._skip:  # the rest of an oversized message
                k = min(self._skip, n - pos)
                pos += k
                self._skip -= k
                continue
            first = buf[pos]
            if first in _SEPARATORS:
                pos += 1
                continue
            sp = buf.find(b" ", pos, pos + _MAX_LENGTH_DIGITS + 1)
            if sp > pos and first != _ZERO:
                prefix = buf[pos:sp]
                if prefix.isdigit():  # the common case: a valid MSG-LEN
                    length = int(prefix)
                    pos = sp + 1
                    self._declared = length
                    if length > max_bytes:
                        self._need = max_bytes
                        self._skip = length - max_bytes
                        self._body_issues = (self._oversized(length),)
                    else:
                        self._need = length
                    continue
            bad = self._bad_prefix(buf[pos : sp if sp >= 0 else pos + _MAX_LENGTH_DIGITS + 1])
            if bad is None:  # digits so far: wait for the rest of the prefix
                self._head = buf[pos:]
                return
            self._mode = "newline"
            self._pending.append(
                FramingIssue(
                    "bad_length",
                    f"invalid octet-counting length prefix {bad!r}; "
                    "newline framing for the rest of the connection",
                )
            )
            self._feed_newline(buf[pos:], out)
            return

    @staticmethod
    def _bad_prefix(prefix: bytes) -> bytes | None:
        """The offending bytes when ``prefix`` cannot start a valid MSG-LEN, else None."""
        if not prefix:  # a space where the length should be
            return b" "
        if prefix[0] not in _NONZERO_DIGITS:
            return prefix[:1]
        for i, b in enumerate(prefix):
            if not 48 <= b <= 57:  # not an ASCII digit
                return prefix[: i + 1]
        if len(prefix) > _MAX_LENGTH_DIGITS:
            return prefix
        return None

    def _feed_newline(self, data: bytes, out: list[Frame]) -> None:
        if self._cut is not None:  # discarding the rest of an oversized message
            m = _TRAILER.search(data)
            if m is None:
                self._cut_size += len(data)
                self._cut_cr = data[-1] == _CR
                return
            i = m.start()
            self._cut_size += i
            if i:
                self._cut_cr = data[i - 1] == _CR
            size = self._cut_size - (1 if self._cut_cr else 0)
            cut = self._cut
            self._cut = None
            self._emit(cut, out, (self._oversized(size),))
            data = data[i + 1 :]
            if not data:
                return
        parts = _TRAILER.split(data) if b"\x00" in data else data.split(b"\n")
        rest = parts.pop()
        if parts:
            if self._buf:
                parts[0] = bytes(self._buf) + parts[0]
                self._buf = bytearray()
            for part in parts:
                self._line(part, out)
        buf = self._buf
        buf += rest
        limit = self.max_message_bytes + 1  # +1: a CR before an LF still to come
        if len(buf) > limit:
            self._cut = bytes(buf[: self.max_message_bytes])
            self._cut_size = len(buf)
            self._cut_cr = buf[-1] == _CR
            self._buf = bytearray()

    def _line(self, line: bytes, out: list[Frame]) -> None:
        if line and line[-1] == _CR:
            line = line[:-1]
        if not line:
            return
        max_bytes = self.max_message_bytes
        if len(line) > max_bytes:
            self._emit(line[:max_bytes], out, (self._oversized(len(line)),))
        else:
            self._emit(line, out)
