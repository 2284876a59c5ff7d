"""Keys that look after themselves (issue 18): each account's key policy (maximum age, what a
leak does), a key's own rotate-by date, which rotation notices each key value has had for each
deadline, a key's last leak (when and where), when each value was reported leaked, and the
append-only audit log.

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

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "key_policies",
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("max_age_days", sa.Integer),
        sa.Column("on_leak", sa.String(16), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    # In place, not in a batch: SQLite's batch mode copies the table and would lose the
    # expression index that keeps live key names unique (as 0009 explains).
    op.add_column("api_keys", sa.Column("rotate_by", TIMESTAMP))
    op.add_column("api_keys", sa.Column("leaked_at", TIMESTAMP))
    op.add_column("api_keys", sa.Column("leak_url", sa.Text))
    op.add_column("api_key_values", sa.Column("leaked_at", TIMESTAMP))
    op.create_table(
        "api_key_rotation_notices",
        sa.Column(
            "value_id",
            sa.Integer,
            sa.ForeignKey("api_key_values.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("rotate_by", TIMESTAMP, primary_key=True),
        sa.Column("stage", sa.String(16), primary_key=True),
        sa.Column("sent_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "account_id",
            sa.String(32),
            sa.ForeignKey("accounts.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(254), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(254), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("source_address", sa.String(64)),
        sa.Column("user_agent", sa.String(512)),
    )
    op.create_index("ix_audit_log_account_newest", "audit_log", ["account_id", "created_at", "id"])
    op.create_index(
        "ix_audit_log_account_action_newest",
        "audit_log",
        ["account_id", "action", "created_at", "id"],
    )
    op.create_index(
        "ix_audit_log_account_target_newest",
        "audit_log",
        ["account_id", "target", "created_at", "id"],
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("api_key_rotation_notices")
    op.drop_column("api_key_values", "leaked_at")
    op.drop_column("api_keys", "leak_url")
    op.drop_column("api_keys", "leaked_at")
    op.drop_column("api_keys", "rotate_by")
    op.drop_table("key_policies")
