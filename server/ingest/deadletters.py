"""Dead letters: messages the ingest could not decode or decide, kept to look at.

Each is answered ``rejected`` (``bad_payload`` with the reason, or ``internal_error``
with its ``incident`` id to quote), kept here with its raw bytes (the first 64 KiB),
topic and error, and acknowledged: a message never blocks the queue or comes back
after a restart. The table is bounded (setting ``DEAD_LETTER_MAX``): ``prune`` drops
the oldest. The ingest prunes when the table may be full, and after a tenth of it at
most (other ingests add to it too): it may hold that much more for a moment. A page
(``/ingest/dead-letters``, supervisors) and ``taktline dead-letters`` list them.
"""

from __future__ import annotations

import uuid
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session, col, select

from server.models import DeadLetter
from server.models.types import rfc3339, utcnow

KEEP_BYTES = 64 * 1024
_table: sa.Table = DeadLetter.__table__  # type: ignore[attr-defined]
_INSERT = sa.insert(_table)
_BOUNDS = sa.select(sa.func.min(_table.c.id), sa.func.max(_table.c.id))


def new_incident() -> str:
    return uuid.uuid4().hex[:12]


def letter(
    *,
    kind: str,
    topic: str,
    error: str,
    raw: bytes,
    station: str = "",
    msg_id: str | None = None,
    incident: str | None = None,
) -> dict[str, Any]:
    """One dead letter's row, for ``record_many``; built before the write
    transaction, so the write lock is held for the INSERT alone."""
    return {
        "incident": incident or new_incident(),
        "received_at": utcnow(),
        "kind": kind,
        "topic": topic[:512],
        "station": station[:64],
        "msg_id": msg_id[:64] if msg_id else None,
        "error": error[:1000],
        "size": len(raw),
        "payload": raw[:KEEP_BYTES],
    }


def record_many(session: Session, letters: list[dict[str, Any]]) -> None:
    """Keep dead letters (``letter``) in the caller's transaction: one statement."""
    if letters:
        session.connection().execute(_INSERT, letters)


def prune(session: Session, *, keep: int) -> int:
    """Delete all but the newest ``keep`` dead letters; how many more surely fit before
    the table holds more than ``keep`` (ids only grow, so ``newest - oldest + 1`` is at
    least the rows held): the caller may skip ``prune`` until it has kept that many."""
    oldest, newest = session.connection().execute(_BOUNDS).one()
    if newest is None:
        return keep
    if newest - keep >= oldest:
        session.connection().execute(sa.delete(_table).where(_table.c.id <= newest - keep))
        oldest = newest - keep + 1
    return max(0, keep - (newest - oldest + 1))


def recent(session: Session, *, limit: int = 100, station: str = "") -> list[DeadLetter]:
    query = select(DeadLetter).order_by(col(DeadLetter.id).desc()).limit(limit)
    if station:
        query = query.where(DeadLetter.station == station)
    return list(session.exec(query))


def preview(letter: DeadLetter, width: int = 120) -> str:
    """The payload's start as text a person can read (undecodable bytes escaped)."""
    text = letter.payload[:width].decode("utf-8", "backslashreplace")
    return text + ("…" if letter.size > width else "")


@click.command("dead-letters")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.option("--station", default="", help="Only this station's.")
@with_appcontext
def dead_letters_command(limit: int, station: str) -> None:
    """List the newest messages the ingest could not decode or decide."""
    with Session(current_app.extensions["taktline.engine"]) as session:
        letters = recent(session, limit=limit, station=station)
    for letter in letters:
        click.echo(
            f"{rfc3339(letter.received_at)} {letter.incident} {letter.kind} "
            f"{letter.topic} msg_id={letter.msg_id or '-'} {letter.size} B: {letter.error}"
        )
        click.echo(f"    {preview(letter)!r}")
    if not letters:
        click.echo("No dead letters.")
