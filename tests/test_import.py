"""`taktline import`: all or nothing, and every problem named by line and field."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from sqlmodel import Session, func, select

from server.models import Part, PartSubstitute, StockLot, StockMovement
from tests.support.apps import CliRunner

GOOD = """\
locations:
  - {code: WH, name: Warehouse}
parts:
  - {sku: P-1, description: Widget, tracking: lot, gtins: ["9506000001005"]}
  - {sku: P-2, description: Gadget, tracking: serial, substitutes: []}
  - {sku: P-3, description: Other widget, tracking: lot, substitutes: [P-1]}
stock:
  - {part: P-1, location: WH, lot: L-1, qty: 10, expires: "2030-01-31"}
  - {part: P-2, location: WH, serial_format: "SN{:03d}", count: 3}
"""

BAD = """\
locations:
  - {code: WH, name: Warehouse}
parts:
  - {sku: P-1, description: Widget, tracking: lot}
  - {sku: P-9, description: Broken, tracking: sometimes}
  - {sku: P-8, description: Bad GTIN, gtins: ["9506000001006"]}
stock:
  - {part: P-1, location: WH, lot: L-1, qty: 10}
  - {part: NOPE, location: WH, qty: 1}
  - {part: P-1, location: WH, lot: L-2, qty: ten}
"""


def _counts(app: Flask) -> tuple[int, int, int]:
    with Session(app.extensions["taktline.engine"]) as db:
        return (
            db.exec(select(func.count()).select_from(Part)).one(),
            db.exec(select(func.count()).select_from(StockLot)).one(),
            db.exec(select(func.count()).select_from(StockMovement)).one(),
        )


def test_import_yaml(app: Flask, runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(GOOD)
    result = runner.invoke(["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 parts" in result.output
    with Session(app.extensions["taktline.engine"]) as db:
        lots = db.exec(select(StockLot).order_by(StockLot.id)).all()
        assert [(lot.lot_code, lot.serial, lot.on_hand) for lot in lots] == [
            ("L-1", "", 10),
            ("", "SN001", 1),
            ("", "SN002", 1),
            ("", "SN003", 1),
        ]
        assert len(db.exec(select(PartSubstitute)).all()) == 1


def test_bad_yaml_names_line_and_field_and_changes_nothing(
    app: Flask, runner: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    before = _counts(app)
    result = runner.invoke(["import", str(path)])
    assert result.exit_code != 0
    out = result.output
    assert "line 5: tracking: 'sometimes' is not one of none, lot, serial" in out
    assert "line 6: gtins: '9506000001006' is not a valid GTIN" in out
    assert "line 9: part: unknown part 'NOPE'" in out
    assert "line 10: qty: 'ten' is not a whole number" in out
    assert "nothing imported" in out
    assert _counts(app) == before == (0, 0, 0)


def test_bad_csv_names_the_line(app: Flask, runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "loc.yaml").write_text(
        "locations:\n  - {code: WH, name: W}\n"
        "parts:\n  - {sku: P-1, description: W, tracking: lot}\n"
    )
    assert runner.invoke(["import", str(tmp_path / "loc.yaml")]).exit_code == 0
    before = _counts(app)
    csv_path = tmp_path / "stock.csv"
    csv_path.write_text("part,location,lot,qty\nP-1,WH,L-1,5\nP-1,XX,L-2,5\nP-1,WH,L-3,-2\n")
    result = runner.invoke(["import", str(csv_path)])
    assert result.exit_code != 0
    assert "line 3: location: unknown location 'XX'" in result.output
    assert "line 4: qty: must be at least 1" in result.output
    assert _counts(app) == before


def test_malformed_yaml(app: Flask, runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("parts:\n  - {sku: P-1\n  - oops: [\n")
    result = runner.invoke(["import", str(path)])
    assert result.exit_code != 0
    assert "yaml:" in result.output and "line" in result.output
    assert _counts(app) == (0, 0, 0)


def test_seed_demo_refuses_a_full_database(demo_app: Flask) -> None:
    result = CliRunner(demo_app).invoke(["seed-demo"])
    assert result.exit_code != 0
    assert "already holds a plant" in result.output
