"""The ingest copies SQLite's write-ahead log into the database from a thread of its
own (``server.db.WalCheckpointer``), so no batch's commit has to (issue 13)."""

from __future__ import annotations

import time
from pathlib import Path

from server.db import WalCheckpointer, dispose_engine, get_engine


def test_the_log_reaches_the_database_file_without_a_commit_doing_it(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    url = f"sqlite:///{path}"
    engine = get_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
        reader = engine.connect()  # keeps the database open: no checkpoint at close
        with engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        before = path.stat().st_size
        # Far below SQLite's autocheckpoint (1,000 pages): only a checkpointer copies it.
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (?)", ("x" * 100_000,))
        time.sleep(0.5)
        assert path.stat().st_size == before

        checkpointer = WalCheckpointer.start(engine, interval=0.05)
        assert checkpointer is not None
        try:
            deadline = time.monotonic() + 10
            while path.stat().st_size == before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert path.stat().st_size > before + 90_000
        finally:
            checkpointer.stop()
        reader.close()
    finally:
        dispose_engine(url)


def test_nothing_to_do_on_postgresql() -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    try:
        assert WalCheckpointer.start(get_engine(url)) is None
    finally:
        dispose_engine(url)
