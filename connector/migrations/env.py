"""Alembic environment: run by :mod:`connector.schema` with an open connection."""

from alembic import context

from connector.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    # connector.schema makes SQLite's DDL transactional too: one transaction for the upgrade.
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
