"""A line board worth looking at: the line started two hours ago at its takt, one PC
built, one on BRD-1 now, an andon for material at FIN-1 raised twelve minutes ago.

``zone_where_it_is(hour)`` names a fixed-offset time zone in which it is now that
local hour, so "the plant's day" and its hours are the same whenever the tests run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from server.db import write_session
from server.models import AndonCall, StepRecord
from station.workflow import CallAndon, SignIn, StartUnit
from tests.support.building import act, build, build_step, place_and_release

OPTIONS = ["i5", "mem16", "ssd512", "mt"]
LINE_STARTED = timedelta(hours=2)
ANDON_AGE = timedelta(minutes=12, seconds=5)
STEP_MINUTES = (4, 9, 6, 7, 5, 11, 8, 3)  # made-up step times, for the box plots


def zone_where_it_is(hour: int, now: datetime | None = None) -> str:
    """An ``Etc/GMT`` zone where the local hour is ``hour`` now (Etc signs are inverted)."""
    offset = hour - (now or datetime.now(UTC)).hour  # -23 .. 23
    if offset > 14:
        offset -= 24
    elif offset < -12:
        offset += 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def floor_scene(engine: Engine) -> dict[str, object]:
    """Build the scene; returns the serials and the andon's raised_at (UTC)."""
    serials = place_and_release(engine, number="SO-TV", product="PC", quantity=2, options=OPTIONS)
    build(engine, serials[0])
    build_step(engine, "KIT-1", serials[1], badge="OP1001")
    assert act(engine, "BRD-1", SignIn("OP1002", pin="4321")).accepted
    assert act(engine, "BRD-1", StartUnit(serials[1])).accepted
    assert act(engine, "FIN-1", CallAndon("material")).accepted
    now = datetime.now(UTC)
    with write_session(engine) as db:
        call = db.exec(select(AndonCall).where(col(AndonCall.resolved_at).is_(None))).one()
        call.raised_at = now - ANDON_AGE
        db.add(call)
        steps = db.exec(
            select(StepRecord)
            .where(col(StepRecord.ended_at).is_not(None))
            .order_by(col(StepRecord.id))
        ).all()
        for n, step in enumerate(steps):
            assert step.ended_at is not None
            step.started_at = step.ended_at - timedelta(minutes=STEP_MINUTES[n % 8])
            db.add(step)
        # The line's first step of the day, two hours ago.
        steps[0].started_at = now - LINE_STARTED
        steps[0].ended_at = steps[0].started_at + timedelta(minutes=STEP_MINUTES[0])
        raised_at = call.raised_at
    return {"serials": serials, "raised_at": raised_at}
