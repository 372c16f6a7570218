"""Andon escalation: a call nobody acknowledged for ANDON_ESCALATE_MINUTES is published
once on ``{prefix}/{site}/{line}/{station}/andon/escalated`` (docs/mqtt.md), for a
pager, a siren or the maintenance system.

``due`` claims each call with one conditional UPDATE (``escalated_at IS NULL``), so
when several processes run the ``Escalator`` every call still goes out once; the
message is published after the claim's commit. A process that dies between the two
loses that one message: the call stays on the tablet and the board, red with its age.
No Flask here: ``server.runtime`` (every `taktline serve` and `taktline web` process)
gives the engine and a publish function.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from firmware_bridge import topics
from server.models import AndonCall, Line, Site, Station
from server.models.types import rfc3339, utcnow

log = logging.getLogger(__name__)
POLL_SECONDS = 15.0


@dataclass(frozen=True)
class Escalation:
    topic: str
    payload: dict[str, Any]


def due(
    session: Session, *, now: datetime, minutes: int, prefix: str = topics.DEFAULT_PREFIX
) -> list[Escalation]:
    """Claim every open, unacknowledged call raised ``minutes`` ago or more; the caller
    commits, then publishes what this returns."""
    if minutes <= 0:
        return []
    cutoff = now - timedelta(minutes=minutes)
    rows = session.exec(
        select(AndonCall, Station.code, Line.code, Site.code)
        .join(Station, col(Station.id) == AndonCall.station_id)
        .join(Line, col(Line.id) == Station.line_id)
        .join(Site, col(Site.id) == Line.site_id)
        .where(
            col(AndonCall.resolved_at).is_(None),
            col(AndonCall.acknowledged_at).is_(None),
            col(AndonCall.escalated_at).is_(None),
            col(AndonCall.raised_at) <= cutoff,
        )
    ).all()
    out = []
    for call, station, line, site in rows:
        claimed = session.execute(
            sa.update(AndonCall)
            .where(col(AndonCall.id) == call.id, col(AndonCall.escalated_at).is_(None))
            .values(escalated_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another process took it
        out.append(
            Escalation(
                topic=topics.build(site, line, station, "andon/escalated", prefix=prefix),
                payload={
                    "station": station,
                    "call": call.id,
                    "reason": call.reason,
                    "raised_at": rfc3339(call.raised_at),
                    "minutes": int((now - call.raised_at).total_seconds() // 60),
                    "unit_id": call.unit_id,
                    "at": rfc3339(now),
                },
            )
        )
    return out


class Escalator:
    """Looks for calls to escalate every ``poll`` seconds, in a thread."""

    def __init__(
        self,
        engine: Engine,
        publish: Callable[[str, dict[str, Any]], None],
        *,
        minutes: int,
        prefix: str,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.engine, self.publish, self.minutes = engine, publish, minutes
        self.prefix, self.poll = prefix, poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        with Session(self.engine) as session:
            found = due(session, now=utcnow(), minutes=self.minutes, prefix=self.prefix)
            session.commit()
        for escalation in found:
            log.warning("andon escalated: %s", escalation.payload)
            self.publish(escalation.topic, escalation.payload)
        return len(found)

    def start(self) -> Escalator:
        if self.minutes > 0:
            self._thread = threading.Thread(target=self._loop, name="andon-escalate", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.run_once()
            except Exception:
                log.exception("andon escalation pass failed; trying again")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
