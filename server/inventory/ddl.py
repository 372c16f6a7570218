"""Database triggers that make the ledger and the audit trail append-only.

Installed by the migrations on SQLite and PostgreSQL alike. The on-hand trigger adds
every new movement to its lot's ``on_hand`` / ``reserved``; the lot's CHECK
constraints then refuse any movement that would take a balance below zero, in the
same statement, so no code path can make stock negative.
"""

from __future__ import annotations

import sqlalchemy as sa

APPEND_ONLY_TABLES = ("stockmovement", "auditentry")

_SQLITE = [
    """CREATE TRIGGER stockmovement_apply AFTER INSERT ON stockmovement
    BEGIN
        UPDATE stocklot SET on_hand = on_hand + NEW.quantity,
                            reserved = reserved + NEW.reserved_delta
        WHERE id = NEW.lot_id;
    END""",
    *[
        f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"""
        for table in APPEND_ONLY_TABLES
        for verb in ("UPDATE", "DELETE")
    ],
]

_POSTGRES = [
    """CREATE OR REPLACE FUNCTION taktline_stockmovement_apply() RETURNS trigger AS $$
    BEGIN
        UPDATE stocklot SET on_hand = on_hand + NEW.quantity,
                            reserved = reserved + NEW.reserved_delta
        WHERE id = NEW.lot_id;
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER stockmovement_apply AFTER INSERT ON stockmovement
    FOR EACH ROW EXECUTE FUNCTION taktline_stockmovement_apply()""",
    """CREATE OR REPLACE FUNCTION taktline_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '%% is append-only: %% refused', TG_TABLE_NAME, TG_OP;
    END $$ LANGUAGE plpgsql""",
    *[
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION taktline_append_only()"""
        for table in APPEND_ONLY_TABLES
    ],
]


def install(connection: sa.Connection) -> None:
    statements = _POSTGRES if connection.dialect.name == "postgresql" else _SQLITE
    for statement in statements:
        connection.exec_driver_sql(statement)


def uninstall(connection: sa.Connection) -> None:
    names = ["stockmovement_apply"]
    if connection.dialect.name == "postgresql":
        names += [f"{t}_append_only" for t in APPEND_ONLY_TABLES]
        for name in names:
            table = "stockmovement" if name.startswith("stock") else "auditentry"
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS taktline_stockmovement_apply()")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS taktline_append_only()")
        return
    names += [f"{t}_no_{v}" for t in APPEND_ONLY_TABLES for v in ("update", "delete")]
    for name in names:
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
