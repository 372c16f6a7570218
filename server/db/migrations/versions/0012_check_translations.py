"""quality checks' texts per locale

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A check's name and instructions in the operator's language, as the catalog's
    # other tablet texts (0011); existing checks have none and show as written.
    with op.batch_alter_table("qualitycheck", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("translations", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("qualitycheck", schema=None) as batch_op:
        batch_op.drop_column("translations")
