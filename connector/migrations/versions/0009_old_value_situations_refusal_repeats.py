"""api_key.old_value_used once an hour per key and situation (was: per key); n8n's repeated
refusals remembered in the database, shared by every worker.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Checked before anything changes: it drops a column in place (below).
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        raise RuntimeError(
            f"this upgrade needs SQLite 3.35 or newer; this Python has {sqlite3.sqlite_version}"
        )
    op.create_table(
        "api_key_old_value_alerts",
        sa.Column(
            "key_id",
            sa.String(32),
            sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("situation", sa.String(32), primary_key=True),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
    )
    # A key's last event was about the situation of its most recently seen use: it keeps
    # holding back that situation's next event for the rest of its hour.
    op.execute(
        "INSERT INTO api_key_old_value_alerts (key_id, situation, recorded_at) "
        "SELECT k.id, CASE f.reason WHEN 'grace_period' THEN 'used_during_grace_period' "
        "WHEN 'rolled' THEN 'refused_after_roll' ELSE 'used_after_delete' END, "
        "k.old_value_event_at FROM api_keys k JOIN api_key_failures f ON f.key_id = k.id "
        "WHERE k.old_value_event_at IS NOT NULL AND f.id = (SELECT latest.id FROM "
        "api_key_failures latest WHERE latest.key_id = k.id "
        "ORDER BY latest.last_seen_at DESC, latest.id DESC LIMIT 1)"
    )
    # Not in a batch: SQLite's batch mode copies the table and would lose the expression index
    # that keeps live key names unique (SQLite drops a column in place since 3.35).
    op.drop_column("api_keys", "old_value_event_at")

    op.create_table(
        "refusal_repeats",
        sa.Column("request", sa.String(64), primary_key=True),
        sa.Column("remembered_until", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_refusal_repeats_remembered_until", "refusal_repeats", ["remembered_until"])


def downgrade() -> None:
    op.drop_index("ix_refusal_repeats_remembered_until", "refusal_repeats")
    op.drop_table("refusal_repeats")
    op.add_column("api_keys", sa.Column("old_value_event_at", TIMESTAMP))
    op.execute(
        "UPDATE api_keys SET old_value_event_at = (SELECT MAX(recorded_at) FROM "
        "api_key_old_value_alerts a WHERE a.key_id = api_keys.id)"
    )
    op.drop_table("api_key_old_value_alerts")
