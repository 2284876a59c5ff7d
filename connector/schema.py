"""Create, upgrade and check the database schema with the Alembic migrations shipped in the
package (``templateto-bridge init`` and the start-up check of ``serve``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event

from .encryption import StoredSecrets
from .errors import SchemaOutdated

_MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "the package ships at least one migration"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(
    engine: Engine, revision: str = "head", *, stored_secrets: StoredSecrets | None = None
) -> tuple[str | None, str]:
    """Bring the schema to ``revision`` (the newest by default); returns (before, after).
    ``stored_secrets`` encrypts the secrets a migration finds in clear (0010: webhook signing
    secrets); a database without any needs none."""
    before = current_revision(engine)
    config = _config()
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        sqlite = driver if isinstance(driver, sqlite3.Connection) else None
        if sqlite is not None:
            previous = sqlite.isolation_level
            # pysqlite commits before each CREATE or ALTER: an upgrade stopped halfway would
            # leave a schema no version knows. With its own transactions off and a BEGIN of
            # ours (SQLAlchemy's documented recipe), the whole upgrade commits or none of it.
            sqlite.isolation_level = None
            event.listen(connection, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                config.attributes["stored_secrets"] = stored_secrets
                command.upgrade(config, revision)
        finally:
            if sqlite is not None:
                sqlite.isolation_level = previous  # for the pool's next user
    return before, head_revision() if revision == "head" else revision


def ensure_current(engine: Engine) -> None:
    """Raise :class:`SchemaOutdated` unless the schema is at the newest revision."""
    current, head = current_revision(engine), head_revision()
    if current is None:
        raise SchemaOutdated(
            "the database has no TemplateTo Bridge schema yet. "
            "Run `templateto-bridge init` to create it."
        )
    if current != head:
        raise SchemaOutdated(
            f"the database schema is at revision {current}, this version needs {head}. "
            "Run `templateto-bridge init` to upgrade it."
        )
