"""`taktline reconcile` on a plant's database: the invariants from the rows."""

from __future__ import annotations

from flask import Flask

from server.db import write_session
from station import service
from station.workflow import SignIn, StartNext
from tests.support.apps import CliRunner
from tests.support.building import place_and_release


def test_reconcile_a_clean_plant_and_an_open_step(demo_app: Flask) -> None:
    runner = CliRunner(demo_app)
    clean = runner.invoke(["reconcile"])
    assert clean.exit_code == 0, clean.output
    assert "[ok] on-hand equals the ledger for every lot" in clean.output

    engine = demo_app.extensions["taktline.engine"]
    place_and_release(
        engine, number="SO-R1", product="PC", quantity=1, options=["i5", "mem16", "ssd512", "mt"]
    )
    with write_session(engine) as session:
        assert (
            service.handle(
                session, station_code="KIT-1", event=SignIn("OP1001"), channel="ui"
            ).result
            == "accepted"
        )
    with write_session(engine) as session:
        assert (
            service.handle(session, station_code="KIT-1", event=StartNext(), channel="ui").result
            == "accepted"
        )
    # A step in progress is normal on a running line, and a mismatch at shift end.
    assert runner.invoke(["reconcile"]).exit_code == 0
    strict = runner.invoke(["reconcile", "--closed-steps"])
    assert strict.exit_code == 1
    assert "[FAIL] every step record has a start and an end" in strict.output
