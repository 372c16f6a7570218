"""Incremental line framing for serial byte streams.

Scanners end a read with CR, LF or CRLF depending on how they are set up, and a
serial read can stop anywhere: in the middle of a line or between the CR and LF of
one terminator. The framer keeps the partial line between calls and never lets one
line grow past ``max_line`` bytes (issue 5: lines over 4 KB are reported, not kept).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE = 4096
CONTROL_OK = frozenset(b"\x04\x09\x1c\x1d\x1e")  # EOT, TAB, FS, GS, RS: ISO 15434 / GS1


@dataclass(frozen=True)
class Frame:
    """One line as read, without its terminator; ``error`` says why it is unusable."""

    data: bytes
    error: str | None = None


class LineFramer:
    """Split a byte stream into lines.

    ``terminator=None`` accepts CR, LF and CRLF (a CRLF is one terminator, even when
    the CR and the LF arrive in different reads). Any other value is an exact byte
    sequence, such as ``b"\\x03"`` for a scanner that ends reads with ETX. Empty lines
    are skipped.
    """

    def __init__(self, terminator: bytes | None = None, max_line: int = MAX_LINE) -> None:
        if terminator == b"":
            raise ValueError("terminator must not be empty")
        self.terminator = terminator
        self.max_line = max_line
        self._buf = bytearray()
        self._after_cr = False
        self._overflow = False  # dropping the rest of a line that was too long

    def feed(self, chunk: bytes) -> list[Frame]:
        if self.terminator is None:
            return self._feed_auto(chunk)
        return self._feed_exact(chunk, self.terminator)

    def _feed_auto(self, chunk: bytes) -> list[Frame]:
        frames: list[Frame] = []
        for byte in chunk:
            if byte == 0x0A and self._after_cr:
                self._after_cr = False
                continue
            self._after_cr = byte == 0x0D
            if byte in (0x0A, 0x0D):
                self._end_line(frames)
            else:
                self._add(bytes((byte,)), frames)
        return frames

    def _feed_exact(self, chunk: bytes, term: bytes) -> list[Frame]:
        frames: list[Frame] = []
        self._buf += chunk
        while (at := self._buf.find(term)) >= 0:
            line = bytes(self._buf[:at])
            del self._buf[: at + len(term)]
            if self._overflow:
                self._overflow = False
            elif len(line) > self.max_line:
                frames.append(self._too_long(line))
            elif line:
                frames.append(Frame(line))
        # Keep a possible partial terminator at the end of the buffer.
        keep = self.max_line + len(term) - 1
        if len(self._buf) > keep:
            if not self._overflow:
                frames.append(self._too_long(bytes(self._buf)))
                self._overflow = True
            del self._buf[: len(self._buf) - (len(term) - 1)]
        return frames

    def _add(self, data: bytes, frames: list[Frame]) -> None:
        if self._overflow:
            return
        self._buf += data
        if len(self._buf) > self.max_line:
            frames.append(self._too_long(bytes(self._buf)))
            self._buf.clear()
            self._overflow = True

    def _end_line(self, frames: list[Frame]) -> None:
        if self._buf and not self._overflow:
            frames.append(Frame(bytes(self._buf)))
        self._buf.clear()
        self._overflow = False

    def _too_long(self, data: bytes) -> Frame:
        return Frame(data[: self.max_line], f"line longer than {self.max_line} bytes")


def check_line(data: bytes, limit: int = MAX_LINE) -> tuple[str, str | None]:
    """Decode one framed line: ``(text, error)``.

    The text is exact when there is no error. Otherwise it is a best-effort
    rendering (undecodable and control bytes as ``\\xNN``, at most ``limit``
    characters) so the server and the log can show it.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return render(data, limit), f"invalid UTF-8 at byte {exc.start}"
    noise = [b for b in data if (b < 0x20 and b not in CONTROL_OK) or b == 0x7F]
    if noise:
        reason = f"binary noise: {len(noise)} control byte(s), first 0x{noise[0]:02x}"
        return render(data, limit), reason
    return text, None


def render(data: bytes, limit: int = MAX_LINE) -> str:
    """Printable text for bytes that are not a valid line, for logs and error events."""
    text = data.decode("utf-8", "backslashreplace")
    out = "".join(
        ch if ch.isprintable() or ord(ch) in CONTROL_OK else f"\\x{ord(ch):02x}" for ch in text
    )
    return out[:limit]
