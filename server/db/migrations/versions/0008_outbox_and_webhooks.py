"""outbox and webhooks: outbound events and their deliveries

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.models.types


revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhooksubscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("event_types", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "outboxevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_seq", sa.Integer(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("time", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("fanned_out", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["customerorder.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
        sa.UniqueConstraint("order_id", "order_seq"),
    )
    with op.batch_alter_table("outboxevent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outboxevent_fanned_out"), ["fanned_out"], unique=False)

    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=True),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("order_seq", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "next_attempt_at", server.models.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("locked_until", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", server.models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outboxevent.id"],
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhooksubscription.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "outbox_id"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(
            "ix_delivery_lane", ["channel", "order_id", "order_seq"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_delivery_outbox_id"), ["outbox_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_delivery_subscription_id"), ["subscription_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_subscription_id"))
        batch_op.drop_index(batch_op.f("ix_delivery_outbox_id"))
        batch_op.drop_index("ix_delivery_lane")
        batch_op.drop_index("ix_delivery_due")

    op.drop_table("delivery")
    with op.batch_alter_table("outboxevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outboxevent_fanned_out"))

    op.drop_table("outboxevent")
    op.drop_table("webhooksubscription")
