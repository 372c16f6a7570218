"""Fixtures: a fresh app per test on a real database, built by the real migrations.

SQLite always. PostgreSQL too when TAKTLINE_TEST_DATABASE_URL is set (CI sets it):
tests that take ``any_db_url`` / ``any_app`` run once per database.

Helpers live in ``tests/support`` (``apps``: ``make_app``, ``CliRunner``, ``login``;
``databases``: ``fresh_db``, ``DB_KINDS``). The browser tests' fixtures (``live_server``,
``chromium``, ``browser_page``, ``page_log``) are in ``tests/support/browser.py``,
registered here.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from server.db import dispose_engine, get_engine, migrate
from tests.support.apps import CliRunner, make_app
from tests.support.databases import DB_KINDS, PG_URL, fresh_db

pytest_plugins = ["tests.support.browser"]


@pytest.fixture(scope="session")
def _sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Migrated SQLite files, empty and with the demo plant, copied for each test."""
    from server.tools.demo import seed

    base = tmp_path_factory.mktemp("templates")
    empty, demo = base / "empty.db", base / "demo.db"
    migrate.upgrade(f"sqlite:///{empty}")
    dispose_engine(f"sqlite:///{empty}")
    shutil.copy(empty, demo)
    seed.seed(get_engine(f"sqlite:///{demo}"))
    dispose_engine(f"sqlite:///{demo}")
    return {"empty": empty, "demo": demo}


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str]:
    """A private PostgreSQL database for this test run, migrated once."""
    if not PG_URL:
        pytest.skip("TAKTLINE_TEST_DATABASE_URL is not set")
    name = f"taktline_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    dispose_engine(url)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated SQLite database."""
    yield from fresh_db("sqlite", request, tmp_path, demo=False)


@pytest.fixture(params=DB_KINDS)
def any_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, migrated database: SQLite, and PostgreSQL when configured."""
    yield from fresh_db(request.param, request, tmp_path, demo=False)


@pytest.fixture
def demo_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite holding the demo plant (catalog, stock, operators, open orders)."""
    yield from fresh_db("sqlite", request, tmp_path, demo=True)


@pytest.fixture(params=DB_KINDS)
def any_demo_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The demo plant on SQLite, and on PostgreSQL when configured."""
    yield from fresh_db(request.param, request, tmp_path, demo=True)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Flask:
    return make_app(db_url, tmp_path)


@pytest.fixture
def any_app(any_db_url: str, tmp_path: Path) -> Flask:
    return make_app(any_db_url, tmp_path)


@pytest.fixture
def demo_app(demo_db_url: str, tmp_path: Path) -> Flask:
    return make_app(demo_db_url, tmp_path)


@pytest.fixture
def any_demo_app(any_demo_db_url: str, tmp_path: Path) -> Flask:
    return make_app(any_demo_db_url, tmp_path)


@pytest.fixture
def engine(app: Flask) -> sa.Engine:
    engine: sa.Engine = app.extensions["taktline.engine"]
    return engine


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def demo_client(demo_app: Flask) -> FlaskClient:
    return demo_app.test_client()


@pytest.fixture
def runner(app: Flask) -> CliRunner:
    return CliRunner(app)


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests save screenshots and other evidence (kept after the run)."""
    path = Path(__file__).parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
