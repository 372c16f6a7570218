"""event.seq as a 64-bit integer

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:10:00

A device's ``seq`` is validated up to 2**63 - 1 (server.ingest.payload); PostgreSQL's
INTEGER stopped at 2**31 - 1 and refused larger values as a database error.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), type_=sa.BigInteger(),
                              existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.BigInteger(), type_=sa.Integer(),
                              existing_nullable=True)
