"""A document's Idempotency-Key: a client's retry of a create returns the first document.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.add_column(sa.Column("idempotency_key", sa.String(255)))
        table.add_column(sa.Column("request_digest", sa.String(64)))
        table.create_index(
            "ux_documents_idempotency_key", ["account_id", "idempotency_key"], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table("documents") as table:
        table.drop_index("ux_documents_idempotency_key")
        table.drop_column("request_digest")
        table.drop_column("idempotency_key")
