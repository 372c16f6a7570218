"""supply and calendar: scheduled receipts, line calendars, station downtime, promises

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.models.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orderpromise",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("promised_on", sa.Date(), nullable=True),
        sa.Column("booked_at", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("booked_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("projected_on", sa.Date(), nullable=True),
        sa.Column("completion_at", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.JSON(), nullable=False),
        sa.Column("computed_at", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flagged_at", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("flag_reason", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["customerorder.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("order_id"),
    )
    with op.batch_alter_table("orderpromise", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orderpromise_flagged"), ["flagged"], unique=False)

    op.create_table(
        "lineclosure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["line_id"], ["line.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("line_id", "day"),
    )
    with op.batch_alter_table("lineclosure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lineclosure_line_id"), ["line_id"], unique=False)

    op.create_table(
        "lineshift",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("start", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("end", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=False),
        sa.Column("breaks", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["line_id"], ["line.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lineshift", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lineshift_line_id"), ["line_id"], unique=False)

    op.create_table(
        "stationdowntime",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=False),
        sa.Column("start_at", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["station_id"], ["station.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stationdowntime", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stationdowntime_station_id"), ["station_id"], unique=False
        )

    op.create_table(
        "scheduledreceipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("part_id", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("expected_on", sa.Date(), nullable=False),
        sa.Column("first_expected_on", sa.Date(), nullable=False),
        sa.Column("supplier", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("supplier_ref", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("updated_at", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["part_id"], ["part.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scheduledreceipt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduledreceipt_expected_on"), ["expected_on"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_scheduledreceipt_part_id"), ["part_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scheduledreceipt_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("scheduledreceipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduledreceipt_status"))
        batch_op.drop_index(batch_op.f("ix_scheduledreceipt_part_id"))
        batch_op.drop_index(batch_op.f("ix_scheduledreceipt_expected_on"))
    op.drop_table("scheduledreceipt")
    with op.batch_alter_table("stationdowntime", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stationdowntime_station_id"))
    op.drop_table("stationdowntime")
    with op.batch_alter_table("lineshift", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineshift_line_id"))
    op.drop_table("lineshift")
    with op.batch_alter_table("lineclosure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineclosure_line_id"))
    op.drop_table("lineclosure")
    with op.batch_alter_table("orderpromise", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orderpromise_flagged"))
    op.drop_table("orderpromise")
