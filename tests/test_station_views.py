"""The station tablet through Flask's test client: every partial and every state.

A real demo plant (SQLite), order SO-1001 released by the orders service (two units
i5 / 16 GB / SSD 512 / mid-tower), a tablet bound to KIT-1 by the real binding link.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, col, func, select

from server.db import write_session
from server.models import (
    AndonCall,
    Consumption,
    CustomerOrder,
    Defect,
    DefectPhoto,
    Event,
    Operator,
    Part,
    Station,
    StepRecord,
    Unit,
    UnitOperation,
)
from server.models.types import utcnow
from server.orders import service as orders
from server.security import auth
from station.views import PARTIALS
from tests.support.apps import make_app

HX = {"HX-Request": "true"}
# KIT picks of an i5/mem16/ssd512/mt unit: CASE-MT, PSU-450 (serial), SCR-M3, FAN-120 x2.
CASE_MT = "9506000001104"
SCREWS = "SCRM3"
FAN = "(01)09506000001210(10)FN-2605"
WRONG_PART = "(01)09506000001111"  # CASE-SFF: the small case, not this unit's
KIT_SCANS = [CASE_MT, "(01)09506000001128(21)P45X00001", SCREWS, FAN, FAN]


def release_order(app: Flask, number: str = "SO-1001") -> None:
    with write_session(app.extensions["taktline.engine"]) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == number)).one()
        orders.release(db, order=order, by="test")


def bind(app: Flask, client: FlaskClient, station: str) -> str:
    with write_session(app.extensions["taktline.engine"]) as db:
        row = db.exec(select(Station).where(Station.code == station)).one()
        token = auth.issue_device_token(db, station=row, by=None, label="test tablet")
    response = client.get(f"/station/bind?token={token}")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/station/{station}"
    return token


@pytest.fixture
def app(demo_db_url: str, tmp_path: Path) -> Flask:
    app = make_app(demo_db_url, tmp_path, STATION_HEARTBEAT_SECONDS=0.2)
    release_order(app)
    return app


@pytest.fixture
def any_kit(any_demo_db_url: str, tmp_path: Path) -> tuple[Flask, FlaskClient]:
    """The app with SO-1001 released and a tablet bound to KIT-1, on SQLite and, when
    configured, PostgreSQL."""
    app = make_app(any_demo_db_url, tmp_path, STATION_HEARTBEAT_SECONDS=0.2)
    release_order(app)
    client = app.test_client()
    bind(app, client, "KIT-1")
    return app, client


@pytest.fixture
def tablet(app: Flask) -> FlaskClient:
    client = app.test_client()
    bind(app, client, "KIT-1")
    return client


def post(client: FlaskClient, path: str, **data: str) -> str:
    response = client.post(path, data=data, headers=HX)
    assert response.status_code == 200, response.text[:500]
    assert "<html" not in response.text  # a partial, not the page
    return response.text


def scan(client: FlaskClient, data: str) -> str:
    return post(client, "/station/KIT-1/scan", data=data, source="wedge")


def banner(html: str) -> tuple[str, str]:
    match = re.search(
        r'id="banner" class="banner (\w+)".*?(?:<span class="banner-text">'
        r"(.*?)</span>|</div>)",
        html,
        re.S,
    )
    assert match, html[:800]
    return match.group(1), (match.group(2) or "").strip()


def rows(app: Flask, model: Any, *where: Any) -> int:
    with Session(app.extensions["taktline.engine"]) as db:
        return int(db.exec(select(func.count()).select_from(model).where(*where)).one())


def signed_in_operator(app: Flask) -> str | None:
    with Session(app.extensions["taktline.engine"]) as db:
        return db.exec(
            select(Operator.badge)
            .join(Station, Station.operator_id == Operator.id)
            .where(Station.code == "KIT-1")
        ).first()


def start_unit(tablet: FlaskClient) -> str:
    assert banner(scan(tablet, "OP1001"))[0] == "ok"
    html = post(tablet, "/station/KIT-1/start")
    assert banner(html) == ("ok", "Unit PC-000001: Kit the case started.")
    return html


# -- binding -------------------------------------------------------------------------


def test_an_unbound_tablet_is_sent_to_a_page_that_says_so(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/station/KIT-1")
    assert response.status_code == 303 and response.headers["Location"] == "/station/"
    page = client.get("/station/")
    assert page.status_code == 200
    assert "This tablet is not bound to a station" in page.text
    assert "Ask an admin" in page.text
    htmx = client.get("/station/KIT-1/queue", headers=HX)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/station/"


def test_binding_sets_a_long_lived_httponly_cookie(app: Flask) -> None:
    client = app.test_client()
    token = bind(app, client, "KIT-1")
    cookie = client.get_cookie(auth.DEVICE_COOKIE)
    assert cookie is not None and cookie.value == token and cookie.http_only
    assert cookie.max_age is not None and cookie.max_age > 300 * 24 * 3600
    assert client.get("/station/").headers["Location"] == "/station/KIT-1"
    assert client.get("/station/KIT-1").status_code == 200


def test_a_bad_binding_link_is_refused(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/station/bind?token=tld_not-a-token")
    assert response.status_code == 403
    assert "unknown or was revoked" in response.text
    assert client.get_cookie(auth.DEVICE_COOKIE) is None


def test_a_tablet_bound_elsewhere_gets_403(tablet: FlaskClient) -> None:
    response = tablet.get("/station/BRD-1")
    assert response.status_code == 403
    assert "bound to station KIT-1, not BRD-1" in response.text
    assert 'href="/station/KIT-1"' in response.text
    assert tablet.post("/station/BRD-1/start", headers=HX).status_code == 403


# -- the page and its partials -------------------------------------------------------


def test_the_signed_out_page(tablet: FlaskClient) -> None:
    page = tablet.get("/station/KIT-1")
    assert page.status_code == 200
    html = page.text
    assert '<body class="tablet"' in html
    assert 'sse-connect="/station/KIT-1/events"' in html
    assert 'sse-swap="snapshot"' in html and 'sse-swap="heartbeat"' in html
    assert 'id="capture"' in html and 'inputmode="none"' in html
    assert "Scan your badge to sign in" in html
    assert "2 units waiting" in html
    # No CDN, no inline script (the CSP forbids it).
    assert "vendor/htmx-2.0.11.min.js" in html and "station.js" in html
    assert "<script>" not in html and " onclick=" not in html


@pytest.mark.parametrize("name", sorted(PARTIALS))
def test_every_partial_alone_for_htmx_and_in_the_page_otherwise(
    tablet: FlaskClient, name: str
) -> None:
    start_unit(tablet)
    fragment = tablet.get(f"/station/KIT-1/{name}", headers=HX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and fragment.text.strip()
    page = tablet.get(f"/station/KIT-1/{name}")
    assert page.status_code == 200 and "<html" in page.text
    expected_ids = {
        "screen": 'data-testid="screen"',
        "header": 'id="station-header"',
        "banner": 'id="banner"',
        "queue": 'id="queue"',
        "unit": 'id="unit"',
        "step": 'id="step"',
        "timer": 'id="timer"',
        "actions": 'id="actions"',
        "signin": 'id="signin"',
    }
    assert expected_ids[name] in fragment.text


# -- sign-in -------------------------------------------------------------------------


def test_badge_sign_in_by_scan(app: Flask, tablet: FlaskClient) -> None:
    html = scan(tablet, "OP1001")
    assert banner(html) == ("ok", "Welcome, Alice Martin.")
    assert 'data-operator="OP1001"' in html and "Alice Martin" in html
    assert 'data-testid="start-next"' in html and "Sign out" in html
    assert signed_in_operator(app) == "OP1001"


def test_an_unknown_badge_is_rejected_and_nobody_is_signed_in(
    app: Flask, tablet: FlaskClient
) -> None:
    html = scan(tablet, "OP9999")
    assert banner(html) == ("reject", "Badge OP9999 is not known or not active.")
    assert "Scan your badge to sign in" in html
    assert signed_in_operator(app) is None


def test_pin_pad_then_wrong_then_right_pin_in_french(app: Flask, tablet: FlaskClient) -> None:
    response = tablet.post("/station/KIT-1/scan", data={"data": "OP1002"}, headers=HX)
    # The PIN pad opens over the screen, where live snapshots never close it.
    assert response.headers["HX-Retarget"] == "#overlay"
    html = response.text
    assert 'name="pin"' in html and 'name="badge" value="OP1002"' in html
    # In the badge's language (Bruno reads French), not the signed-out screen's.
    assert 'data-key="7"' in html and "Bruno Lefèvre, saisissez votre code PIN" in html
    assert "Effacer" in html and "Clear" not in html
    assert signed_in_operator(app) is None
    wrong = post(tablet, "/station/KIT-1/pin", badge="OP1002", pin="1111")
    assert banner(wrong) == ("reject", "Wrong PIN for badge OP1002.")
    assert signed_in_operator(app) is None
    right = post(tablet, "/station/KIT-1/pin", badge="OP1002", pin="4321")
    assert banner(right) == ("ok", "Bienvenue, Bruno Lefèvre.")
    assert "Se déconnecter" in right and "Démarrer l’unité suivante" in right
    assert signed_in_operator(app) == "OP1002"
    page = tablet.get("/station/KIT-1")
    assert '<html lang="fr">' in page.text


def test_every_action_answer_closes_the_dialog(tablet: FlaskClient) -> None:
    html = scan(tablet, "OP1001")
    assert html.endswith('<div id="overlay" hx-swap-oob="innerHTML"></div>')


def test_without_htmx_the_pin_pad_and_defect_dialog_are_in_the_page(tablet: FlaskClient) -> None:
    page = tablet.post("/station/KIT-1/scan", data={"data": "OP1002"}).text
    assert "<html" in page and re.search(
        r'id="overlay"[^>]*>\s*<div class="dialog pin-dialog"', page
    )
    post(tablet, "/station/KIT-1/pin", badge="OP1002", pin="4321")
    assert 'data-testid="defect-dialog"' in tablet.get("/station/KIT-1/defect").text


def test_too_many_wrong_pins_are_refused(app: Flask, tablet: FlaskClient) -> None:
    for _ in range(app.config["SIGNIN_MAX_FAILURES"]):
        post(tablet, "/station/KIT-1/pin", badge="OP1002", pin="0000")
    html = post(tablet, "/station/KIT-1/pin", badge="OP1002", pin="4321")
    kind, text = banner(html)
    assert kind == "reject" and text.startswith("Too many failed sign-ins")
    assert signed_in_operator(app) is None


def test_an_operator_without_the_skill_cannot_start_and_is_told_why(
    app: Flask, tablet: FlaskClient
) -> None:
    post(tablet, "/station/KIT-1/pin", badge="OP1002", pin="4321")  # Bruno: esd, test
    with app.test_request_context():
        html = post(tablet, "/station/KIT-1/start")
    kind, text = banner(html)
    assert kind == "reject" and "kitting" in text
    assert rows(app, UnitOperation, UnitOperation.status == "active") == 0
    assert rows(app, StepRecord) == 0


# -- the work --------------------------------------------------------------------------


def test_start_shows_unit_step_picks_and_timer(tablet: FlaskClient) -> None:
    html = start_unit(tablet)
    assert 'data-testid="unit-serial">PC-000001<' in html
    assert "Desktop PC, configurable" in html
    for option in ("Core i5", "16 GB", "SSD 512 GB", "Mid tower"):
        assert f"<li>{option}</li>" in html
    assert re.search(r"Due \d{4}-\d\d-\d\d", html)
    assert '<li class="current">Kit the case</li>' in html
    assert '<li class="todo">Board assembly</li>' in html
    assert "Take the case and the power supply" in html
    for sku, bin_ in (
        ("CASE-MT", "D-01"),
        ("PSU-450", "D-03"),
        ("SCR-M3", "H-01"),
        ("FAN-120", "F-03"),
    ):
        assert re.search(rf'data-sku="{sku}">.*?<td class="bin">{bin_}</td>', html, re.S)
    assert html.count('class="pick todo"') == 4
    assert 'data-standard="240"' in html and "data-started=" in html
    assert re.search(r'data-testid="complete"\s+disabled', html)
    assert "1 unit waiting" not in html and '<span class="count">1</span>' in html


def test_accepted_scans_turn_picks_green_with_lot_or_serial(
    app: Flask, tablet: FlaskClient
) -> None:
    start_unit(tablet)
    html = scan(tablet, KIT_SCANS[1])
    assert banner(html) == ("ok", "PSU-450 picked (1 of 1).")
    assert re.search(
        r'class="pick done" data-testid="pick" data-sku="PSU-450">.*?'
        r"<span>P45X00001</span>",
        html,
        re.S,
    )
    html = scan(tablet, FAN)
    assert re.search(
        r'class="pick todo" data-testid="pick" data-sku="FAN-120">.*?'
        r'class="qty">1/2<.*?<span>FN-2605</span>',
        html,
        re.S,
    )
    assert rows(app, Consumption) == 2


def test_a_wrong_part_is_rejected_in_plain_words_and_nothing_is_recorded(
    app: Flask, tablet: FlaskClient
) -> None:
    start_unit(tablet)
    html = scan(tablet, WRONG_PART)
    kind, text = banner(html)
    assert kind == "reject"
    assert text.startswith("Wrong part: this is Small form factor case")
    assert rows(app, Consumption) == 0
    assert rows(app, Event, Event.result == "rejected", Event.channel == "ui") == 1


def test_the_french_tablet_shows_the_catalog_in_french(any_kit: tuple[Flask, FlaskClient]) -> None:
    """Operation, instructions, parts, options, product and station from the catalog's
    French texts, in the screen and in the verdicts; the wrong-part list joined the
    French way and its rows highlighted."""
    app, tablet = any_kit
    with write_session(app.extensions["taktline.engine"]) as db:
        alice = db.exec(select(Operator).where(Operator.badge == "OP1001")).one()
        alice.locale = "fr"
        db.add(alice)
    scan(tablet, "OP1001")
    html = post(tablet, "/station/KIT-1/start")
    assert banner(html) == ("ok", "Unité PC-000001 : Préparation du boîtier commencé.")
    for text in (
        "Prenez le boîtier et l’alimentation",
        "Boîtier moyen tour",
        "Alimentation 450 W",
        "<li>Moyen tour</li>",
        "PC de bureau, configurable",
        "Préparation",
    ):
        assert text in html, text
    assert "Kit the case" not in html and "Mid-tower case" not in html
    html = scan(tablet, WRONG_PART)
    assert banner(html) == (
        "reject",
        "Mauvaise pièce : c’est Boîtier petit format, l’étape demande Boîtier moyen tour.",
    )
    assert 'class="pick todo wanted" data-testid="pick" data-sku="CASE-MT"' in html
    page = tablet.get("/station/KIT-1/banner", headers=HX).text  # re-rendered, stored
    assert "Boîtier petit format" in page


def test_scanning_a_traveler_starts_that_unit(any_kit: tuple[Flask, FlaskClient]) -> None:
    app, tablet = any_kit
    release_order(app, "SO-1002")
    scan(tablet, "OP1001")
    queued = tablet.get("/station/KIT-1/queue", headers=HX).text
    serials = re.findall(r'class="serial">([^<]+)<', queued)
    assert len(serials) >= 2
    html = scan(tablet, serials[1])  # not the first in line: dispatch allows any queued
    assert banner(html) == ("ok", f"Unit {serials[1]}: Kit the case started.")
    assert f'data-testid="unit-serial">{serials[1]}<' in html
    assert banner(scan(tablet, "PC-999999"))[0] == "reject"  # not a unit waiting here


def test_sign_in_by_operator_number_and_pin(any_kit: tuple[Flask, FlaskClient]) -> None:
    app, tablet = any_kit
    assert "number-sign-in" not in tablet.get("/station/KIT-1").text  # off by default
    assert (
        tablet.post("/station/KIT-1/number", data={"number": "1002", "pin": "4321"}).status_code
        == 404
    )
    app.config["STATION_NUMBER_SIGN_IN"] = True
    assert 'data-testid="number-sign-in"' in tablet.get("/station/KIT-1").text
    dialog = tablet.get("/station/KIT-1/number", headers=HX).text
    assert 'name="number"' in dialog and 'name="pin"' in dialog
    generic = ("reject", "Operator number or PIN not right: try again or scan your badge.")
    assert banner(post(tablet, "/station/KIT-1/number", number="1002", pin="0000")) == generic
    assert banner(post(tablet, "/station/KIT-1/number", number="9999", pin="4321")) == generic
    # Alice has no PIN: her number alone would let anyone sign in as her.
    assert banner(post(tablet, "/station/KIT-1/number", number="1001", pin="1")) == generic
    assert signed_in_operator(app) is None
    html = post(tablet, "/station/KIT-1/number", number="1002", pin="4321")
    assert banner(html) == ("ok", "Bienvenue, Bruno Lefèvre.")
    assert signed_in_operator(app) == "OP1002"


def test_a_wrong_part_names_every_part_it_could_be(app: Flask) -> None:
    """No cap at three, and no English " or " in French (the workflow's list, rendered)."""
    from station import texts

    params = {
        "scanned": "X",
        "needed": "A or B or C or D",
        "needed_list": ["A", "B", "C", "D"],
        "needed_skus": ["A", "B", "C", "D"],
    }
    with app.test_request_context():
        assert texts.translated("wrong_part", params).endswith("step needs A, B, C, or D.")
    with app.test_request_context(headers={"Cookie": "lang=fr"}):
        assert texts.translated("wrong_part", params).endswith("demande A, B, C ou D.")


def test_complete_only_when_picks_are_done(app: Flask, tablet: FlaskClient) -> None:
    start_unit(tablet)
    html = post(tablet, "/station/KIT-1/complete")
    kind, text = banner(html)
    assert kind == "reject" and text.startswith("Not finished: still to pick")
    for data in KIT_SCANS:
        html = scan(tablet, data)
        assert banner(html)[0] == "ok", banner(html)
    assert html.count('class="pick done"') == 4
    assert re.search(r'data-testid="complete"\s+>', html)
    html = post(tablet, "/station/KIT-1/complete")
    assert banner(html) == ("ok", "Unit PC-000001: Kit the case complete.")
    assert 'data-testid="start-next"' in html and "No unit in progress." in html
    with Session(app.extensions["taktline.engine"]) as db:
        statuses = [
            u.status
            for u in db.exec(
                select(UnitOperation)
                .join(Unit, col(Unit.id) == UnitOperation.unit_id)
                .where(Unit.serial == "PC-000001")
                .order_by(col(UnitOperation.sequence))
            )
        ]
    assert statuses[:2] == ["done", "ready"]


def test_pause_and_resume(app: Flask, tablet: FlaskClient) -> None:
    start_unit(tablet)
    html = post(tablet, "/station/KIT-1/pause")
    assert banner(html) == ("info", "Step paused.")
    assert 'data-testid="resume"' in html and 'data-paused-at="20' in html
    assert ">Paused<" in html
    # The whole work area is the paused state: one Resume, nothing else to tap.
    assert 'data-testid="paused"' in html and html.count('data-testid="resume"') == 1
    assert 'data-testid="complete"' not in html and 'data-testid="picks"' not in html
    scanned = scan(tablet, CASE_MT)
    assert banner(scanned) == ("reject", "The step is paused: resume it first.")
    html = post(tablet, "/station/KIT-1/resume")
    assert banner(html) == ("ok", "Step resumed.")
    assert 'data-testid="pause"' in html and 'data-paused-at=""' in html


def test_timer_turns_amber_then_red(app: Flask, tablet: FlaskClient) -> None:
    start_unit(tablet)

    def started_ago(seconds: int) -> str:
        with write_session(app.extensions["taktline.engine"]) as db:
            step = db.exec(select(StepRecord)).one()
            step.started_at = utcnow() - timedelta(seconds=seconds)
            db.add(step)
        return tablet.get("/station/KIT-1/timer", headers=HX).text

    assert 'class="timer green"' in started_ago(10)
    amber = started_ago(200)  # standard 240 s: amber from 80 %
    assert 'class="timer amber"' in amber and ">03:20<" in amber
    assert 'class="timer red"' in started_ago(300)


def test_defect_dialog_and_hold(app: Flask, tablet: FlaskClient) -> None:
    start_unit(tablet)
    dialog = tablet.get("/station/KIT-1/defect", headers=HX)
    assert dialog.status_code == 200
    assert 'value="damaged"' in dialog.text and "Part damaged" in dialog.text
    assert 'value="hold"' in dialog.text
    bad = post(tablet, "/station/KIT-1/defect", reason="nonsense", disposition="hold")
    assert banner(bad) == ("reject", "Choose a defect reason.")
    assert rows(app, Defect) == 0
    assert "checked" not in dialog.text  # one stray tap never files a defect
    assert "leaves the line until quality decides" in dialog.text  # Hold explained
    unchosen = post(tablet, "/station/KIT-1/defect", reason="damaged")
    assert banner(unchosen) == ("reject", "Choose what happens to the unit.")
    assert rows(app, Defect) == 0
    html = post(tablet, "/station/KIT-1/defect", reason="damaged", disposition="hold")
    assert banner(html) == ("ok", "Defect Part damaged recorded; unit PC-000001 is on hold.")
    assert rows(app, Defect, Defect.reason_code == "damaged") == 1
    assert rows(app, UnitOperation, UnitOperation.status == "held") == 1
    assert "No unit in progress." in html


def test_defect_for_rework_keeps_the_step(app: Flask, tablet: FlaskClient) -> None:
    start_unit(tablet)
    html = post(tablet, "/station/KIT-1/defect", reason="cosmetic", disposition="rework")
    assert banner(html) == ("ok", "Defect Scratch or dent recorded on unit PC-000001.")
    assert 'data-testid="unit-serial">PC-000001<' in html


def test_a_defect_names_its_part_and_keeps_a_bounded_photo(
    any_kit: tuple[Flask, FlaskClient],
) -> None:
    app, tablet = any_kit
    start_unit(tablet)
    app.config["DEFECT_PHOTO_MAX_BYTES"] = 2000
    jpeg = b"\xff\xd8\xff\xe0" + b"x" * 1000
    form = {"reason": "damaged", "disposition": "rework", "part": "PSU-450", "note": "<b>dent</b>"}
    too_big = {**form, "photo": (io.BytesIO(b"\xff\xd8\xff" + b"x" * 2000), "big.jpg")}
    html = tablet.post("/station/KIT-1/defect", data=too_big, headers=HX).text
    assert banner(html)[0] == "reject" and "Photo refused" in banner(html)[1]
    not_a_picture = {**form, "photo": (io.BytesIO(b"<svg onload=alert(1)>"), "x.jpg")}
    html = tablet.post("/station/KIT-1/defect", data=not_a_picture, headers=HX).text
    assert "Photo refused" in banner(html)[1] and rows(app, Defect) == 0
    wrong_part = post(tablet, "/station/KIT-1/defect", **{**form, "part": "CASE-SFF"})
    assert banner(wrong_part) == (
        "reject",
        "Part CASE-SFF is not in this step: choose one of its parts.",
    )
    ok = {**form, "photo": (io.BytesIO(jpeg), "cam.jpg")}
    html = tablet.post("/station/KIT-1/defect", data=ok, headers=HX).text
    assert banner(html)[0] == "ok"
    with Session(app.extensions["taktline.engine"]) as db:
        defect = db.exec(select(Defect)).one()
        part = db.exec(select(Part).where(Part.sku == "PSU-450")).one()
        assert (defect.part_id, defect.note) == (part.id, "<b>dent</b>")
        photo = db.exec(select(DefectPhoto)).one()
        assert (photo.defect_id, photo.content_type, photo.data) == (defect.id, "image/jpeg", jpeg)


def test_a_photo_over_the_request_limit_is_refused_in_the_banner(
    app: Flask, tablet: FlaskClient
) -> None:
    start_unit(tablet)
    app.config["MAX_CONTENT_LENGTH"] = 50_000
    form = {"reason": "damaged", "disposition": "rework"}
    heic = {**form, "photo": (io.BytesIO(b"\0\0\0\x18ftypheic" + b"x" * 60_000), "a.heic")}
    response = tablet.post("/station/KIT-1/defect", data=heic, headers=HX)
    assert response.status_code == 200  # htmx swaps it in
    assert banner(response.text) == (
        "reject",
        "Too large to send: at most 50 KB. Nothing was recorded.",
    )
    assert rows(app, Defect) == 0
    desk = app.test_client().post("/orders/import", data={"x": "y" * 60_000})
    assert desk.status_code == 413  # not a tablet: the plain answer


def test_andon_is_raised_then_shown_acknowledged(app: Flask, tablet: FlaskClient) -> None:
    start_unit(tablet)
    dialog = tablet.get("/station/KIT-1/andon", headers=HX).text
    assert all(f'value="{r}"' in dialog for r in ("material", "quality", "maintenance", "help"))
    html = post(tablet, "/station/KIT-1/andon", reason="material")
    assert banner(html) == ("info", "Andon raised (Material): a supervisor is called.")
    assert "Andon: Material" in html and "waiting for a supervisor" in html
    assert "raised 0 min ago" in html
    assert 'data-testid="andon"' not in html  # one call at a time
    with write_session(app.extensions["taktline.engine"]) as db:
        call = db.exec(select(AndonCall)).one()
        sam = db.exec(select(Operator).where(Operator.badge == "SV2001")).one()
        call.acknowledged_at, call.acknowledged_by_id = utcnow(), sam.id
        db.add(call)
    header = tablet.get("/station/KIT-1/header", headers=HX).text
    assert "Sam Sutherland is coming" in header and "waiting" not in header


def test_andon_is_cancelled_from_the_tablet(any_kit: tuple[Flask, FlaskClient]) -> None:
    app, tablet = any_kit
    start_unit(tablet)
    nothing = post(tablet, "/station/KIT-1/andon/cancel")
    assert banner(nothing) == ("reject", "No andon call is open at this station.")
    post(tablet, "/station/KIT-1/andon", reason="maintenance")
    html = post(tablet, "/station/KIT-1/andon/cancel")
    assert banner(html) == ("ok", "Andon call cancelled.")
    assert 'data-testid="andon-state"' not in html and 'data-testid="andon"' in html
    assert rows(app, AndonCall, col(AndonCall.resolved_at).is_(None)) == 0


def test_a_scan_sent_before_an_outage_is_not_recorded(any_kit: tuple[Flask, FlaskClient]) -> None:
    """The tablet gave up on it (4 s) and told the worker "not recorded": so it is."""
    app, tablet = any_kit
    start_unit(tablet)
    sent = (utcnow() - timedelta(seconds=10)).isoformat()
    html = post(tablet, "/station/KIT-1/scan", data=CASE_MT, sent_at=sent)
    assert banner(html) == (
        "reject",
        "Not recorded: the tablet was offline. Scan again when connected.",
    )
    assert rows(app, Consumption) == 0
    fresh = post(tablet, "/station/KIT-1/scan", data=CASE_MT, sent_at=utcnow().isoformat())
    assert banner(fresh)[0] == "ok" and rows(app, Consumption) == 1


def test_sign_out(app: Flask, tablet: FlaskClient) -> None:
    start_unit(tablet)
    html = post(tablet, "/station/KIT-1/sign-out")
    assert banner(html) == ("ok", "Signed out. Goodbye, Alice Martin.")
    assert "Scan your badge to sign in" in html
    assert signed_in_operator(app) is None
    with Session(app.extensions["taktline.engine"]) as db:
        assert db.exec(select(StepRecord)).one().paused_at is not None  # the clock stopped


def test_a_scan_with_nobody_signed_in_is_a_badge_and_empty_scans_are_refused(
    tablet: FlaskClient,
) -> None:
    assert banner(scan(tablet, CASE_MT)) == (
        "reject",
        f"Badge {CASE_MT} is not known or not active.",
    )
    assert banner(scan(tablet, "")) == ("reject", "Scan not readable: scan again.")


def test_a_form_post_without_htmx_gets_the_whole_page(tablet: FlaskClient) -> None:
    response = tablet.post("/station/KIT-1/scan", data={"data": "OP1001"})
    assert response.status_code == 200
    assert "<html" in response.text and "Welcome, Alice Martin." in response.text


# -- live ----------------------------------------------------------------------------


def sse_events(response: Any, count: int) -> Iterator[tuple[str, str]]:
    buffer = ""
    seen = 0
    for chunk in response.response:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            event = next((ln[7:] for ln in block.splitlines() if ln.startswith("event: ")), "")
            data = "\n".join(ln[6:] for ln in block.splitlines() if ln.startswith("data: "))
            if event:
                yield event, data
                seen += 1
                if seen >= count:
                    return


def test_sse_sends_a_snapshot_on_connect_then_heartbeats(tablet: FlaskClient) -> None:
    scan(tablet, "OP1001")
    response = tablet.get("/station/KIT-1/events")
    try:
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        got = list(sse_events(response, 3))
    finally:
        response.close()
    assert [name for name, _ in got] == ["snapshot", "heartbeat", "heartbeat"]
    assert 'data-operator="OP1001"' in got[0][1] and "Alice Martin" in got[0][1]
    assert re.match(r"\d{4}-\d\d-\d\dT", got[1][1])


def test_a_badge_scanned_while_someone_works_hands_over(app: Flask, tablet: FlaskClient) -> None:
    start_unit(tablet)
    html = scan(tablet, "OP1003")
    assert banner(html) == ("ok", "Welcome, Chen Wei.")
    assert signed_in_operator(app) == "OP1003"
    assert 'data-testid="unit-serial">PC-000001<' in html  # the unit stays at the station


def test_a_change_reaches_the_open_stream_as_a_snapshot(tablet: FlaskClient) -> None:
    response = tablet.get("/station/KIT-1/events")
    try:
        events = sse_events(response, 10)
        first = next(events)
        assert first[0] == "snapshot" and 'data-operator=""' in first[1]
        scan(tablet, "OP1001")  # publishes the new state to the live hub
        name, data = next((n, d) for n, d in events if n == "snapshot")
    finally:
        response.close()
    assert 'data-operator="OP1001"' in data and "Welcome, Alice Martin." in data


def test_a_verdict_from_the_serial_scanner_shows_in_the_operators_language(
    app: Flask, tablet: FlaskClient
) -> None:
    from station import service
    from station.workflow import Scan

    post(tablet, "/station/KIT-1/pin", badge="OP1002", pin="4321")  # Bruno: French
    with write_session(app.extensions["taktline.engine"]) as db:
        outcome = service.handle(
            db, station_code="KIT-1", event=Scan(WRONG_PART), channel="mqtt", source="scanner1"
        )
    assert outcome.code == "no_unit"
    html = tablet.get("/station/KIT-1/banner", headers=HX).text
    assert banner(html) == ("reject", "Aucune unité en cours : commencez d’abord l’unité suivante.")
    assert f'data-ref="{outcome.msg_id}"' in html


def test_a_scan_rolled_back_to_break_a_deadlock_is_run_again(
    any_kit: tuple[Flask, FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL: the tablet's screw pick holds KIT-1 and waits for the screw lot,
    whose holder now asks for KIT-1: a circle. The database rolls the tablet's
    transaction back to break it; the tablet runs it again, and the operator sees the
    pick, recorded once."""
    app, tablet = any_kit
    engine = app.extensions["taktline.engine"]
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer at a time: no deadlock")
    start_unit(tablet)
    answers: list[Any] = []

    def wedge_scan() -> None:
        answers.append(
            tablet.post("/station/KIT-1/scan", data={"data": SCREWS, "source": "wedge"}, headers=HX)
        )

    typed = threading.Thread(target=wedge_scan)
    with engine.connect() as other, caplog.at_level("WARNING", logger="server.db"):
        held = other.begin()
        other.exec_driver_sql("SET LOCAL deadlock_timeout = '20s'")  # the tablet's fires first
        other.exec_driver_sql(
            "SELECT l.id FROM stocklot l JOIN part p ON p.id = l.part_id "
            "WHERE p.sku = 'SCR-M3' FOR UPDATE OF l"
        ).all()
        typed.start()
        time.sleep(0.5)  # the tablet holds KIT-1 and waits for the lot
        other.exec_driver_sql("SELECT id FROM station WHERE code = 'KIT-1' FOR UPDATE").all()
        held.rollback()
    typed.join(30)
    assert answers[0].status_code == 200, answers[0].text[:300]
    assert banner(answers[0].text)[0] == "ok"
    assert "deadlock" in caplog.text
    screws = select(Part.id).where(Part.sku == "SCR-M3").scalar_subquery()
    assert rows(app, Consumption, Consumption.part_id == screws) == 1
