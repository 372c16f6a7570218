"""The quality pages over real HTTP (Flask's client) on the demo plant: the tablet shows
the step's checks; a failed check's NCR on the quality page, decided rework; the rework
station removes and installs a motherboard and re-runs the torque check; the unit page,
its JSON and PDF, the recall page, the board's FPY, the quarantine and the control
chart with Cpk; bad values refused and nothing recorded."""

from __future__ import annotations

import io
import re
from typing import Any

from flask import Flask
from sqlmodel import Session, select

from server.models import Check, CheckResult, Consumption, NonConformance, Part
from server.tools.generate import generate
from server.tools.simulation.operators import TINY_PNG
from station.workflow import CompleteStep, DeviceEvent, Scan, SignIn, StartUnit
from tests.support.apps import CliRunner, login
from tests.support.building import act, at_test_and_pack, build_step, place_and_release, scans_for
from tests.support.pdf_text import pdf_text
from tests.test_station_views import bind

HX = {"HX-Request": "true"}
GTIN = "09506000001142"  # MB-B760


def torque(value: float) -> DeviceEvent:
    return DeviceEvent("torque", {"value": value, "unit": "Nm", "ok": True}, source="torque1")


def results(engine: Any) -> int:
    with Session(engine) as db:
        return len(db.exec(select(CheckResult)).all())


def picked_at_board(engine: Any, number: str, badge: str, pin: str = "") -> str:
    """A unit kitted, then every board-assembly pick scanned at BRD-1 by ``badge``: the
    torque check is what is left of the step. Its serial."""
    [serial] = place_and_release(engine, number=number, product="PC", quantity=1,
                                 options=["i5", "mem16", "ssd512", "mt"])  # fmt: skip
    build_step(engine, "KIT-1", serial, badge="OP1001")
    assert act(engine, "BRD-1", SignIn(badge, pin)).accepted
    state = act(engine, "BRD-1", StartUnit(serial)).state
    for pick in state.picks:
        for data in scans_for(engine, unit_id=state.unit.id, part_id=pick.part_id,
                              substitutes=pick.substitutes, qty=pick.remaining):  # fmt: skip
            assert act(engine, "BRD-1", Scan(data)).accepted
    return serial


def test_ncr_rework_and_records_through_the_pages(any_demo_app: Flask) -> None:
    app = any_demo_app
    engine = app.extensions["taktline.engine"]
    serial = picked_at_board(engine, "SO-QV", "OP1002", "4321")  # Bruno reads French
    tablet = app.test_client()
    bind(app, tablet, "BRD-1")
    screen = tablet.get("/station/BRD-1").get_data(as_text=True)
    assert re.search(
        r'data-code="TQ-MB".*?Couple de serrage des vis de la carte mère.*?0\.5–0\.7 Nm.*?0/4',
        screen,
        re.S,
    )
    assert "par l’outil torque" in screen  # the tablet speaks the operator's language
    # A torque check is never typed on the tablet; an unusable number changes nothing.
    for value in ("0.6", "nan", "1e400"):
        html = tablet.post("/station/BRD-1/check", data={"check": "TQ-MB", "value": value},
                           headers=HX).get_data(as_text=True)  # fmt: skip
        assert 'class="banner reject"' in html
        assert "pas saisi" in html  # French: "measured by the torque tool, not typed"
    assert results(engine) == 0
    act(engine, "BRD-1", torque(0.6))
    for value in (0.9, 0.95, 0.3):
        act(engine, "BRD-1", torque(value))
    with Session(engine) as db:
        ncr = db.exec(select(NonConformance)).one()
        board_part = db.exec(select(Part).where(Part.sku == "MB-B760")).one()
        old = db.exec(select(Consumption.serial).where(Consumption.part_id == board_part.id)).one()

    desk = app.test_client()
    login(desk, "supervisor")
    page = desk.get("/quality/?status=open").get_data(as_text=True)
    assert f"NCR-{ncr.id:05d}" in page and serial in page and "0.3 Nm" in page
    assert (
        desk.post(f"/quality/ncr/{ncr.id}/decide", data={"disposition": "use_as_is"}).status_code
        == 303
    )
    assert "Give a reason" in desk.get(f"/quality/ncr/{ncr.id}").get_data(as_text=True)
    desk.post(f"/quality/ncr/{ncr.id}/decide", data={"disposition": "rework"})
    rework = desk.get("/quality/rework/RWK-1").get_data(as_text=True)
    assert serial in rework and 'data-testid="rework-queue"' in rework
    assert desk.get("/quality/rework/BRD-1").status_code == 404  # not a rework station
    base = f"/quality/rework/RWK-1/{ncr.id}"
    desk.post(f"{base}/remove", data={"data": f"(01){GTIN}(21){old}"})
    desk.post(f"{base}/install", data={"data": f"(01){GTIN}(21)MBBX00021"})
    before = results(engine)
    refused = desk.post(f"{base}/measure", data={"value": "inf"}, follow_redirects=True)
    assert "needs a number" in refused.get_data(as_text=True) and results(engine) == before
    for value in ("0.6", "0.62", "0.58", "0.61"):
        desk.post(f"{base}/measure", data={"value": value})
    done = desk.post(f"{base}/finish", follow_redirects=True).get_data(as_text=True)
    assert "Rework finished" in done

    unit = desk.get(f"/units/{serial}").get_data(as_text=True)
    assert 'data-testid="component-changes"' in unit and "MBBX00021" in unit
    assert re.search(rf"{old}.*?removed \d{{4}}-", unit, re.S)
    doc = desk.get(f"/units/{serial}.json").get_json()
    assert [c["action"] for c in doc["component_changes"]] == ["removed", "installed"]
    assert "Checks and measurements" in pdf_text(desk.get(f"/units/{serial}.pdf").data)
    api = desk.get(f"/api/v1/units/{serial}").get_json()
    assert api is not None
    recall = desk.get(f"/trace?serial={old}").get_data(as_text=True)
    assert serial in recall and 'data-testid="removed"' in recall
    assert desk.get("/quality/quarantine").get_data(as_text=True).count(old) == 1

    board = desk.get("/board").get_data(as_text=True)
    fpy = re.search(r'data-station="BRD-1"><td>BRD-1</td><td>(\d+)</td><td>(\d+)</td>', board)
    assert fpy and fpy.groups() == ("1", "0")  # reworked: not first pass
    charts = desk.get("/quality/charts").get_data(as_text=True)
    check_id = re.search(r'/quality/charts/(\d+)">Motherboard screw torque', charts).group(1)  # type: ignore[union-attr]
    chart = desk.get(f"/quality/charts/{check_id}").get_data(as_text=True)
    assert re.search(r'data-testid="cpk">-?\d+\.\d\d<', chart)
    assert 'data-testid="spec-limits">0.5 – 0.7 Nm' in chart
    api_chart = desk.get(f"/api/v1/quality/checks/{check_id}/chart").get_json()
    assert len(api_chart["values"]) == 8 and api_chart["cpk"] is not None
    assert desk.get("/api/v1/quality/checks/abc/chart").status_code == 404
    ncrs = desk.get("/api/v1/quality/ncrs?status=closed").get_json()["ncrs"]
    assert [n["unit"] for n in ncrs] == [serial]

    change_id = re.search(
        r"/quality/quarantine/(\d+)/release", desk.get("/quality/quarantine").get_data(as_text=True)
    ).group(1)  # type: ignore[union-attr]
    desk.post(f"/quality/quarantine/{change_id}/release")
    assert old not in desk.get("/quality/quarantine").get_data(as_text=True)

    reconciled = CliRunner(app).invoke(["reconcile"])
    assert reconciled.exit_code == 0, reconciled.output
    for line in (
        "[ok] completed units consumed exactly their BOM",
        "[ok] completed units passed every check",
        "[ok] quarantine holds the removals not yet released",
    ):
        assert line in reconciled.output


def test_the_control_chart_shows_the_demo_torque_data(demo_app: Flask) -> None:
    """The demo's history (taktline generate): the torque chart with limits and Cpk."""
    engine = demo_app.extensions["taktline.engine"]
    generate(engine, units=40, days=1, seed=5)
    desk = demo_app.test_client()
    login(desk, "supervisor")
    charts = desk.get("/quality/charts").get_data(as_text=True)
    found = re.search(
        r'/quality/charts/(\d+)">Motherboard screw torque \(TQ-MB\)</a></td><td>(\d+)<', charts
    )
    assert found is not None and int(found.group(2)) >= 40  # four screws a unit
    chart = desk.get(f"/quality/charts/{found.group(1)}").get_data(as_text=True)
    assert 'data-testid="spec-limits">0.5 – 0.7 Nm' in chart
    cpk = float(re.search(r'data-testid="cpk">(-?\d+\.\d\d)<', chart).group(1))  # type: ignore[union-attr]
    assert 0.6 < cpk < 1.6  # sigma a sixth of the tolerance: about 1
    limits = re.search(r'data-testid="control-limits">([\d.]+) – ([\d.]+) Nm', chart)
    assert limits is not None and float(limits.group(1)) < 0.6 < float(limits.group(2))
    assert 'id="chart-i"' in chart and "chart-4.6.1.umd.min.js" in chart


def test_a_label_photo_from_the_tablet_in_the_record(demo_app: Flask) -> None:
    """Test and pack: the LED on the tablet, the label photo from its camera (a bad file
    refused, nothing recorded), the weight from the scale; the photo is a thumbnail in
    the device history record."""
    engine = demo_app.extensions["taktline.engine"]
    serial = at_test_and_pack(engine, number="SO-PH", badge="OP1003")
    tablet = demo_app.test_client()
    bind(demo_app, tablet, "TST-1")

    def send(**form: Any) -> str:
        return tablet.post("/station/TST-1/check", data=form, headers=HX).get_data(as_text=True)

    assert "Power LED lights green: OK." in send(check="LED", passed="1")
    refused = send(check="LABEL", photo=(io.BytesIO(b"MZ not an image"), "x.exe", "text/plain"))
    assert 'class="banner reject"' in refused and "JPEG, PNG or WebP" in refused
    before = results(engine)
    taken = send(check="LABEL", photo=(io.BytesIO(TINY_PNG), "label.png", "image/png"))
    assert "Photo of the rating label: OK." in taken and results(engine) == before + 1
    weight = DeviceEvent("weight", {"value": 9.43, "unit": "kg"}, source="scale1")
    assert act(engine, "TST-1", weight).code == "check_passed"
    assert act(engine, "TST-1", CompleteStep()).accepted
    desk = demo_app.test_client()
    login(desk, "supervisor")
    unit = desk.get(f"/units/{serial}").get_data(as_text=True)
    link = re.search(r'href="(/quality/photos/[^"]+)"', unit)
    assert link is not None
    served = desk.get(link.group(1))
    assert served.data == TINY_PNG
    served.close()
    assert desk.get("/quality/photos/../../etc/passwd").status_code == 404
    pdf = desk.get(f"/units/{serial}.pdf").data
    assert b"/Subtype /Image" in pdf
    assert "Photo of the rating label" in pdf_text(pdf)


def test_refusals_are_told_in_the_readers_language(demo_app: Flask) -> None:
    from flask_babel import force_locale

    from server.quality import ncr as ncrs
    from server.quality.views import refusal

    mine = ncrs.QualityError("rerun_first", name="Couple vis", passed=2, needed=4)
    station = ncrs.QualityError("serial_quarantined", serial="MBBX00001", sku="MB-B760")
    assert str(mine) == "Re-run Couple vis first (2 of 4 passed)."  # English for the logs
    with demo_app.test_request_context(), force_locale("fr"):
        assert refusal(mine) == "Refaites d’abord Couple vis (2 sur 4 conformes)."
        assert refusal(station).startswith(
            "Le numéro de série MBBX00001 de MB-B760 est en quarantaine"
        )


def test_a_typed_value_is_read_the_workers_way(demo_app: Flask) -> None:
    """A French worker types a decimal comma ("0,62"); on an English tablet the comma
    groups thousands, so "0,62" is refused as unreadable and nothing is recorded."""
    app = demo_app
    engine = app.extensions["taktline.engine"]
    with Session(engine) as db:  # the board's torque typed by hand, one value
        check = db.exec(select(Check).where(Check.code == "TQ-MB")).one()
        check.kind, check.count, check.source = "measure", 1, "typed"
        db.add(check)
        db.commit()
    picked_at_board(engine, "SO-TY", "OP1001")  # Alice reads English
    tablet = app.test_client()
    bind(app, tablet, "BRD-1")

    def typed(value: str) -> str:
        return tablet.post("/station/BRD-1/check", data={"check": "TQ-MB", "value": value},
                           headers=HX).get_data(as_text=True)  # fmt: skip

    for value in ("0,62", "0.6.2", "six"):
        html = typed(value)
        assert "banner reject" in html and "needs a number (0.5–0.7 Nm)" in html, value
    assert results(engine) == 0

    assert act(engine, "BRD-1", SignIn("OP1002", "4321")).accepted  # Bruno reads French
    html = typed("0,62")
    assert 'class="banner ok"' in html and "OK." in html
    with Session(engine) as db:
        [result] = db.exec(select(CheckResult)).all()
    assert result.value == 0.62 and result.passed
