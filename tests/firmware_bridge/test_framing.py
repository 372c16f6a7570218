from __future__ import annotations

import pytest

from firmware_bridge.framing import Frame, LineFramer, check_line


def feed_all(framer: LineFramer, *chunks: bytes) -> list[Frame]:
    return [frame for chunk in chunks for frame in framer.feed(chunk)]


@pytest.mark.parametrize(
    "chunks",
    [
        (b"A1\rB2\nC3\r\n",),
        (b"A1\r", b"B2\n", b"C3\r", b"\n"),  # CRLF split across reads
        (b"A", b"1\rB", b"2", b"\nC3\r\n"),  # partial reads
        (b"\r\nA1\r\n\r\nB2\n\nC3\n",),  # empty lines are skipped
    ],
)
def test_cr_lf_crlf_and_partial_reads(chunks: tuple[bytes, ...]) -> None:
    assert [f.data for f in feed_all(LineFramer(), *chunks)] == [b"A1", b"B2", b"C3"]


def test_partial_line_waits_for_its_terminator() -> None:
    framer = LineFramer()
    assert framer.feed(b"]d2010") == []
    assert framer.feed(b"\x1d21X\r\n") == [Frame(b"]d2010\x1d21X")]


def test_exact_terminator_keeps_cr_and_lf_inside() -> None:
    framer = LineFramer(b"\x03")
    assert feed_all(framer, b"a\rb", b"\x03c\nd\x03") == [Frame(b"a\rb"), Frame(b"c\nd")]
    framer = LineFramer(b"\r\n")
    assert feed_all(framer, b"a\rb\r", b"\nc\nd\r\n") == [Frame(b"a\rb"), Frame(b"c\nd")]


def test_long_line_is_reported_once_then_framing_recovers() -> None:
    framer = LineFramer(max_line=16)
    frames = feed_all(framer, b"x" * 10, b"y" * 10, b"z" * 30, b"\rOK\r")
    assert frames == [Frame(b"x" * 10 + b"y" * 6, "line longer than 16 bytes"), Frame(b"OK")]


def test_long_line_with_exact_terminator() -> None:
    framer = LineFramer(b"\r\n", max_line=8)
    frames = feed_all(framer, b"0123456789abcdef", b"\r", b"\nOK\r\n")
    assert frames == [Frame(b"01234567", "line longer than 8 bytes"), Frame(b"OK")]


@pytest.mark.parametrize(
    ("data", "text", "error"),
    [
        (b"]d2010\x1d21X", "]d2010\x1d21X", None),
        ("Grüße".encode(), "Grüße", None),
        (b"AB\xffC", "AB\\xffC", "invalid UTF-8 at byte 2"),
        (b"A\x00\x01B", "A\\x00\\x01B", "binary noise: 2 control byte(s), first 0x00"),
    ],
)
def test_check_line(data: bytes, text: str, error: str | None) -> None:
    assert check_line(data) == (text, error)
