"""Secrets at rest: webhook signing secrets encrypted under a key derived from BRIDGE_SECRET_KEY
(hooks.secret becomes hooks.encrypted_secret); key values redacted from the paths that failure
reports and api_key.old_value_used events already hold.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from typing import Any

import sqlalchemy as sa
from alembic import context, op

from connector import keys

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

hooks = sa.table(
    "hooks",
    sa.column("id", sa.String),
    sa.column("secret", sa.String),
    sa.column("encrypted_secret", sa.Text),
)
failures = sa.table(
    "api_key_failures", sa.column("id", sa.Integer), sa.column("last_path", sa.Text)
)
events = sa.table(
    "events",
    sa.column("id", sa.String),
    sa.column("type", sa.String),
    sa.column("payload", sa.JSON),
)


def _stored_secrets() -> Any:
    """The StoredSecrets that ``templateto-bridge init`` passes (connector.schema.upgrade)."""
    secrets = context.config.attributes.get("stored_secrets")
    if secrets is None:
        raise RuntimeError(
            "migration 0010 encrypts webhook signing secrets with BRIDGE_SECRET_KEY: run it "
            "with `templateto-bridge init`"
        )
    return secrets


def _rewrite(connection: sa.Connection, table: sa.TableClause, column: str, rows: Any) -> None:
    """Set ``column`` of each (id, value) in ``rows``."""
    values = [{"row_id": row_id, "value": value} for row_id, value in rows]
    if values:
        connection.execute(
            table.update()
            .where(table.c.id == sa.bindparam("row_id"))
            .values({column: sa.bindparam("value")}),
            values,
        )


def upgrade() -> None:
    connection = op.get_bind()
    clear = connection.execute(sa.select(hooks.c.id, hooks.c.secret)).all()
    # Before any change: SQLite commits each ALTER at once, so a migration stopped halfway
    # would leave a schema that neither version knows.
    secrets = _stored_secrets() if clear else None
    # In place, with a default (SQLite adds a NOT NULL column only so): batch mode would copy
    # the table, and dropping the original would delete its deliveries through their cascade.
    # Added only if missing: a run stopped after adding it (a lock held too long) can run again.
    if "encrypted_secret" not in {c["name"] for c in sa.inspect(connection).get_columns("hooks")}:
        op.add_column(
            "hooks", sa.Column("encrypted_secret", sa.Text(), nullable=False, server_default="")
        )
    if secrets is not None:
        _rewrite(connection, hooks, "encrypted_secret", [(i, secrets.encrypt(s)) for i, s in clear])
    op.drop_column("hooks", "secret")

    paths = connection.execute(
        sa.select(failures.c.id, failures.c.last_path).where(
            sa.func.lower(failures.c.last_path).contains(keys.PREFIX)
        )
    ).all()
    _rewrite(connection, failures, "last_path", [(i, keys.redact(p)) for i, p in paths])
    told = connection.execute(
        sa.select(events.c.id, events.c.payload).where(events.c.type == "api_key.old_value_used")
    ).all()
    redacted = []
    for event_id, payload in told:
        path = payload.get("last_path") or ""
        if keys.redact(path) != path:
            redacted.append((event_id, {**payload, "last_path": keys.redact(path)}))
    _rewrite(connection, events, "payload", redacted)


def downgrade() -> None:
    connection = op.get_bind()
    op.add_column("hooks", sa.Column("secret", sa.String(80), nullable=False, server_default=""))
    encrypted = connection.execute(sa.select(hooks.c.id, hooks.c.encrypted_secret)).all()
    if encrypted:
        secrets = _stored_secrets()
        _rewrite(connection, hooks, "secret", [(i, secrets.decrypt(e)) for i, e in encrypted])
    op.drop_column("hooks", "encrypted_secret")
