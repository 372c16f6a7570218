"""event verdict as code and parameters

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00

The verdict was stored as "<code>: <English text>" in ``reason``; it is now stored
as data (``code``, ``params``) and rendered when read. Existing rows get their code
from the text before the first ": "; their parameters cannot be recovered exactly,
so they stay empty and ``reason`` keeps their English text.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('code', sa.String(length=32), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('params', sa.JSON(), nullable=False,
                                      server_default='{}'))
    event = sa.table('event', sa.column('code', sa.String), sa.column('reason', sa.String))
    position = sa.func.instr(event.c.reason, ': ') if op.get_bind().dialect.name == 'sqlite' \
        else sa.func.strpos(event.c.reason, ': ')
    op.execute(event.update().where(position > 1, position <= 33).values(
        code=sa.func.substr(event.c.reason, 1, position - 1),
        reason=sa.func.substr(event.c.reason, position + 2)))


def downgrade() -> None:
    event = sa.table('event', sa.column('code', sa.String), sa.column('reason', sa.String))
    op.execute(event.update().where(event.c.code != '').values(
        reason=sa.func.substr(event.c.code + ': ' + event.c.reason, 1, 500)))
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.drop_column('params')
        batch_op.drop_column('code')
