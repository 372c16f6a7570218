"""dead letters: MQTT messages the ingest could not decode or decide

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import server.models.types


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('deadletter',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('received_at', server.models.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('incident', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('topic', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('station', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('msg_id', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident')
    )
    with op.batch_alter_table('deadletter', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_deadletter_received_at'), ['received_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('deadletter', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_deadletter_received_at'))
    op.drop_table('deadletter')
