"""the floor: andon reasons, operator numbers, order number patterns

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.models.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TRANSLATED = ("part", "option", "operation", "station", "product")


def upgrade() -> None:
    # The station tablet: catalog texts per locale, an operator number for signing in
    # without a badge, the affected part and a photo of a defect, andon escalation.
    for table in TRANSLATED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("translations", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
            )
    with op.batch_alter_table("operator", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("number", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
        batch_op.create_unique_constraint(batch_op.f("uq_operator_number"), ["number"])
    with op.batch_alter_table("defect", schema=None) as batch_op:
        batch_op.add_column(sa.Column("part_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_defect_part_id_part"), "part", ["part_id"], ["id"]
        )
    with op.batch_alter_table("andoncall", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("escalated_at", server.models.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "reason",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("translations", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "code"),
    )
    op.create_table(
        "defectphoto",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("defect_id", sa.Integer(), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("at", server.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["defect_id"], ["defect.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("defect_id"),
    )


def downgrade() -> None:
    op.drop_table("defectphoto")
    op.drop_table("reason")
    with op.batch_alter_table("andoncall", schema=None) as batch_op:
        batch_op.drop_column("escalated_at")
    with op.batch_alter_table("defect", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_defect_part_id_part"), type_="foreignkey")
        batch_op.drop_column("part_id")
    with op.batch_alter_table("operator", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_operator_number"), type_="unique")
        batch_op.drop_column("number")
    for table in TRANSLATED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("translations")
