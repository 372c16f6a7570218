"""quality: checks, measurements, non-conformances, rework

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.models.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "qualitycheck",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("instructions", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("nominal", sa.Float(), nullable=True),
        sa.Column("lower", sa.Float(), nullable=True),
        sa.Column("upper", sa.Float(), nullable=True),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tool", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("when_options", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("operation_id", "code"),
    )
    with op.batch_alter_table("qualitycheck", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_qualitycheck_operation_id"), ["operation_id"], unique=False
        )

    op.create_table(
        "nonconformance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("unit_operation_id", sa.Integer(), nullable=True),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.Column("check_id", sa.Integer(), nullable=True),
        sa.Column("origin", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("cause", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("characteristic", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("lower", sa.Float(), nullable=True),
        sa.Column("upper", sa.Float(), nullable=True),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("disposition", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column(
            "disposition_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False
        ),
        sa.Column("opened_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("opened_at", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("decided_at", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("closed_at", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["check_id"],
            ["qualitycheck.id"],
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["station.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_operation_id"],
            ["unitoperation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("nonconformance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nonconformance_opened_at"), ["opened_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_nonconformance_station_id"), ["station_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_nonconformance_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_nonconformance_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "checkresult",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("unit_operation_id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.Column("operator_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("ncr_id", sa.Integer(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("lower", sa.Float(), nullable=True),
        sa.Column("upper", sa.Float(), nullable=True),
        sa.Column("unit", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tool", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("photo", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("at", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["check_id"],
            ["qualitycheck.id"],
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ncr_id"],
            ["nonconformance.id"],
        ),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operator.id"],
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["station.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_operation_id"],
            ["unitoperation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("checkresult", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checkresult_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkresult_check_id"), ["check_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkresult_ncr_id"), ["ncr_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_checkresult_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_checkresult_unit_operation_id"), ["unit_operation_id"], unique=False
        )

    op.create_table(
        "componentchange",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ncr_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("consumption_id", sa.Integer(), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("part_id", sa.Integer(), nullable=False),
        sa.Column("serial", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("lot_id", sa.Integer(), nullable=True),
        sa.Column("quarantine_lot_id", sa.Integer(), nullable=True),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("at", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("released_at", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("released_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumption_id"],
            ["consumption.id"],
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"],
            ["stocklot.id"],
        ),
        sa.ForeignKeyConstraint(
            ["ncr_id"],
            ["nonconformance.id"],
        ),
        sa.ForeignKeyConstraint(
            ["part_id"],
            ["part.id"],
        ),
        sa.ForeignKeyConstraint(
            ["quarantine_lot_id"],
            ["stocklot.id"],
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["station.id"],
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["unit.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("componentchange", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_componentchange_consumption_id"), ["consumption_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_componentchange_ncr_id"), ["ncr_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_componentchange_unit_id"), ["unit_id"], unique=False)

    with op.batch_alter_table("consumption", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("removed_at", server.models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_constraint(batch_op.f("uq_consumption_serial"), type_="unique")
        batch_op.create_index(
            "uq_consumption_serial",
            ["part_id", "serial"],
            unique=True,
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("consumption", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_consumption_serial",
            sqlite_where=sa.text("removed_at IS NULL"),
            postgresql_where=sa.text("removed_at IS NULL"),
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_consumption_serial"), ["part_id", "serial"]
        )
        batch_op.drop_column("removed_at")

    with op.batch_alter_table("componentchange", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_componentchange_unit_id"))
        batch_op.drop_index(batch_op.f("ix_componentchange_ncr_id"))
        batch_op.drop_index(batch_op.f("ix_componentchange_consumption_id"))

    op.drop_table("componentchange")
    with op.batch_alter_table("checkresult", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checkresult_unit_operation_id"))
        batch_op.drop_index(batch_op.f("ix_checkresult_unit_id"))
        batch_op.drop_index(batch_op.f("ix_checkresult_ncr_id"))
        batch_op.drop_index(batch_op.f("ix_checkresult_check_id"))
        batch_op.drop_index(batch_op.f("ix_checkresult_at"))

    op.drop_table("checkresult")
    with op.batch_alter_table("nonconformance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nonconformance_unit_id"))
        batch_op.drop_index(batch_op.f("ix_nonconformance_status"))
        batch_op.drop_index(batch_op.f("ix_nonconformance_station_id"))
        batch_op.drop_index(batch_op.f("ix_nonconformance_opened_at"))

    op.drop_table("nonconformance")
    with op.batch_alter_table("qualitycheck", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qualitycheck_operation_id"))

    op.drop_table("qualitycheck")
