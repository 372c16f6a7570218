"""CSV for every export (genealogy, recall, order components, audit trail): one writer;
and the ``Content-Disposition`` of every download.

Exported cells carry outside data (order numbers, customers, lot codes, scanned text,
notes). A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula, and some drop a leading tab, CR or LF first; such text cells get a leading
``'`` (CSV / formula injection, OWASP), so the spreadsheet shows the text and runs
nothing. Numbers (``int`` / ``float`` values) stay as they are: they are never formulas.
Rows end in CRLF (RFC 4180); a cell with a comma, quote or line break is quoted.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

from server.models.types import rfc3339

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
MAX_NAME = 150  # characters of a download's file name


def neutralise(text: str) -> str:
    """``text`` as a spreadsheet shows it without running it."""
    return "'" + text if text.startswith(FORMULA_START) else text


def cell(value: Any) -> str:
    """One CSV cell: empty for None, RFC 3339 for a time, a number as written, any
    other value as its text, neutralised."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return rfc3339(value) or ""
    if isinstance(value, int | float):  # bool included: True / False
        return str(value)
    return neutralise(str(value))


def to_csv(columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """A header row, then one line per row, every cell through ``cell``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([cell(c) for c in columns])
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` value for a download named ``filename`` (RFC 6266).

    The name often holds outside data (a serial, a lot code, an order number): control
    characters (CR/LF would split the header) and path separators become ``_``; the
    ``filename=`` fallback is plain ASCII letters, digits, ``. _ -`` (no quote or
    backslash can end it early), and ``filename*=UTF-8''...`` (RFC 5987) carries the
    name with its accents, percent-encoded."""
    name = "".join(
        "_" if not ch.isprintable() or ch in '/\\"' else ch
        for ch in unicodedata.normalize("NFC", filename)
    ).strip(" .")
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        keep = ext[:16] if dot else ""
        name = (stem if dot else name)[: MAX_NAME - len(keep) - 1] + (dot + keep)
    name = name or "download"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._") or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
