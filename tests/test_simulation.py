"""A short shift with faults through the real paths (Mosquitto, ingest, web, bridges on
ptys), reconciled: on SQLite, and on PostgreSQL when TAKTLINE_TEST_DATABASE_URL is set.

About a minute per database: 30 simulated minutes at x50 (the first unit needs about
25 simulated minutes to go through kitting, board, final and test).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from server.db import get_engine
from server.models import Event, StepRecord, Unit
from server.tools.simulation.plan import FAULT_KINDS
from server.tools.simulation.shift import ShiftConfig, run_shift
from server.trace.reconcile import reconcile
from tests.support.databases import DB_KINDS, fresh_db


# One database: PostgreSQL when configured (CI), else SQLite. The shift drives the same
# code on either; the per-database paths have their own tests, and a minute of suite
# time per database is not worth repeating.
@pytest.fixture(params=DB_KINDS[-1:])
def shift_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_db(request.param, request, tmp_path, demo=True)


@pytest.mark.slow
def test_a_short_shift_with_faults_reconciles_clean(shift_db_url: str, tmp_path: Path) -> None:
    said: list[str] = []
    config = ShiftConfig(
        database_url=shift_db_url,
        workdir=tmp_path / "shift",
        secret_key="test-shift",
        stations=5,
        orders=3,
        minutes=30,
        speed=50,
        faults=True,
        seed=4,
    )
    result = run_shift(config, say=said.append)

    assert result.clean, "\n".join(said + result.summary())
    # Every kind of fault was scheduled, printed and actually done.
    assert {f.kind for f in result.schedule} == set(FAULT_KINDS)
    assert any("fault schedule" in line for line in said)
    for kind in ("broker_restart", "ingest_kill", "bridge_offline", "port_unplug"):
        assert result.faults.count(kind, ok=True) >= 1, kind
    # A republished payload was answered "duplicate"; noise was rejected with a reason.
    assert result.faults.count("duplicate", ok=True) == result.faults.count("duplicate") >= 1
    assert result.faults.count("garbage", ok=True) >= 1
    # The line produced: units completed, wrong parts refused, scans on both paths.
    assert result.units_completed >= 1
    assert result.operators["wrong_part_rejected"] >= 1
    assert result.operators["pick_serial"] > 0 and result.operators["pick_wedge"] > 0
    # Quality checks answered (docs/quality.md): torque through the tools board, the photo.
    assert result.operators["check_count"] > 0 and result.operators["check_photo"] > 0
    assert result.published > 0

    engine = get_engine(shift_db_url)
    with Session(engine) as session:
        flagged = [
            e
            for e in session.exec(select(Event).where(Event.channel == "mqtt"))
            if e.payload.get("error")
        ]
        assert flagged and all(e.result == "rejected" and e.reason for e in flagged)
        wrong = session.exec(select(Event).where(Event.code == "wrong_part")).all()
        assert wrong and all(
            e.result == "rejected" and e.reason.startswith("Wrong part: ") for e in wrong
        )
        assert session.exec(select(Unit).where(Unit.status == "completed")).first()
        assert not session.exec(
            select(StepRecord).where(col(StepRecord.ended_at).is_(None))
        ).first()
    # The report is re-derivable from the rows alone.
    assert reconcile(engine).clean
