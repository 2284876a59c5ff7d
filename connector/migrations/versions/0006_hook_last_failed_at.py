"""When a subscription last failed: a day without attempts breaks a failure streak.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hooks") as table:
        table.add_column(sa.Column("last_failed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("hooks") as table:
        table.drop_column("last_failed_at")
