"""Write a store with the code on ``PYTHONPATH`` and save it as JSON: the store a release leaves
behind, for tests/upgrades/test_upgrade.py to upgrade with the next one.

Run with the previous release's checkout first on the path, e.g.::

    git worktree add /tmp/previous <release commit>
    PYTHONPATH=/tmp/previous .venv/bin/python -m tests.upgrades.write_store \\
        tests/upgrades/store-<revision>.json

The keys' full values are saved beside the rows (this is a throwaway store): the test checks
that they keep authenticating after the upgrade.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import MetaData, select

from connector import schema
from connector.accounts import NewUser, Role
from connector.api_keys import Permission
from connector.config import load_settings
from connector.errors import AuthenticationFailed
from connector.services import Services
from connector.templates import TemplateFields
from connector.webhooks.subscriptions import NewHook


def write(out: Path) -> None:
    data_dir = Path(tempfile.mkdtemp())
    settings = load_settings(data_dir=data_dir, allow_private_hook_targets=True)
    services = Services.build(settings)
    schema.upgrade(services.db.engine)
    account = services.accounts.create("Acme Ltd")
    services.accounts.add_user(
        account.id, NewUser(email="ada@acme.example", password="x" * 12, role=Role.ADMIN)
    )
    admin = services.keys.create(account.id, "Zapier production", Permission.ADMIN)
    in_grace = services.keys.create(account.id, "n8n workflows")
    rolled = services.keys.create(account.id, "Reporting")
    deleted = services.keys.create(account.id, "Old monitor")
    hook = services.hooks.create(
        account.id,
        in_grace.id,
        NewHook(target_url="http://127.0.0.1:9/hook", events=["template.created"]),
        "zapier",
    )
    services.templates.create(account.id, TemplateFields(name="Invoice", body="<p>{{ n }}</p>"))
    new_in_grace = services.keys.roll(None, in_grace.id, timedelta(days=7))
    new_rolled = services.keys.roll(None, rolled.id)
    services.keys.delete(None, deleted.id)
    for value in (rolled.value, deleted.value):  # refused, and counted in failure reports
        with contextlib.suppress(AuthenticationFailed):
            services.authenticator.authenticate(value, user_agent="Zapier", path="/zapier/me")
    services.usage.flush()

    tables: dict[str, list[dict[str, object]]] = {}
    metadata = MetaData()
    metadata.reflect(services.db.engine)
    with services.db.engine.connect() as connection:
        for table in metadata.sorted_tables:
            tables[table.name] = [dict(row._mapping) for row in connection.execute(select(table))]
    services.close()
    store = {
        "written_at": datetime.now(UTC).isoformat(),
        "revision": schema.head_revision(),
        "values": {
            "admin": admin.value,
            "in_grace_old": in_grace.value,
            "in_grace_new": new_in_grace.value,
            "rolled_old": rolled.value,
            "rolled_new": new_rolled.value,
            "deleted": deleted.value,
        },
        "hook_secret": hook.secret,
        "tables": tables,
    }
    out.write_text(json.dumps(store, indent=1, default=str, sort_keys=True) + "\n")


if __name__ == "__main__":
    write(Path(sys.argv[1]))
