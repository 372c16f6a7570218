"""session epoch: sign-out ends a person's sessions on the server

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 10:00:00

A session cookie carries the epoch of its person at sign-in; a request whose cookie
holds another epoch than the person's row is signed out. Sign-out adds one, so a copy
of the cookie no longer works. Existing rows start at 0 (sessions signed before this
revision carry no epoch and are asked to sign in again once).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('operator', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_epoch', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('operator', schema=None) as batch_op:
        batch_op.drop_column('session_epoch')
