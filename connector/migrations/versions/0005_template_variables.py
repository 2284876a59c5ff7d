"""Store each template's variables, worked out when it is saved.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import contextlib

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("templates") as table:
        table.add_column(sa.Column("variables", sa.JSON))
    templates = sa.table(
        "templates",
        sa.column("id", sa.String),
        sa.column("body", sa.Text),
        sa.column("text_body", sa.Text),
        sa.column("variables", sa.JSON),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(templates)).all():
        connection.execute(
            templates.update()
            .where(templates.c.id == row.id)
            .values(variables=_variables(row.body, row.text_body))
        )
    with op.batch_alter_table("templates") as table:
        table.alter_column("variables", nullable=False)


def _variables(body: str, text_body: str | None) -> list[str]:
    from connector.errors import ValidationFailed
    from connector.rendering import liquid

    names: set[str] = set()
    for source in (body, text_body):
        if source is not None:
            # A template saved before templates were checked this strictly keeps no variables.
            with contextlib.suppress(ValidationFailed):
                names.update(liquid.variables(source))
    return sorted(names)


def downgrade() -> None:
    with op.batch_alter_table("templates") as table:
        table.drop_column("variables")
