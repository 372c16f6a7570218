"""Database layer: one engine per process, one session per request.

SQLite runs in WAL mode with a busy timeout, foreign keys on and synchronous=NORMAL.
pysqlite's own transaction handling is switched off so we emit BEGIN ourselves: a
write transaction must ``BEGIN IMMEDIATE`` (``write_session`` / ``begin_write``),
because a deferred transaction that reads and then writes fails with "database is
locked" when another writer got there first, instead of waiting its turn.
See https://docs.sqlalchemy.org/en/20/dialects/sqlite.html#serializable-isolation-savepoints-transactional-ddl
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, g
from sqlalchemy.engine import Engine
from sqlmodel import Session

log = logging.getLogger(__name__)
T = TypeVar("T")
DEADLOCK_ATTEMPTS = 3
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """The process-wide engine for ``url`` (created on first use)."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create_engine(url)
        return engine


def dispose_engine(url: str) -> None:
    with _lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=40,
        )
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    engine = sa.create_engine(url, pool_size=10, max_overflow=30, pool_pre_ping=True)
    sa.event.listen(engine, "connect", _postgres_on_connect)
    return engine


def _postgres_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    """No JIT: a recall over a large history is costed high enough to be compiled on
    every call, which costs more than it saves (bench/README.md). A server without the
    setting (before PostgreSQL 11) keeps its default."""
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET jit = off")
        dbapi_connection.commit()
    except Exception:  # noqa: BLE001 - an optimisation only
        dbapi_connection.rollback()


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_on_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def begin_write(session: Session) -> None:
    """Start ``session``'s transaction as a write transaction.

    On SQLite this takes the write lock up front (BEGIN IMMEDIATE); on PostgreSQL it
    is an ordinary transaction, and callers lock the rows they change. Call it before
    the first query of the transaction.
    """
    if session.in_transaction():
        raise RuntimeError("begin_write() must start the transaction, but one is already open")
    session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


class WalCheckpointer:
    """Copies SQLite's write-ahead log into the database from a thread of its own.

    Otherwise the commit that finds the log past 1,000 pages does it (SQLite's
    autocheckpoint), with an fsync, while holding the one write lock: on a busy disk
    that commit took 100-300 ms, and every other writer waited (issue 13). A PASSIVE
    checkpoint takes no write lock; done often, the log stays short and is restarted,
    so no commit finds it long. Nothing to do on PostgreSQL (``start`` returns None).
    """

    def __init__(self, engine: Engine, interval: float = 0.2) -> None:
        self.engine, self.interval = engine, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    @classmethod
    def start(cls, engine: Engine, interval: float = 0.2) -> WalCheckpointer | None:
        if engine.dialect.name != "sqlite":
            return None
        checkpointer = cls(engine, interval)
        checkpointer._thread.start()
        return checkpointer

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        # A connection of its own for the thread's life, outside any transaction.
        raw: Any = None
        while not self._stop.wait(self.interval):
            try:
                if raw is None:
                    raw = self.engine.raw_connection()
                cursor = raw.cursor()
                cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                cursor.close()
            except (sa.exc.DBAPIError, sqlite3.Error) as exc:  # the next round tries again
                log.warning("WAL checkpoint failed: %s", exc)
                if raw is not None:
                    raw.invalidate()
                    raw = None
        if raw is not None:
            raw.close()


def deadlocked(exc: BaseException) -> bool:
    """PostgreSQL rolled the transaction back to break a deadlock (SQLSTATE 40P01)."""
    return (
        isinstance(exc, sa.exc.OperationalError) and getattr(exc.orig, "sqlstate", None) == "40P01"
    )


def retry_deadlocked(work: Callable[[], T], *, session: Session | None = None) -> T:
    """``work()``: one whole write transaction, begun and committed inside (in
    ``session``, rolled back here on failure, or in a ``write_session`` of its own).
    Run again, up to ``DEADLOCK_ATTEMPTS`` times in all, when PostgreSQL rolled it back
    to break a deadlock: the other transaction went on, this one changed nothing, and
    an event keeps its ``msg_id``, so running it again records it once."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return work()
        except sa.exc.OperationalError as exc:
            if session is not None:
                session.rollback()
            if not deadlocked(exc) or attempt == DEADLOCK_ATTEMPTS:
                raise
            log.warning(
                "write transaction rolled back by the database to break a deadlock; "
                "running it again (%d of %d)",
                attempt + 1,
                DEADLOCK_ATTEMPTS,
            )
    raise AssertionError("unreachable")


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose one transaction writes: committed on success, rolled back on error."""
    with Session(engine, expire_on_commit=False) as session:
        begin_write(session)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def get_session() -> Session:
    """The session of the current request (opened on first use, closed at teardown)."""
    if "db_session" not in g:
        from flask import current_app

        g.db_session = Session(current_app.extensions["taktline.engine"], expire_on_commit=False)
    session: Session = g.db_session
    return session


def _close_session(exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        if exc is not None:
            session.rollback()
        session.close()


# -- LIKE filters -------------------------------------------------------------------

# "/" as SQLAlchemy's autoescape does: no backslash quoting rules to differ by dialect.
LIKE_ESCAPE = "/"


def like_escaped(text: str) -> str:
    """``text`` for a LIKE pattern, taken literally: its ``%``, ``_`` and the escape
    character itself escaped (use with ``escape=LIKE_ESCAPE``)."""
    return (
        text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def contains_text(column: Any, text: str) -> sa.ColumnElement[bool]:
    """``column`` holds ``text`` (any case), every character literal: what a search
    field of a page means. ``ILIKE`` on PostgreSQL, ``lower() LIKE lower()`` on SQLite."""
    clause: sa.ColumnElement[bool] = column.ilike(f"%{like_escaped(text)}%", escape=LIKE_ESCAPE)
    return clause


def init_app(app: Flask) -> None:
    app.extensions["taktline.engine"] = get_engine(app.config["DATABASE_URL"])
    app.teardown_appcontext(_close_session)
