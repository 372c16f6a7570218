"""``taktline generate``: realistic history written in bulk, invariants kept."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlmodel import Session, col, func, select

from server.models import (
    Consumption,
    Defect,
    StepRecord,
    StockLot,
    StockMovement,
    Unit,
    UnitOperation,
)
from server.tools.generate import HISTORY_TABLES, generate
from server.trace.recall import recall_lot
from server.trace.reconcile import reconcile
from tests.support.apps import CliRunner

# A fixed evening: the history is the same whatever time the suite runs.
NOW = datetime(2026, 3, 4, 20, 0, tzinfo=UTC)


def test_generate_keeps_ledger_serials_and_keys_consistent(any_demo_app: Flask) -> None:
    engine = any_demo_app.extensions["taktline.engine"]
    now = NOW
    # Seed 1 has units whose next operation would start just after now: queued, so
    # the unit is in progress, not completed.
    report = generate(engine, units=300, days=2, seed=1, now=now)
    assert report.units == 300
    with Session(engine) as db:
        assert db.exec(select(func.count()).select_from(Unit)).one() == 300
        done = db.exec(select(Unit).where(Unit.status == "completed")).all()
        unfinished = db.exec(
            select(func.count(func.distinct(UnitOperation.unit_id)))
            .join(Unit, col(Unit.id) == UnitOperation.unit_id)
            .where(Unit.status == "completed", UnitOperation.status != "done")
        ).one()
        assert unfinished == 0
        assert done and all(u.completed_at is not None and u.completed_at <= now for u in done)
        steps = db.exec(select(StepRecord).where(StepRecord.ended_at != None)).all()  # noqa: E711
        assert steps and all(s.ended_at > s.started_at for s in steps)
        assert all(s.started_at <= now for s in db.exec(select(StepRecord)))
        # Every lot balance equals its ledger, and none is negative.
        balances = dict(
            db.execute(
                sa.select(StockMovement.lot_id, func.sum(StockMovement.quantity)).group_by(
                    StockMovement.lot_id
                )
            ).all()
        )
        for lot in db.exec(select(StockLot)):
            assert lot.on_hand == balances.get(lot.id, 0) and lot.on_hand >= 0
        # A serial is built into one unit only.
        dupes = db.execute(
            sa.select(Consumption.serial)
            .where(Consumption.serial != None)  # noqa: E711
            .group_by(Consumption.serial)
            .having(func.count() > 1)
        ).all()
        assert dupes == []
        assert db.exec(select(func.count()).select_from(Defect)).one() == report.defects
        # The recall lot holds as many units as the picks of that lot say.
        recall = recall_lot(db, part_sku="TP-1", lot_code=report.recall_lot)
        picked = db.exec(
            select(func.count(func.distinct(Consumption.unit_id)))
            .join(StockLot, StockLot.id == Consumption.lot_id)
            .where(StockLot.lot_code == report.recall_lot)
        ).one()
        assert recall.units == picked > 50
    # A unit is completed only when every operation is done and picked (its BOM).
    checked = reconcile(engine, allow_open_steps=True)
    assert checked.clean, checked.lines()
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            # The bulk write turns the checks off on its connection, and back on after.
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def _keys(engine: sa.Engine) -> dict[str, Any]:
    """Every index, unique constraint and foreign key of the tables generate writes."""
    inspector = sa.inspect(engine)
    return {
        table: (
            sorted(
                (i["name"], tuple(i["column_names"]), i["unique"])
                for i in inspector.get_indexes(table)
            ),
            sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            sorted(
                (f["name"] or "", tuple(f["constrained_columns"]), f["referred_table"])
                for f in inspector.get_foreign_keys(table)
            ),
        )
        for table in HISTORY_TABLES
    }


def test_generate_builds_the_same_indexes_and_keys_again(any_demo_app: Flask) -> None:
    # A first load runs with its secondary indexes (and PostgreSQL's foreign keys)
    # dropped and built again at the end; an append into a bigger history keeps them.
    engine = any_demo_app.extensions["taktline.engine"]
    before = _keys(engine)
    assert sum(len(indexes) for indexes, _, _ in before.values()) > 20
    generate(engine, units=120, days=1, seed=5, now=NOW)
    assert _keys(engine) == before
    generate(engine, units=30, days=1, seed=6, now=NOW)
    assert _keys(engine) == before
    with Session(engine) as db:
        assert db.exec(select(func.count()).select_from(Unit)).one() == 150
        # Every consumption points at a unit, an operation of it and a lot or a serial.
        orphans = db.execute(
            sa.text(
                "SELECT COUNT(*) FROM consumption c LEFT JOIN unit u ON u.id = c.unit_id "
                "LEFT JOIN unitoperation o ON o.id = c.unit_operation_id "
                "WHERE u.id IS NULL OR o.unit_id <> c.unit_id "
                "OR (c.lot_id IS NULL AND c.serial IS NULL)"
            )
        ).scalar_one()
        assert orphans == 0
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            # Re-added foreign keys are checked ones, not NOT VALID.
            assert (
                conn.exec_driver_sql(
                    "SELECT COUNT(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated"
                ).scalar_one()
                == 0
            )
    else:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []


def test_generate_twice_appends_with_fresh_serials(demo_app: Flask) -> None:
    engine = demo_app.extensions["taktline.engine"]
    first = generate(engine, units=40, days=1, seed=1, now=NOW)
    second = generate(engine, units=40, days=1, seed=1, now=NOW)
    assert first.recall_lot != second.recall_lot
    with Session(engine) as db:
        serials = db.exec(select(Unit.serial)).all()
    assert len(serials) == len(set(serials)) == 80


def test_generate_command_seeds_an_empty_database_and_shows_progress(
    runner: CliRunner, app: Flask
) -> None:
    result = runner.invoke(["generate", "--units", "60", "--days", "3"])
    assert result.exit_code == 0, result.output
    assert "Demo plant loaded." in result.output and "Generating units" in result.output
    assert "60 units in" in result.output
    with Session(app.extensions["taktline.engine"]) as db:
        assert db.exec(select(func.count()).select_from(Unit)).one() == 60


def test_generate_refuses_nonsense(runner: CliRunner) -> None:
    result = runner.invoke(["generate", "--units", "0"])
    assert result.exit_code != 0 and "--units" in result.output
