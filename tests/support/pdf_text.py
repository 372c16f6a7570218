"""The text an fpdf2 PDF draws, for tests (no PDF library in the project).

Handles what fpdf2 writes: classic objects, Flate streams, core fonts (one byte per
character) and embedded TrueType subsets (Identity-H, two-byte glyph ids mapped back
through each font's ToUnicode CMap). Not a general PDF parser.
"""

from __future__ import annotations

import re
import zlib

_OBJ = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
_ESCAPES = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("("): b"(",
    ord(")"): b")",
    ord("\\"): b"\\",
}


def _objects(pdf: bytes) -> dict[int, bytes]:
    return {int(m.group(1)): m.group(2) for m in _OBJ.finditer(pdf)}


def _stream(body: bytes) -> bytes:
    match = _STREAM.search(body)
    if match is None:
        return b""
    data = match.group(1)
    if b"/FlateDecode" not in body:
        return data
    try:
        return zlib.decompress(data)
    except zlib.error:
        # The data's own last byte was CR, taken by the pattern for a CRLF: about one
        # stream in 256 (fpdf2 writes a bare LF before endstream).
        return zlib.decompress(data + b"\r")


def _cmap(data: bytes) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            mapping[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, dst in re.findall(
            rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block
        ):
            start = int(dst, 16)
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                mapping[code] = chr(start + i)
    return mapping


def _strings(content: bytes) -> list[tuple[bytes, bytes]]:
    """(font resource name, raw string) for each literal string shown."""
    out: list[tuple[bytes, bytes]] = []
    font, i = b"", 0
    while i < len(content):
        if content[i : i + 1] == b"/":
            match = re.match(rb"/(\w+)\s+[\d.]+\s+Tf", content[i:])
            if match:
                font = match.group(1)
                i += match.end()
                continue
        if content[i : i + 1] == b"(":
            i += 1
            raw, depth = bytearray(), 1
            while i < len(content):
                ch = content[i]
                if ch == 0x5C:  # backslash
                    nxt = content[i + 1]
                    octal = re.match(rb"[0-7]{1,3}", content[i + 1 : i + 4])
                    if octal:
                        raw.append(int(octal.group(0), 8) & 0xFF)
                        i += 1 + len(octal.group(0))
                        continue
                    raw += _ESCAPES.get(nxt, bytes([nxt]))
                    i += 2
                    continue
                if ch == 0x28:
                    depth += 1
                elif ch == 0x29:
                    depth -= 1
                    if depth == 0:
                        break
                raw.append(ch)
                i += 1
            out.append((font, bytes(raw)))
        i += 1
    return out


def pdf_text(pdf: bytes) -> str:
    objects = _objects(pdf)
    fonts: dict[bytes, dict[int, str] | None] = {}
    for body in objects.values():
        for name, ref in re.findall(rb"/(F\w*)\s+(\d+) 0 R", body):
            font = objects.get(int(ref), b"")
            to_unicode = re.search(rb"/ToUnicode\s+(\d+) 0 R", font)
            if b"/Type /Font" in font or b"/Type/Font" in font:
                fonts[name] = (
                    _cmap(_stream(objects.get(int(to_unicode.group(1)), b"")))
                    if to_unicode
                    else None
                )
    text: list[str] = []
    for body in objects.values():
        if b"/Type" in body.split(b"stream", 1)[0]:
            continue  # not a page content stream
        content = _stream(body)
        for font, raw in _strings(content):
            cmap = fonts.get(font)
            if cmap:
                text.append(
                    "".join(
                        cmap.get(int.from_bytes(raw[j : j + 2], "big"), "\ufffd")
                        for j in range(0, len(raw) - 1, 2)
                    )
                )
            else:
                text.append(raw.decode("latin-1"))
        text.append("\n")
    return "".join(text)
