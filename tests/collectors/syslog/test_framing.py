"""The RFC 6587 frame decoder: octet counting, newline framing, resynchronisation, limits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.syslog.framing import Frame, FrameDecoder, Framing


def decode(data: bytes, framing: Framing = "auto", max_bytes: int = 64 * 1024) -> list[Frame]:
    d = FrameDecoder(framing, max_bytes)
    return d.feed(data) + d.close()


def decode_split(
    data: bytes, cuts: list[int], framing: Framing = "auto", max_bytes: int = 64 * 1024
) -> list[Frame]:
    d = FrameDecoder(framing, max_bytes)
    out: list[Frame] = []
    start = 0
    for cut in sorted(cuts):
        out += d.feed(data[start:cut])
        start = max(start, cut)
    out += d.feed(data[start:])
    return out + d.close()


def datas(frames: list[Frame]) -> list[bytes]:
    return [f.data for f in frames]


def codes(frame: Frame) -> list[str]:
    return [i.code for i in frame.issues]


def test_newline_framing_with_lf_crlf_and_nul_trailers() -> None:
    frames = decode(b"<13>one\n<13>two\r\n<13>three\x00<13>four\n")
    assert datas(frames) == [b"<13>one", b"<13>two", b"<13>three", b"<13>four"]
    assert all(f.issues == () and f.reason is None for f in frames)


def test_empty_lines_are_not_messages() -> None:
    assert datas(decode(b"\n\r\n<13>a\n\x00\x00<13>b\n\n")) == [b"<13>a", b"<13>b"]


def test_octet_counting() -> None:
    msgs = [b"<13>first", b"<14>second with\nnewline", b"<15>nul\x00inside"]
    stream = b"".join(b"%d %s" % (len(m), m) for m in msgs)
    d = FrameDecoder()
    assert datas(d.feed(stream) + d.close()) == msgs
    assert d.mode == "octet"


def test_octet_counting_tolerates_newlines_between_frames() -> None:
    assert datas(decode(b"5 <13>a\n5 <13>b\r\n", "octet")) == [b"<13>a", b"<13>b"]


def test_auto_detects_per_decoder_from_the_first_byte() -> None:
    assert FrameDecoder().mode is None
    octet, newline = FrameDecoder(), FrameDecoder()
    octet.feed(b"3")
    newline.feed(b"<")
    assert (octet.mode, newline.mode) == ("octet", "newline")


def test_explicit_newline_framing_does_not_read_a_length() -> None:
    assert datas(decode(b"5 abcdefg\n", "newline")) == [b"5 abcdefg"]


def test_oversized_newline_message_is_cut_and_kept() -> None:
    big = b"A" * 70_000
    frames = decode(big + b"\n<13>next\n")
    assert datas(frames) == [big[: 64 * 1024], b"<13>next"]
    assert codes(frames[0]) == ["oversized"]
    assert frames[0].reason == "message of 70000 bytes cut to 65536"
    assert frames[1].issues == ()


def test_oversized_newline_message_in_pieces_keeps_memory_bounded() -> None:
    d = FrameDecoder("newline", 1000)
    out: list[Frame] = []
    for _ in range(100):
        out += d.feed(b"x" * 999)
        assert d.buffered <= 1001
    out += d.feed(b"\r\n<13>ok\n")
    assert datas(out) == [b"x" * 1000, b"<13>ok"]
    assert out[0].reason == "message of 99900 bytes cut to 1000"


def test_message_of_exactly_max_size_is_not_cut() -> None:
    for tail in (b"\n", b"\r\n"):
        frames = decode_split(b"y" * 100 + tail, [50, 100, 101], "newline", 100)
        assert frames == [Frame(b"y" * 100)]


def test_oversized_octet_counted_message_is_cut_and_the_rest_skipped() -> None:
    frames = decode(b"10 0123456789" + b"3 abc", "octet", 4)
    assert datas(frames) == [b"0123", b"abc"]
    assert frames[0].reason == "message of 10 bytes cut to 4"


@pytest.mark.parametrize(
    ("stream", "bad"),
    [
        (b"12x<13>hello\n<13>world\n", b"12x"),
        (b"05 <13>hello\n<13>world\n", b"0"),
        (b"99999999999 <13>hello\n<13>world\n", b"99999999999"),
        (b" 5 <13>hello\n<13>world\n", b" "),
    ],
)
def test_garbage_length_prefix_falls_back_to_newline_framing(stream: bytes, bad: bytes) -> None:
    frames = decode(stream, "octet")
    assert datas(frames) == [stream.split(b"\n")[0], b"<13>world"]
    assert codes(frames[0]) == ["bad_length"]
    assert repr(bad) in (frames[0].reason or "")
    assert frames[1].issues == ()


def test_garbage_after_valid_octet_frames_resynchronises() -> None:
    d = FrameDecoder()
    frames = d.feed(b"5 <13>a5 <13>bhello\n<13>c\n")
    assert datas(frames) == [b"<13>a", b"<13>b", b"hello", b"<13>c"]
    assert codes(frames[2]) == ["bad_length"] and d.mode == "newline"


def test_truncated_frames_at_close_are_delivered() -> None:
    newline = decode(b"<13>complete\n<13>partial")
    assert datas(newline) == [b"<13>complete", b"<13>partial"]
    assert codes(newline[1]) == ["truncated"]
    assert "truncated frame" in (newline[1].reason or "")

    octet = decode(b"50 <13>only part")
    assert datas(octet) == [b"<13>only part"]
    assert octet[0].reason == "truncated frame: connection closed after 13 of 50 bytes"

    prefix = decode(b"5 <13>a12")
    assert datas(prefix) == [b"<13>a", b"12"] and codes(prefix[1]) == ["truncated"]

    d = FrameDecoder("newline", 10)
    d.feed(b"z" * 50)
    cut = d.close("idle")
    assert datas(cut) == [b"z" * 10] and codes(cut[0]) == ["oversized", "truncated"]
    assert d.close() == []


def test_binary_passes_through() -> None:
    raw = bytes(range(1, 256)).replace(b"\n", b"")
    assert datas(decode(raw + b"\n", "newline")) == [raw]
    binary = bytes(range(256))
    assert datas(decode(b"256 " + binary, "octet")) == [binary]


def test_feed_after_close_is_a_bug() -> None:
    d = FrameDecoder()
    d.close()
    with pytest.raises(RuntimeError):
        d.feed(b"x")


# ---------------------------------------------------------------------- properties

_streams = st.one_of(
    st.binary(max_size=400),
    # Streams built from likely tokens hit the interesting states more often.
    st.lists(
        st.sampled_from(
            [b"5 ", b"12 ", b"0", b"9", b"x", b" ", b"\n", b"\r", b"\r\n", b"\x00", b"<13>msg"]
        )
        | st.binary(max_size=12),
        max_size=40,
    ).map(b"".join),
)


@settings(max_examples=200, deadline=None)
@given(
    stream=_streams,
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    framing=st.sampled_from(["auto", "octet", "newline"]),
    max_bytes=st.sampled_from([1, 3, 8, 64 * 1024]),
)
def test_any_split_decodes_like_one_piece(
    stream: bytes, cuts: list[int], framing: Framing, max_bytes: int
) -> None:
    whole = decode(stream, framing, max_bytes)
    assert decode_split(stream, cuts, framing, max_bytes) == whole
    byte_by_byte = decode_split(stream, list(range(len(stream))), framing, max_bytes)
    assert byte_by_byte == whole
    assert all(len(f.data) <= max_bytes for f in whole)


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(st.binary(min_size=1, max_size=60), max_size=10),
    cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=12),
)
def test_octet_counted_messages_round_trip(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(b"%d %s" % (len(m), m) for m in messages)
    frames = decode_split(stream, cuts, "octet")
    assert frames == [Frame(m) for m in messages]


@settings(max_examples=200, deadline=None)
@given(
    messages=st.lists(
        st.binary(min_size=1, max_size=60).filter(
            lambda m: b"\n" not in m and b"\x00" not in m and not m.endswith(b"\r")
        ),
        max_size=10,
    ),
    trailer=st.sampled_from([b"\n", b"\r\n", b"\x00"]),
    cuts=st.lists(st.integers(min_value=0, max_value=800), max_size=12),
)
def test_newline_framed_messages_round_trip(
    messages: list[bytes], trailer: bytes, cuts: list[int]
) -> None:
    stream = b"".join(m + trailer for m in messages)
    assert decode_split(stream, cuts, "newline") == [Frame(m) for m in messages]
