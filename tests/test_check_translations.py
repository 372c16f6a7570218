"""Quality checks in the operator's language: the import's ``translations`` of a check
(name, instructions), the tablet's checks list and the banner of a check's verdict in
French for a French operator, in English for an English one, the catalog's own name
where a check has no translation. The event row keeps the English text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from server.db import write_session
from server.models import Check, Event
from station.workflow import DeviceEvent
from tests.support.apps import CliRunner
from tests.support.building import act, at_test_and_pack
from tests.test_station_views import banner, bind, post, sse_events

LED_FR = "Voyant d’alimentation allumé en vert"
WEIGHT_FR = "Poids emballé"


def at_test_station(app: Flask, badge: str, pin: str = "") -> FlaskClient:
    """A unit built up to test and pack, started at TST-1 by ``badge`` with its picks
    scanned: the checks are what is left. The tablet bound to TST-1."""
    at_test_and_pack(app.extensions["taktline.engine"], number="SO-TR", badge=badge, pin=pin)
    tablet = app.test_client()
    bind(app, tablet, "TST-1")
    return tablet


def checks_list(html: str) -> str:
    start = html.index('data-testid="checks"')
    return html[start : html.index("</table>", start)]


def led_id(app: Flask) -> int:
    with Session(app.extensions["taktline.engine"]) as db:
        check = db.exec(select(Check).where(Check.code == "LED")).one()
        assert check.id is not None
        return check.id


def weighed(app: Flask, kg: float) -> str:
    """A scale reading, as the bridge sends it: its verdict's code."""
    reading = DeviceEvent("weight", {"value": kg, "unit": "kg"}, source="scale1")
    return act(app.extensions["taktline.engine"], "TST-1", reading).code


def stored(app: Flask, code: str) -> tuple[str, Any]:
    with Session(app.extensions["taktline.engine"]) as db:
        event = db.exec(select(Event).where(Event.code == code)).one()
        return event.reason, event.params


def test_a_french_operator_sees_the_checks_in_french(any_demo_app: Flask) -> None:
    app = any_demo_app
    tablet = at_test_station(app, "OP1002", "4321")  # Bruno reads French
    checks = checks_list(tablet.get("/station/TST-1").text)
    assert LED_FR in checks and "Photo de l’étiquette signalétique" in checks
    assert WEIGHT_FR in checks
    assert "Power LED lights green" not in checks and "Packed weight" not in checks

    html = post(tablet, "/station/TST-1/check", check="LED", passed="1")
    assert banner(html) == ("ok", f"{LED_FR} : OK.")
    assert banner(tablet.get("/station/TST-1").text) == ("ok", f"{LED_FR} : OK.")  # re-read
    # The event row keeps the catalog's text, for the people who read the table.
    assert stored(app, "check_passed") == (
        "Power LED lights green: OK.",
        {"name": "Power LED lights green", "check_id": led_id(app)},
    )
    refused = post(tablet, "/station/TST-1/check", check="LED", passed="1")
    assert banner(refused) == ("reject", f"{LED_FR} est déjà complet.")

    # A reading from the scale: the screen the live stream sends speaks French too.
    assert weighed(app, 9.43) == "check_passed"
    response = tablet.get("/station/TST-1/events")
    try:
        name, data = next(sse_events(response, 1))
    finally:
        response.close()
    assert name == "snapshot" and banner(data) == ("ok", f"{WEIGHT_FR} : OK.")


def test_an_english_operator_sees_the_catalogs_names(any_demo_app: Flask) -> None:
    app = any_demo_app
    tablet = at_test_station(app, "OP1003")  # Chen reads English
    checks = checks_list(tablet.get("/station/TST-1").text)
    assert "Power LED lights green" in checks and "Packed weight" in checks
    assert LED_FR not in checks and WEIGHT_FR not in checks
    html = post(tablet, "/station/TST-1/check", check="LED", passed="1")
    assert banner(html) == ("ok", "Power LED lights green: OK.")
    assert weighed(app, 12.0) == "out_of_limits"
    assert banner(tablet.get("/station/TST-1").text) == (
        "reject",
        "Packed weight 12 kg is out of limits (8.8–10.4 kg): do it again (tries left: 2).",
    )


def test_a_check_without_a_translation_shows_its_own_name(any_demo_app: Flask) -> None:
    app = any_demo_app
    with write_session(app.extensions["taktline.engine"]) as db:
        led = db.exec(select(Check).where(Check.code == "LED")).one()
        led.translations = {}
        label = db.exec(select(Check).where(Check.code == "LABEL")).one()
        label.translations = {"fr": {"name": "<img src=x onerror=alert(1)>"}}  # outside text
        db.add_all([led, label])
    tablet = at_test_station(app, "OP1002", "4321")
    html = tablet.get("/station/TST-1").text
    checks = checks_list(html)
    assert "Power LED lights green" in checks and LED_FR not in checks
    assert WEIGHT_FR in checks  # the others still translated
    assert "&lt;img src=x onerror=alert(1)&gt;" in checks and "<img src=x" not in html
    html = post(tablet, "/station/TST-1/check", check="LED", passed="0")
    assert banner(html) == (
        "reject",
        "Power LED lights green non conforme : recommencez (essais restants : 1).",
    )


CHECKS = """\
products:
  - code: BOX
    name: Box
    operations:
      - code: SHUT
        sequence: 10
        name: Shut the box
        station_kind: kitting
        checks:
          - code: LID
            kind: confirm
            name: Lid closed
            instructions: Press both corners down.
            translations:
              fr: {name: Couvercle fermé, instructions: Appuyez sur les deux coins.}
          - {code: SEAL, kind: confirm, name: Seal intact}
"""
BAD_CHECKS = """\
products:
  - code: CRATE
    name: Crate
    operations:
      - code: SHUT
        sequence: 10
        name: Shut the box
        station_kind: kitting
        checks:
          - {code: LID, kind: confirm, name: Lid closed, translations: {fr: {unit: mm}}}
          - {code: SEAL, kind: confirm, name: Seal, translations: {fr: {name: "%s"}}}
"""


def test_check_translations_are_imported_and_checked(any_app: Flask, tmp_path: Path) -> None:
    app, runner = any_app, CliRunner(any_app)
    good = tmp_path / "checks.yaml"
    good.write_text(CHECKS)
    result = runner.invoke(["import", str(good)])
    assert result.exit_code == 0, result.output
    with Session(app.extensions["taktline.engine"]) as db:
        found = {c.code: c.translations for c in db.exec(select(Check))}
    assert found == {
        "LID": {"fr": {"name": "Couvercle fermé", "instructions": "Appuyez sur les deux coins."}},
        "SEAL": {},
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_CHECKS % ("x" * 201))
    result = runner.invoke(["import", str(bad)])
    assert result.exit_code != 0
    assert "line 10: translations: fr: 'unit' is not translatable" in result.output
    assert "line 11: translations: fr.name: text of at most 200" in result.output
