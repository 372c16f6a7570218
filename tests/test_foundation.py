"""Settings, migrations, the app factory and the demo plant."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from sqlmodel import Session, SQLModel, func, select

from server import settings
from server.models import CustomerOrder, Operator, Part, PartIdentifier, Station, StockLot
from tests.support.apps import login

ROOT = Path(__file__).parent.parent


def test_every_setting_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [s.name for s in settings.SETTINGS if f"TAKTLINE_{s.name}" not in doc]
    assert missing == []


def test_settings_come_from_file_then_environment(tmp_path: Path) -> None:
    (tmp_path / "taktline.toml").write_text('port = 9000\nlog_level = "DEBUG"\n')
    resolved = settings.load(tmp_path, environ={"TAKTLINE_PORT": "9100"})
    assert resolved["PORT"] == 9100
    assert resolved["LOG_LEVEL"] == "DEBUG"
    assert resolved["DATABASE_URL"] == f"sqlite:///{tmp_path / 'taktline.db'}"


def test_bad_setting_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="PORT.*TAKTLINE_PORT"):
        settings.load(tmp_path, environ={"TAKTLINE_PORT": "eighty"})
    (tmp_path / "taktline.toml").write_text("colour = 'blue'\n")
    with pytest.raises(ValueError, match="unknown setting.*COLOUR"):
        settings.load(tmp_path, environ={})


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = settings.load(tmp_path, environ={})["SECRET_KEY"]
    second = settings.load(tmp_path, environ={})["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_migrations_match_the_models(any_db_url: str) -> None:
    engine = sa.create_engine(any_db_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_sqlite_pragmas(app: Flask) -> None:
    with app.extensions["taktline.engine"].connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def test_demo_plant_is_believable(any_demo_app: Flask) -> None:
    with Session(any_demo_app.extensions["taktline.engine"]) as db:
        kinds = {s.kind for s in db.exec(select(Station))}
        assert {"kitting", "board", "final", "test"} <= kinds
        assert db.exec(select(func.count()).select_from(Part)).one() >= 30
        tracking = {p.tracking for p in db.exec(select(Part))}
        assert {"none", "lot", "serial"} <= tracking
        assert len({tuple(o.skills) for o in db.exec(select(Operator))}) >= 3
        assert db.exec(select(func.count()).select_from(CustomerOrder)).one() >= 3
        serial_lots = db.exec(select(StockLot).where(StockLot.serial != "")).all()
        assert serial_lots and all(lot.on_hand == 1 for lot in serial_lots)
        gtins = db.exec(select(PartIdentifier).where(PartIdentifier.kind == "gtin")).all()
    import biip

    for ident in gtins:
        assert biip.parse(ident.value).gtin is not None, ident.value


def test_home_page_lists_the_stations(demo_client: object) -> None:
    html = demo_client.get("/").get_data(as_text=True)  # type: ignore[attr-defined]
    assert re.search(r"BRD-2\s*·\s*Board assembly 2", html)


def test_desktop_sign_in(demo_client: object) -> None:
    bad = demo_client.post("/login", data={"username": "supervisor", "password": "x"})  # type: ignore[attr-defined]
    assert bad.status_code == 401
    assert "wrong password" in bad.get_data(as_text=True)
    login(demo_client, "supervisor")  # type: ignore[arg-type]
    assert demo_client.get("/healthz").json["user"] == "Sam Sutherland"  # type: ignore[attr-defined]


def test_open_redirect_refused(demo_client: object) -> None:
    r = demo_client.post("/login?next=//evil.example/x",  # type: ignore[attr-defined]
                         data={"username": "admin", "password": "admin"})
    assert r.status_code == 303 and r.headers["Location"] == "/"
