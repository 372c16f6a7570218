"""Catalog texts per locale (issue 16): the import's ``translations`` field, checked
like every other field, and the French tablet showing them (fallback: the catalog's
own text)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlmodel import Session, select

from server.models import Part
from tests.support.apps import CliRunner

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
