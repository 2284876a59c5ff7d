"""Documents.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("template_id", sa.String(32), sa.ForeignKey("templates.id", ondelete="SET NULL")),
        sa.Column("template_name", sa.String(200), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("client", sa.String(16), nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False, index=True),
        sa.Column("purged_at", TIMESTAMP),
    )
    op.create_index("ix_documents_account_newest", "documents", ["account_id", "created_at", "id"])
    op.create_index(
        "ix_documents_template_newest",
        "documents",
        ["account_id", "template_id", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_table("documents")
