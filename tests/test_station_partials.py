"""Each tablet partial alone is what the worker sees of it on the whole screen.

htmx and the live stream swap partials one by one (``/station/<code>/<partial>``) and
the whole ``#screen`` at once (a POST's answer, an SSE snapshot); each partial reads
only what it shows, so here each one is compared with the same fragment of the whole
screen, in the busiest state: a French operator at the board station, a unit started,
picks scanned and others not, a torque check one reading in, an andon call a
supervisor acknowledged, and a wrong part just refused (its band, the rows to take).
Then the same for a paused step and for a station nobody is signed in at. On SQLite
and, when configured, PostgreSQL.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import select

from server.db import write_session
from server.models import AndonCall, Operator
from server.models.types import utcnow
from station.views import PARTIALS
from station.workflow import CallAndon, DeviceEvent, Pause, Scan, SignIn, StartUnit
from tests.support.apps import make_app
from tests.support.building import act, build_step, place_and_release, scans_for
from tests.test_station_views import bind

HX = {"HX-Request": "true"}
CASE_MT = "9506000001104"  # a kitting part: wrong at the board station
# Where each partial starts: its root element's id.
ROOT_ID = {
    "header": "station-header",
    "banner": "banner",
    "queue": "queue",
    "unit": "unit",
    "step": "step",
    "timer": "timer",
    "actions": "actions",
    "signin": "signin",
}


def normalized(html: str) -> str:
    """``html`` without what moves with the clock between two requests: the server's
    time stamps, the step time elapsed so far (station.js ticks it anyway) and the CSRF
    token (signed with the second it was made in)."""
    html = re.sub(r'data-server-now="[^"]*"', 'data-server-now=""', html)
    html = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', html)
    html = re.sub(r'"X-CSRFToken": "[^"]*"', '"X-CSRFToken": ""', html)
    return re.sub(r'<span class="elapsed">[^<]*</span>', '<span class="elapsed"></span>', html)


def get(client: FlaskClient, path: str, *, htmx: bool = True) -> str:
    response = client.get(path, headers=HX if htmx else {})
    assert response.status_code == 200, response.text[:300]
    return normalized(response.text)


def fragment(screen: str, partial: str) -> str:
    """The partial's own HTML inside the whole screen: from its root element's opening
    tag to the matching close (the templates nest no element of the same tag name inside
    a partial's root)."""
    root_id = ROOT_ID[partial]
    start = re.search(rf'<(\w+) id="{root_id}"', screen)
    assert start is not None, f"{partial} not on the screen"
    tag = start.group(1)
    end = screen.index(f"</{tag}>", start.start()) + len(f"</{tag}>")
    return screen[start.start() : end]


def assert_partials_match(client: FlaskClient, station: str, names: list[str]) -> str:
    screen = get(client, f"/station/{station}/screen")
    for name in names:
        alone = get(client, f"/station/{station}/{name}").strip()
        assert alone == fragment(screen, name), name
    # The page a tablet loads holds the same screen.
    page = get(client, f"/station/{station}", htmx=False)
    assert screen.strip() in page
    return screen


@pytest.fixture
def board_station(any_demo_db_url: str, tmp_path: Path) -> tuple[Flask, FlaskClient]:
    """BRD-1 in its busiest state (see the module docstring), a tablet bound to it."""
    app = make_app(any_demo_db_url, tmp_path)
    engine = app.extensions["taktline.engine"]
    serials = place_and_release(
        engine, number="SO-BUSY", product="PC", quantity=2, options=["i5", "mem16", "ssd512", "mt"]
    )
    for kitted in serials:  # both kitted: the second one waits in the board's queue
        build_step(engine, "KIT-1", kitted, badge="OP1001")
    serial = serials[0]
    assert act(engine, "BRD-1", SignIn("OP1002", "4321")).accepted  # Bruno reads French
    state = act(engine, "BRD-1", StartUnit(serial)).state
    assert state is not None and state.unit is not None
    for pick in state.picks[:2]:
        for data in scans_for(
            engine,
            unit_id=state.unit.id,
            part_id=pick.part_id,
            substitutes=pick.substitutes,
            qty=pick.remaining,
        ):
            assert act(engine, "BRD-1", Scan(data)).accepted
    torque = DeviceEvent("torque", {"value": 0.6, "unit": "Nm", "ok": True}, source="torque1")
    assert act(engine, "BRD-1", torque).accepted
    assert act(engine, "BRD-1", CallAndon(reason="material")).accepted
    with write_session(engine) as db:
        call = db.exec(select(AndonCall)).one()
        sam = db.exec(select(Operator).where(Operator.badge == "SV2001")).one()
        call.acknowledged_at, call.acknowledged_by_id = utcnow(), sam.id
        db.add(call)
    assert act(engine, "BRD-1", Scan(CASE_MT)).code == "wrong_part"
    client = app.test_client()
    bind(app, client, "BRD-1")
    return app, client


def test_each_partial_is_its_fragment_of_the_busiest_screen(
    board_station: tuple[Flask, FlaskClient],
) -> None:
    app, client = board_station
    names = sorted(set(PARTIALS) - {"screen", "signin"})
    screen = assert_partials_match(client, "BRD-1", names)
    # The state is the busiest one: everything below is on the screen, in French.
    assert "Bruno Lefèvre" in screen
    assert "Assemblage de la carte" in screen  # the step, in the catalog's French
    assert re.search(r'class="pick done"', screen) and re.search(r'class="pick todo', screen)
    assert re.search(r'class="pick todo wanted"', screen)  # what the refused scan should be
    assert 'class="banner reject"' in screen
    assert re.search(r'data-code="TQ-MB".*?1/4', screen, re.S)  # the open check
    assert re.search(r'data-testid="complete"\s+disabled', screen)
    assert "Sam Sutherland" in screen and "andon-state acked" in screen
    assert 'data-testid="queue-item"' in screen  # the order's second unit waits
    assert 'data-started="' in screen


def test_a_paused_step_shows_its_timer_and_a_signed_out_station_its_sign_in(
    board_station: tuple[Flask, FlaskClient],
) -> None:
    app, client = board_station
    engine = app.extensions["taktline.engine"]
    assert act(engine, "BRD-1", Pause()).accepted
    screen = assert_partials_match(client, "BRD-1", ["header", "banner", "timer"])
    assert 'data-testid="paused"' in screen and "En pause" in screen

    fin = app.test_client()
    bind(app, fin, "FIN-1")
    screen = assert_partials_match(fin, "FIN-1", ["header", "banner", "signin"])
    assert 'data-testid="signin"' in screen and "Nobody signed in" in screen
