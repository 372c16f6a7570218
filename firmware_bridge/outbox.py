"""The disk outbox: every event is on disk before it is published.

A row is deleted only when the broker has acknowledged it (PUBACK), so a broker
outage, a crash or a power cut loses nothing; rows are replayed in insertion order.
The per-source ``seq`` counter lives in the same database and is bumped in the same
transaction as the insert, so it survives restarts without gaps or repeats.

When the outbox holds ``max_messages`` rows the ``when_full`` policy applies:
``refuse_new`` (default) keeps what is queued and refuses the new event, which the
bridge answers with a bad-read signal on the device so the operator knows the
scan did not count; ``drop_oldest`` deletes the oldest row to make room. Both are
logged at ERROR with the running count of affected events. See docs/bridge.md.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

POLICIES = ("refuse_new", "drop_oldest")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    source TEXT NOT NULL,
    msg_id TEXT NOT NULL UNIQUE,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS seq (
    source TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class OutboxFull(Exception):
    """The outbox is at its bound and the policy is ``refuse_new``."""


@dataclass(frozen=True)
class Row:
    id: int
    topic: str
    source: str
    msg_id: str
    payload: bytes


class Outbox:
    """A SQLite-backed FIFO shared by the device threads and the MQTT link."""

    def __init__(
        self, path: Path | str, *, max_messages: int = 50_000, when_full: str = "refuse_new"
    ) -> None:
        if when_full not in POLICIES:
            raise ValueError(f"when_full must be one of {', '.join(POLICIES)}")
        self.path = Path(path)
        self.max_messages = max_messages
        self.when_full = when_full
        self.refused = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        # WAL + FULL: a committed row survives a power cut, not only a process kill.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._count = int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def append(self, topic: str, source: str, build: Callable[[int], dict[str, Any]]) -> Row:
        """Store one event. ``build(seq)`` returns the payload; it must hold ``msg_id``.

        Raises ``OutboxFull`` when the bound is reached under ``refuse_new``.
        """
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if self._count >= self.max_messages:
                self._make_room()
            cur = self._db.execute("SELECT value FROM seq WHERE source = ?", (source,))
            found = cur.fetchone()
            seq = (found[0] if found else 0) + 1
            self._db.execute(
                "INSERT INTO seq (source, value) VALUES (?, ?) "
                "ON CONFLICT(source) DO UPDATE SET value = excluded.value",
                (source, seq),
            )
            payload = build(seq)
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            cur = self._db.execute(
                "INSERT INTO outbox (topic, source, msg_id, payload) VALUES (?, ?, ?, ?)",
                (topic, source, payload["msg_id"], body),
            )
            self._count += 1
            return Row(int(cur.lastrowid or 0), topic, source, payload["msg_id"], body)

    def _make_room(self) -> None:
        if self.when_full == "refuse_new":
            self.refused += 1
            log.error(
                "outbox full (%d messages): refusing new event (%d refused so far); "
                "is the broker reachable?",
                self._count,
                self.refused,
            )
            raise OutboxFull(f"outbox holds {self._count} messages")
        oldest = self._db.execute("SELECT id, msg_id FROM outbox ORDER BY id LIMIT 1").fetchone()
        self._db.execute("DELETE FROM outbox WHERE id = ?", (oldest[0],))
        self._count -= 1
        self.dropped += 1
        log.error(
            "outbox full (%d messages): dropped oldest event %s (%d dropped so far)",
            self.max_messages,
            oldest[1],
            self.dropped,
        )

    def pending(self, *, after: int = 0, limit: int = 100) -> list[Row]:
        """Rows with ``id > after`` in insertion order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, source, msg_id, payload FROM outbox WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (after, limit),
            ).fetchall()
        return [Row(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def delete(self, *row_ids: int) -> None:
        """Forget rows the broker has acknowledged (one transaction for all of them)."""
        if not row_ids:
            return
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.executemany(
                "DELETE FROM outbox WHERE id = ?", [(row_id,) for row_id in row_ids]
            )
            self._count -= cur.rowcount

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()
