"""The line board on the wall (/board?tv=1) and at a desk, over HTTP on the real app: the
andon card filled red with its reason and age in plant time, plan against actual per
hour from the takt and the line's calendar, while /board/data.json stays in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import col, delete, select

from server.db import write_session
from server.models import Line, LineShift
from tests.support.apps import login, make_app
from tests.support.board_scene import floor_scene, zone_where_it_is

ZONE = zone_where_it_is(14)  # it is 14:xx in the plant whenever the test runs


@pytest.fixture
def board(any_demo_db_url: str, tmp_path: Path) -> dict[str, Any]:
    app = make_app(any_demo_db_url, tmp_path, PLANT_TIMEZONE=ZONE)
    engine = app.extensions["taktline.engine"]
    with write_session(engine) as db:
        db.exec(delete(LineShift))  # type: ignore[call-overload]
        line = db.exec(select(Line).order_by(col(Line.id))).first()
        assert line is not None and line.id is not None
        # Every day 06:00-22:00 less a quarter of an hour at 10:00, at takt 480 s.
        db.add(
            LineShift(
                line_id=line.id,
                name="day",
                weekdays=list(range(7)),
                start="06:00",
                end="22:00",
                breaks=[["10:00", "10:15"]],
            )
        )
    scene = floor_scene(engine)
    client = app.test_client()
    login(client, "supervisor")
    return {"app": app, "client": client, **scene}


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _card(html: str, code: str) -> str:
    match = re.search(rf'<article class="([^"]*)" data-station="{code}".*?</article>', html, re.S)
    assert match is not None, code
    return match.group(0)


def test_tv_board_shows_the_andon_in_red_with_its_age_and_plan_against_actual(
    board: dict[str, Any],
) -> None:
    client: FlaskClient = board["client"]
    html = client.get("/board?tv=1").get_data(as_text=True)
    assert 'class="board-tv"' in html and 'class="topbar"' not in html  # no desk navigation
    assert 'sse-connect="/board/events?tv=1"' in html
    andon = _card(html, "FIN-1")
    assert "state-andon" in andon and 'role="alert"' in andon
    raised_local = board["raised_at"].astimezone(ZoneInfo(ZONE)).strftime("%H:%M")
    assert f"Andon: Material raised 12 min ago · {raised_local}" in _text(andon)
    assert "Acknowledge" not in html  # nothing to click on the wall
    # The plan: 16 h less 15 min at 480 s a unit is 118.1 today; hours from the calendar.
    kpi = _text(re.search(r'<div [^>]*data-kpi="plan">.*?</div>', html, re.S).group(0))  # type: ignore[union-attr]
    assert "planned so far at takt 8 min · target today 118.1" in kpi
    rows = re.findall(r'<tr data-hour="(\d+)" class="([^"]*)">(.*?)</tr>', html, re.S)
    hours = {int(h): (cls.split(), _text(cells)) for h, cls, cells in rows}
    assert hours[13] == (["behind"], "13:00 7.5 0 -7")
    assert hours[10] == (["behind"], "10:00 5.6 0 -5")  # the break
    assert hours[14] == (["now"], "14:00 7.5 1 …")  # the unit built this hour
    assert list(hours) == [10, 11, 12, 13, 14, 15]  # the wall shows six, up to the next hour
    # The stream for the wall screen sends the same wall partial.
    stream = client.get("/board/events?tv=1&once=1").get_data(as_text=True)
    assert "state-andon" in stream and "raised 12 min ago" in stream and "Acknowledge" not in stream


def test_desk_board_in_plant_time_while_the_data_stays_utc(board: dict[str, Any]) -> None:
    client: FlaskClient = board["client"]
    html = client.get("/board").get_data(as_text=True)
    assert f"Times in {ZONE}" in html and 'href="/board?tv=1"' in html
    raised: datetime = board["raised_at"]
    andon = _text(_card(html, "FIN-1"))
    assert f"raised 12 min ago · {raised.astimezone(ZoneInfo(ZONE)):%H:%M}" in andon
    assert "Acknowledge" in andon
    data = client.get("/board/data.json").json
    assert data is not None
    fin = {s["code"]: s for s in data["stations"]}["FIN-1"]
    assert fin["andon"]["raised_at"] == raised.astimezone(UTC).isoformat().replace("+00:00", "Z")
    assert data["plan"]["source"] == "calendar" and data["plan"]["target"] == 118.12
    assert data["plan"]["hourly"][13] == 7.5 and data["day"] == str(
        datetime.now(ZoneInfo(ZONE)).date()
    )
    box = data["cycle_times"]["KIT-1"]["box"]
    assert len(box) == 5 and box == sorted(box)  # min, Q1, median, Q3, max


def test_without_a_calendar_the_plan_runs_at_takt_from_the_first_step(
    board: dict[str, Any],
) -> None:
    app: Flask = board["app"]
    with write_session(app.extensions["taktline.engine"]) as db:
        db.exec(delete(LineShift))  # type: ignore[call-overload]
    data = board["client"].get("/board/data.json").json
    # The line started two hours ago at 480 s a unit: 15 planned so far, nothing later.
    assert data["plan"]["source"] == "takt" and 15 <= data["plan"]["so_far"] < 15.2
    assert sum(data["plan"]["hourly"][15:]) == 0
    html = board["client"].get("/board?tv=1").get_data(as_text=True)
    kpi = _text(re.search(r'<div [^>]*data-kpi="plan">.*?</div>', html, re.S).group(0))  # type: ignore[union-attr]
    assert kpi == "15 (-14) planned so far at takt 8 min"
