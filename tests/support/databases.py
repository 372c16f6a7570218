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
from typing import Any

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
    names = [t.name for t in SQLModel.metadata.sorted_tables]
    tables = ", ".join(f'"{name}"' for name in names)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    if demo:
        _pg_demo(engine, names)
    yield url


_PG_DEMO_SAVED: set[str] = set()  # databases whose demo plant is kept in demo_copy


def _pg_demo(engine: Any, names: list[str]) -> None:
    """The demo plant in an emptied PostgreSQL database: seeded the first time in a
    session (then copied, rows and sequence values, into the ``demo_copy`` schema),
    copied back after that. Seeding takes ~1.6 s; the copy a tenth of it. The rows are
    the seed's own, so triggers (the ledger's) are off while they go back, as in a
    data-only restore."""
    key = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        if key not in _PG_DEMO_SAVED:
            from server.tools.demo import seed

            seed.seed(engine)
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS demo_copy CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA demo_copy")
            for name in names:
                conn.exec_driver_sql(
                    f'CREATE TABLE demo_copy."{name}" AS SELECT * FROM public."{name}"'
                )
            conn.exec_driver_sql(
                "CREATE TABLE demo_copy.sequences AS SELECT sequencename AS name, last_value "
                "FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL"
            )
            _PG_DEMO_SAVED.add(key)
            return
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for name in names:
            conn.exec_driver_sql(
                f'INSERT INTO public."{name}" OVERRIDING SYSTEM VALUE '
                f'SELECT * FROM demo_copy."{name}"'
            )
        conn.exec_driver_sql(
            "SELECT setval('public.' || quote_ident(name), last_value) FROM demo_copy.sequences"
        )
