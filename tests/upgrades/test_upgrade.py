"""A store written by the previous release (tests/upgrades/store-*.json, made by write_store.py
with that release's code), upgraded by this one: nothing is lost. Keys keep authenticating as
they did, hooks keep their signing secrets (encrypted now, and a delivery the previous release
queued is signed with them after the upgrade), failure reports and events stay (with key values
in their paths redacted), templates render as before and may name a PDF engine, and the upgraded
schema is exactly the one the models describe. On
SQLite, and on PostgreSQL when TEST_DATABASE_URL is set (as CI's second run does)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import DateTime, Engine, Integer, MetaData, select, text
from sqlalchemy.engine import make_url

from connector import keys as keys_format
from connector import schema
from connector.api_keys import Rotation
from connector.app import platforms
from connector.audit import AuditAction
from connector.clients import Client
from connector.config import load_settings
from connector.db import make_engine
from connector.documents import NewDocument
from connector.encryption import StoredSecrets
from connector.errors import ApiKeyDeleted, ApiKeyRolled
from connector.key_policy import KeyPolicyChange
from connector.models import (
    ApiKey,
    AuditEntry,
    Base,
    Event,
    Hook,
    KeyPolicy,
    KeyValue,
    OldValueAlert,
)
from connector.paging import PageQuery
from connector.rendering.engines import Engine as PdfEngine
from connector.rendering.page import PageSetup, PaperSize
from connector.services import Services
from connector.templates import TemplateFields

from ..conftest import TEST_DATABASE_URL
from ..helpers import ManualClock, verify_signature

# Makes its own database from TEST_DATABASE_URL (tests/conftest.py).
pytestmark = pytest.mark.storage

LETTER = PageSetup(size=PaperSize.LETTER, margin_mm=15, page_numbers=True)
STORES = sorted(Path(__file__).parent.glob("store-*.json"), key=lambda path: path.stem)


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    if not TEST_DATABASE_URL:
        yield f"sqlite:///{tmp_path / 'bridge.db'}"
        return
    name = f"bridge_upgrade_{secrets.token_hex(4)}"
    admin = make_engine(TEST_DATABASE_URL).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


def restore(engine: Engine, store: dict[str, Any]) -> None:
    """The stored rows, into a schema at the store's revision, as a dump and restore would."""
    schema.upgrade(engine, store["revision"])
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        for table in metadata.sorted_tables:
            rows = store["tables"].get(table.name, [])
            if table.name == "alembic_version" or not rows:
                continue
            times = [c.name for c in table.columns if isinstance(c.type, DateTime)]
            for row in rows:
                for name in times:
                    if row[name] is not None:
                        row[name] = datetime.fromisoformat(row[name]).replace(tzinfo=UTC)
            connection.execute(table.delete())  # rows a migration wrote, in the dump too
            connection.execute(table.insert(), rows)
            serial = "id" in table.columns and isinstance(table.c.id.type, Integer)
            if engine.dialect.name == "postgresql" and serial:
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"(SELECT MAX(id) FROM {table.name}))"
                    )
                )


def with_key_shaped_paths(store: dict[str, Any]) -> str:
    """The store as the previous release left it after a rolled value called a path holding a
    key (it kept such paths verbatim): that path."""
    path = f"/zapier/templates/{store['values']['rolled_old']}"
    for failure in store["tables"]["api_key_failures"]:
        failure["last_path"] = path
    for event in store["tables"]["events"]:
        if event["type"] == "api_key.old_value_used":
            event["payload"]["last_path"] = path
    return path


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
@pytest.mark.parametrize("store_path", STORES, ids=[path.stem for path in STORES])
def test_the_previous_release_store_upgrades_without_loss(
    store_path: Path, empty_database_url: str, tmp_path: Path, receiver
) -> None:
    store = json.loads(store_path.read_text())
    pasted_path = with_key_shaped_paths(store)
    engine = make_engine(empty_database_url)
    restore(engine, store)
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url=empty_database_url,
        runtime_dir=tmp_path / "run",
        allow_private_hook_targets=True,
    )

    schema.upgrade(engine, stored_secrets=StoredSecrets(*settings.secret_keys()))

    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        stored = connection.execute(text("SELECT encrypted_secret FROM hooks")).scalar_one()
        # The test's receiver stands in for the subscriber, as an API subscription: signing is
        # the same for every platform.
        connection.execute(
            text("UPDATE hooks SET target_url = :url, platform = 'api'"), {"url": receiver.url}
        )
        connection.commit()
    engine.dispose()
    assert store["hook_secret"] not in stored
    assert store["hook_secret"].removeprefix("whsec_") not in stored
    written_at = datetime.fromisoformat(store["written_at"])
    services = Services.build(
        settings, ManualClock(written_at + timedelta(minutes=1)), platforms=platforms()
    )
    values = store["values"]
    try:
        auth = services.authenticator
        assert auth.authenticate(values["admin"]).key_name == "Zapier production"
        in_grace = auth.authenticate(values["in_grace_old"])
        assert in_grace.grace_until is not None and in_grace.key_name == "n8n workflows"
        assert auth.authenticate(values["in_grace_new"]).grace_until is None
        assert auth.authenticate(values["rolled_new"]).key_name == "Reporting"
        with pytest.raises(ApiKeyRolled):
            auth.authenticate(values["rolled_old"])
        with pytest.raises(ApiKeyDeleted):
            auth.authenticate(values["deleted"])

        # The delivery the previous release queued is signed with the hook's secret.
        assert services.delivery.run_once() == 1
        [delivered] = receiver.wait_for(1)
        assert verify_signature(store["hook_secret"], delivered.headers, delivered.body)
        with services.db.transaction() as session:
            hook = session.scalars(select(Hook)).one()
            assert services.secrets.decrypt(hook.encrypted_secret) == store["hook_secret"]
            told = session.scalars(
                select(Event.payload).where(Event.type == "api_key.old_value_used")
            ).all()
            alerts = {(a.key_id, a.situation) for a in session.scalars(select(OldValueAlert))}
            events = session.scalars(select(Event.id)).all()
        keys = {row["name"]: row["id"] for row in store["tables"]["api_keys"]}
        assert alerts == {
            (keys["Reporting"], "refused_after_roll"),
            (keys["Old monitor"], "used_after_delete"),
        }
        [report] = services.keys.failures(None, keys["Reporting"])
        assert report.count == 1
        redacted_path = "/zapier/templates/tt_live_[redacted]"
        assert keys_format.redact(pasted_path) == redacted_path
        assert report.last_path == redacted_path
        assert [payload["last_path"] for payload in told] == [redacted_path] * 2
        assert sorted(events) == sorted(row["id"] for row in store["tables"]["events"])
        assert_issue_18_starts_empty(services)
        # New rows after the restored ones: rolling again works.
        assert services.keys.roll(None, keys["Zapier production"]).value
        assert_issue_18_works_on_the_upgraded_store(services, keys, written_at)

        # 0012: the restored template names no engine or page setup (the default's), and now may.
        account_id = store["tables"]["accounts"][0]["id"]
        template_id = store["tables"]["templates"][0]["id"]
        restored = services.templates.get(account_id, template_id)
        assert (restored.engine, restored.page) == (None, None)
        fields = TemplateFields(
            name=restored.name, body="<p>{{ n }}</p>", engine=PdfEngine.WEASYPRINT, page=LETTER
        )
        services.templates.replace(account_id, template_id, fields)
        document = services.documents.create(
            account_id, NewDocument(template_id=template_id, data={"n": "東京"}), Client.OTHER
        )
        listed = services.documents.list(account_id, PageQuery()).data
        assert [d.missing_scripts for d in listed] == [[]] and document.missing_scripts == []
        assert services.templates.get(account_id, template_id).page == LETTER
    finally:
        services.close()


def assert_issue_18_starts_empty(services: Services) -> None:
    """0011: no key has a rotate-by date of its own or a leak, no account a policy of its own,
    and the audit log starts empty."""
    with services.db.transaction() as session:
        upgraded = session.scalars(select(ApiKey)).all()
        assert upgraded
        assert {(k.rotate_by, k.leaked_at, k.leak_url) for k in upgraded} == {(None, None, None)}
        assert {v.leaked_at for v in session.scalars(select(KeyValue))} == {None}
        assert session.scalars(select(KeyPolicy)).all() == []
        assert session.scalars(select(AuditEntry)).all() == []


def assert_issue_18_works_on_the_upgraded_store(
    services: Services, keys: dict[str, str], written_at: datetime
) -> None:
    """The restored keys follow a new key policy, are told due once (and once more for a moved
    deadline), and what is done to them is in the audit log (the roll just made)."""
    [account_id] = [account.id for account in services.accounts.list()]
    [rolled] = services.audit.list(account_id, PageQuery(), target=keys["Zapier production"]).data
    assert (rolled.action, rolled.actor) == (AuditAction.API_KEY_ROLLED, "operator")
    assert {key.rotation for key in services.keys.list(account_id)} == {Rotation.OK}
    services.key_policies.change(account_id, KeyPolicyChange(max_age_days=3))
    assert isinstance(services.clock, ManualClock)
    services.clock.current = written_at + timedelta(days=4)
    # Every live key was made or rolled when the store was written (or just now): overdue.
    assert services.rotation.tell_due_keys() == 3
    assert services.rotation.tell_due_keys() == 0
    due = services.keys.list(account_id, rotation={Rotation.OVERDUE})
    assert sorted(key.name for key in due) == ["Reporting", "Zapier production", "n8n workflows"]
    # A deadline moved later is a new rotation period: told again, once.
    later = services.clock.now() + timedelta(days=2)
    services.keys.set_rotate_by(account_id, keys["Zapier production"], later)
    assert services.rotation.tell_due_keys() == 1
    assert services.rotation.tell_due_keys() == 0


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection")
def test_an_upgrade_stopped_before_it_could_encrypt_can_run_again(
    empty_database_url: str, tmp_path: Path
) -> None:
    store = json.loads(STORES[-1].read_text())
    engine = make_engine(empty_database_url)
    restore(engine, store)
    settings = load_settings(
        data_dir=tmp_path / "data", database_url=empty_database_url, runtime_dir=tmp_path / "run"
    )

    with pytest.raises(RuntimeError, match="templateto-bridge init"):
        schema.upgrade(engine)  # without the key that encrypts the hooks' secrets
    schema.upgrade(engine, stored_secrets=StoredSecrets(*settings.secret_keys()))

    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()
