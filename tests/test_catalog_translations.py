"""Catalog texts per locale (issue 16): the import's ``translations`` field, checked
like every other field, and the French tablet showing them (fallback: the catalog's
own text)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlmodel import Session, select

from server.db import write_session
from server.models import Operator, Part, Reason
from tests.support.apps import CliRunner, login
from tests.test_station_views import HX, banner, bind, post, release_order

DOC = """\
parts:
  - {sku: P-1, description: Widget, translations: {fr: {description: Bidule}}}
  - {sku: P-2, description: Gadget}
"""
BAD = """\
parts:
  - {sku: P-1, description: Widget, translations: {fr: {name: Bidule}}}
  - {sku: P-2, description: Gadget, translations: {"<x>": {description: y}}}
  - {sku: P-3, description: Gizmo, translations: [fr]}
"""


def test_translations_are_imported_and_checked(any_app: Flask, tmp_path: Path) -> None:
    app, runner = any_app, CliRunner(any_app)
    good = tmp_path / "good.yaml"
    good.write_text(DOC)
    result = runner.invoke(["import", str(good)])
    assert result.exit_code == 0, result.output
    with Session(app.extensions["taktline.engine"]) as db:
        parts = {p.sku: p.translations for p in db.exec(select(Part))}
    assert parts == {"P-1": {"fr": {"description": "Bidule"}}, "P-2": {}}
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = runner.invoke(["import", str(bad)])
    assert result.exit_code != 0
    assert "line 2: translations: fr: 'name' is not translatable" in result.output
    assert "line 3: translations: '<x>' is not a locale" in result.output
    assert "line 4: translations: must map a locale to its texts" in result.output


REASONS = """\
reasons:
  andon:
    - {code: parts, name: Parts short, translations: {fr: {name: Pièces manquantes}}}
    - {code: tool, name: Tool broken}
  defect:
    - {code: scratch, name: Scratched, translations: {fr: {name: Rayé}}}
"""


def test_reasons_come_from_the_catalog_in_the_workers_language(
    any_demo_app: Flask, tmp_path: Path
) -> None:
    app = any_demo_app
    doc = tmp_path / "reasons.yaml"
    doc.write_text(REASONS)
    result = CliRunner(app).invoke(["import", str(doc)])
    assert result.exit_code == 0, result.output
    with Session(app.extensions["taktline.engine"]) as db:
        rows = db.exec(select(Reason).order_by(Reason.kind, Reason.position)).all()
    assert [(r.kind, r.code) for r in rows] == [
        ("andon", "parts"),
        ("andon", "tool"),
        ("defect", "scratch"),
    ]
    release_order(app)
    tablet = app.test_client()
    bind(app, tablet, "KIT-1")
    with write_session(app.extensions["taktline.engine"]) as db:
        alice = db.exec(select(Operator).where(Operator.badge == "OP1001")).one()
        alice.locale = "fr"
        db.add(alice)
    post(tablet, "/station/KIT-1/scan", data="OP1001")
    post(tablet, "/station/KIT-1/start")
    dialog = tablet.get("/station/KIT-1/andon", headers=HX).text
    assert "Pièces manquantes" in dialog and "Tool broken" in dialog and "Matériel" not in dialog
    html = post(tablet, "/station/KIT-1/andon", reason="parts")
    assert banner(html) == (
        "info",
        "Andon déclenché (Pièces manquantes) : un responsable est appelé.",
    )
    assert "Andon : Pièces manquantes" in html
    desk = app.test_client()
    login(desk, "supervisor")
    board = desk.get("/board").get_data(as_text=True)
    assert '<p class="andon-reason">Andon: Parts short</p>' in board  # the name, not "parts"
    defect = tablet.get("/station/KIT-1/defect", headers=HX).text
    assert "Rayé" in defect and "Pièce abîmée" not in defect
    refused = post(tablet, "/station/KIT-1/defect", reason="damaged", disposition="rework")
    assert banner(refused)[0] == "reject"  # a built-in reason the catalog replaced
    html = post(tablet, "/station/KIT-1/defect", reason="scratch", disposition="rework")
    assert banner(html) == ("ok", "Défaut Rayé enregistré sur l’unité PC-000001.")
