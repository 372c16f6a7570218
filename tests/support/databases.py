"""Fresh, migrated test databases: SQLite always, PostgreSQL when
``TAKTLINE_TEST_DATABASE_URL`` is set (CI sets it).

The fixtures that hand them out (``db_url``, ``any_db_url``, ``demo_db_url``,
``any_demo_db_url``) are in ``tests/conftest.py``; they get each database from
``fresh_db``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from server.db import dispose_engine, get_engine

PG_URL = os.environ.get("TAKTLINE_TEST_DATABASE_URL", "")
DB_KINDS = ["sqlite"] + (["postgres"] if PG_URL else [])


def fresh_db(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, *, demo: bool
) -> Iterator[str]:
    """Yield the URL of an empty (or demo plant) database of ``kind`` for one test.

    SQLite: a copy of the session's migrated template (``_sqlite_templates``).
    PostgreSQL: the session's private database (``_pg_database``), truncated.
    """
    if kind == "sqlite":
        templates = request.getfixturevalue("_sqlite_templates")
        target = tmp_path / "taktline.db"
        shutil.copy(templates["demo" if demo else "empty"], target)
        url = f"sqlite:///{target}"
        yield url
        dispose_engine(url)
        return
    url = request.getfixturevalue("_pg_database")
    engine = get_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    if demo:
        from server.tools.demo import seed

        seed.seed(engine)
    yield url
