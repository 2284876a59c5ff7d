"""PDF engines and page setup: templates may name their engine and page setup; documents record
the scripts their engine's fonts could not draw.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates") as templates:
        templates.add_column(sa.Column("engine", sa.String(16), nullable=True))
        templates.add_column(sa.Column("page", sa.JSON(), nullable=True))
    with op.batch_alter_table("documents") as documents:
        documents.add_column(sa.Column("missing_scripts", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("documents") as documents:
        documents.drop_column("missing_scripts")
    with op.batch_alter_table("templates") as templates:
        templates.drop_column("page")
        templates.drop_column("engine")
