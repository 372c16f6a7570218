"""Which stations' events one ``taktline ingest`` takes: all, some lines, or a partition.

An ingest that owns a partition subscribes only to its lines' topics,
``{prefix}/{site}/{line}/+/evt/#``, with its own persistent session (its client id):
each station's events go to one process, in the broker's order, and no shared
subscription is needed. The unit is the line, so a station added to an owned line is
covered at once (the filter's station level is ``+``).

- ``--lines L1,L2``: the lines with these codes, in any site;
- ``--partition i/n``: the lines whose stable hash falls in partition ``i`` of ``n``
  (1-based): the first 8 bytes of ``sha256("{site}/{line}")`` as a big-endian number,
  modulo ``n``, plus 1 (``owner``). SHA-256 is fixed, so every process and every
  release agrees on who owns a line without talking to the others (CRC-32 would be as
  stable but splits codes like PC1, PC2, PC3 badly: its low bit is linear in the text).
  The owned lines are read from the database at start and every
  ``REFRESH_SECONDS``; a new line is subscribed then (docs/deploy.md, "Add a line").

On every (re)connect the ingest subscribes to its own filters first and then
unsubscribes from the filters it does not own (the whole plant's, the shared one, the
other lines'): a session that used to take more (an unpartitioned ingest, another
``n``) stops receiving them. Messages already queued in the session stay and are
taken, and the ``msg_id`` dedupe keeps that safe.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from firmware_bridge import topics
from server.models import Line, Site

REFRESH_SECONDS = 30.0
EVENTS = "evt/#"


@dataclass(frozen=True)
class Partition:
    """``lines``: owned line codes (any site); else partition ``index`` of ``count``."""

    lines: tuple[str, ...] = ()
    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, *, lines: str | None = None, partition: str | None = None) -> Partition | None:
        """From ``--lines L1,L2`` or ``--partition i/n``; ``None`` for neither (all)."""
        if lines and partition:
            raise ValueError("give --lines or --partition, not both")
        if lines:
            codes = tuple(code.strip() for code in lines.split(",") if code.strip())
            if not codes:
                raise ValueError(f"--lines {lines!r}: expected line codes, e.g. L1,L2")
            for code in codes:
                if any(ch in "/+#" for ch in code):
                    raise ValueError(f"--lines: {code!r} cannot be a line code in a topic")
            return cls(lines=codes)
        if partition:
            index, _, count = partition.partition("/")
            if not (index.isdigit() and count.isdigit()) or not 1 <= int(index) <= int(count):
                raise ValueError(f"--partition {partition!r}: expected i/n with 1 <= i <= n")
            return cls(index=int(index), count=int(count))
        return None

    def __str__(self) -> str:
        if self.lines:
            return "lines " + ",".join(self.lines)
        return f"partition {self.index}/{self.count}"

    def slug(self) -> str:
        """For a client id: ``partition-1-of-2``, ``lines-L1-L2``."""
        if self.lines:
            return "lines-" + "-".join(self.lines)
        return f"partition-{self.index}-of-{self.count}"

    def owns(self, site: str, line: str) -> bool:
        if self.lines:
            return line in self.lines
        return owner(site, line, self.count) == self.index

    def filters(self, plant: list[tuple[str, str]], *, prefix: str) -> list[str]:
        """The subscription filters of the owned lines; ``plant``: every (site, line)."""
        if self.lines:  # any site, even one not in the database yet
            return [topics.subscription(EVENTS, prefix=prefix, line=code) for code in self.lines]
        return [
            topics.subscription(EVENTS, prefix=prefix, site=site, line=line)
            for site, line in plant
            if self.owns(site, line)
        ]

    def others(self, plant: list[tuple[str, str]], *, prefix: str, shared: str) -> list[str]:
        """Filters this session may hold from before and must not: the whole plant's,
        the shared one, and every line's in either form, except its own filters."""
        everything = topics.subscription(EVENTS, prefix=prefix)
        candidates = [everything, f"$share/{shared}/{everything}"]
        for site, line in plant:
            candidates.append(topics.subscription(EVENTS, prefix=prefix, site=site, line=line))
            candidates.append(topics.subscription(EVENTS, prefix=prefix, line=line))
        own = set(self.filters(plant, prefix=prefix))
        return [f for f in dict.fromkeys(candidates) if f not in own]


def owner(site: str, line: str, count: int) -> int:
    """The partition (1..count) that owns a line: stable across processes and releases."""
    digest = hashlib.sha256(f"{site}/{line}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def plant_lines(engine: Engine) -> list[tuple[str, str]]:
    """Every (site code, line code) in the database."""
    stmt = (
        sa.select(Site.code, Line.code)  # type: ignore[call-overload]
        .join(Site, Line.site_id == Site.id)
        .order_by(Site.code, Line.code)
    )
    with engine.connect() as conn:
        return [(str(site), str(line)) for site, line in conn.execute(stmt)]
