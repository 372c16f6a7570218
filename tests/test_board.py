"""The line board: the day's figures and station states from work done through the real
paths, the page, the SSE stream, the JSON for the charts and andon acknowledgement."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from sqlmodel import Session, select

from server.board.figures import day_figures
from server.messaging import live
from server.models import AndonCall, AuditEntry
from station.workflow import CallAndon, ReportDefect, SignIn, StartUnit
from tests.support.apps import login
from tests.support.building import act, build, build_step, place_and_release

OPTIONS = ["i5", "mem16", "ssd512", "mt"]


@pytest.fixture
def line(demo_app: Flask) -> dict[str, Any]:
    """Unit 1 built with a defect reported at test; unit 2 kitted and on BRD-1 now;
    an andon call open at FIN-1; unit 3 still waiting for kitting."""
    engine = demo_app.extensions["taktline.engine"]
    serials = place_and_release(engine, number="SO-B1", product="PC", quantity=3, options=OPTIONS)
    build(engine, serials[0])
    build_step(engine, "KIT-1", serials[1], badge="OP1001")
    assert act(engine, "BRD-1", SignIn("OP1002", pin="4321")).accepted
    assert act(engine, "BRD-1", StartUnit(serials[1])).accepted
    assert act(engine, "FIN-1", CallAndon("no SATA cables")).accepted
    return {"engine": engine, "serials": serials}


def test_day_figures_and_station_states(line: dict[str, Any]) -> None:
    with Session(line["engine"]) as db:
        f = day_figures(db)
    assert f.completed == 1 and sum(f.hourly) == 1 and f.per_hour > 0
    assert f.first_pass == 1 and f.first_pass_yield == 1.0
    assert f.wip == 1  # unit 2 is in progress; unit 3 has not started
    assert f.orders_completed == 0 and f.on_time_rate is None
    assert f.takt_seconds == 480
    states = {s.code: s for s in f.stations}
    assert states["BRD-1"].state == "working" and states["BRD-1"].unit == line["serials"][1]
    assert states["BRD-1"].operator == "Bruno Lefèvre"
    assert states["BRD-1"].cycle_seconds is not None and states["BRD-1"].takt_seconds == 480
    assert states["FIN-1"].state == "andon" and states["FIN-1"].andon_reason == "no SATA cables"
    assert states["KIT-1"].state == "idle" and states["BRD-2"].state == "idle"
    assert set(f.cycle_times) == {"KIT-1", "BRD-1", "FIN-1", "TST-1"}
    assert f.cycle_times["KIT-1"].n == 2 and f.cycle_times["KIT-1"].standard == 240


def test_a_unit_held_for_a_defect_blocks_its_station(line: dict[str, Any]) -> None:
    engine = line["engine"]
    assert act(engine, "BRD-1", ReportDefect("function", "CPU socket: bent pin", "hold")).accepted
    with Session(engine) as db:
        f = day_figures(db)
    brd = {s.code: s for s in f.stations}["BRD-1"]
    assert brd.state == "blocked" and brd.unit is None and brd.blocked_reason
    assert f.completed == 1 and f.wip == 1  # held units are still work in progress


def test_board_page_stream_data_and_acknowledge(demo_app: Flask, line: dict[str, Any]) -> None:
    client = demo_app.test_client()
    assert client.get("/board").status_code == 302  # sign in first
    login(client, "supervisor")
    html = client.get("/board").get_data(as_text=True)
    assert 'data-station="BRD-1" data-state="working"' in html
    assert 'data-station="FIN-1" data-state="andon"' in html and "no SATA cables" in html
    assert 'sse-connect="/board/events"' in html and "chart-4.6.1.umd.min.js" in html
    assert "<script>" not in html  # no inline script: the CSP allows files only
    data = client.get("/board/data.json").json
    assert data["completed"] == 1 and data["wip"] == 1 and sum(data["hourly"]) == 1
    assert {s["code"]: s["state"] for s in data["stations"]}["FIN-1"] == "andon"
    stream = client.get("/board/events?once=1")
    assert stream.mimetype == "text/event-stream"
    body = stream.get_data(as_text=True)
    assert body.startswith("event: board\ndata: ") and 'data-state="andon"' in body

    with Session(line["engine"]) as db:
        call = db.exec(select(AndonCall)).one()
    with live.subscribe("FIN-1") as sub:
        acked = client.post(f"/board/andon/{call.id}/ack", headers={"HX-Request": "true"})
        assert acked.status_code == 200 and "acknowledged" in acked.get_data(as_text=True)
        published = sub.get(timeout=2)
    assert published is not None and published["station"] == "FIN-1"
    assert published["andon_acknowledged"] is True
    with Session(line["engine"]) as db:
        call = db.exec(select(AndonCall)).one()
        assert call.acknowledged_at is not None and call.acknowledged_by_id is not None
        entry = db.exec(select(AuditEntry).where(AuditEntry.action == "andon.acknowledge")).one()
    assert entry.entity_id == "FIN-1" and "supervisor" in entry.actor.lower()
    assert client.post("/board/andon/9999/ack").status_code == 404
    assert client.get("/board?day=yesterday").status_code == 400


def test_the_board_stream_follows_a_line_that_never_pauses(
    demo_app: Flask, line: dict[str, Any]
) -> None:
    """Station changes less than 0.2 s apart, for longer than a board may wait: the
    board still renders what changed while they keep coming."""
    client = demo_app.test_client()
    login(client, "supervisor")
    flooding = threading.Event()
    flooding.set()

    def flood() -> None:
        for n in range(200):  # 10 s at most; stopped once the board has rendered
            if not flooding.is_set():
                return
            live.HUB.deliver("KIT-1", {"station": "KIT-1", "n": n})
            time.sleep(0.05)

    chunks = client.get("/board/events", buffered=False).response
    first = next(iter(chunks))
    assert b'data-state="andon"' in first
    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    try:
        with Session(line["engine"]) as db:  # the supervisor's side: the call is answered
            call = db.exec(select(AndonCall)).one()
            db.delete(call)
            db.commit()
        rendered = next(iter(chunks))
        still_flooding = thread.is_alive()
    finally:
        flooding.clear()
        thread.join()
    assert b'data-state="andon"' not in rendered and still_flooding


def test_operators_may_not_see_the_board(demo_app: Flask) -> None:
    client = demo_app.test_client()
    assert client.get("/board/data.json", headers={"Accept": "application/json"}).status_code == 401
