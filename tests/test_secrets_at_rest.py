"""Secrets at rest: the data directory is the service user's alone, webhook signing secrets are
stored encrypted under a key derived from BRIDGE_SECRET_KEY, and that key can be rotated without
breaking deliveries, download links or sessions."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import text

from connector.app import create_app
from connector.cli import main
from connector.clients import Client
from connector.config import Settings, load_settings
from connector.documents import NewDocument
from connector.paging import PageQuery
from connector.services import EXTENSION, Services
from connector.templates import TemplateFields
from connector.webhooks.delivery import UNSIGNABLE
from connector.webhooks.subscriptions import NewHook

from .conftest import PASSWORD, TEST_DATABASE_URL
from .helpers import verify_signature
from .web.conftest import csrf_token

# Makes its own database from TEST_DATABASE_URL (tests/conftest.py).
pytestmark = pytest.mark.storage

NEW_SECRET_KEY = "n" * 40


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """Files made with the permissions most systems give them by default (0644, 0755)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def modes(data_dir: Path) -> dict[str, str]:
    """Every entry under ``data_dir`` (itself included) and its permissions, e.g. '0o600'."""
    entries = [data_dir, *data_dir.rglob("*")]
    return {str(e.relative_to(data_dir)): oct(stat.S_IMODE(e.stat().st_mode)) for e in entries}


def make_document_and_hook(services: Services) -> None:
    account = services.accounts.create("Acme Ltd")
    key = services.keys.create(account.id, "Zapier production")
    template = services.templates.create(account.id, TemplateFields(name="Note", body="{{ n }}"))
    services.documents.create(
        account.id, NewDocument(template_id=template.id, format="txt", data={"n": 1}), Client.OTHER
    )
    services.hooks.create(
        account.id,
        key.id,
        NewHook(target_url="http://127.0.0.1:9/hook", events=["template.created"]),
        "api",
    )


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="the SQLite files of the embedded default")
def test_the_data_directory_and_its_files_are_the_service_users_alone(
    tmp_path: Path, usual_umask: None
) -> None:
    data_dir = tmp_path / "var"
    env = {"BRIDGE_DATA_DIR": str(data_dir), "BRIDGE_RUNTIME_DIR": str(tmp_path / "run")}
    assert CliRunner().invoke(main, ["init"], env=env).exit_code == 0
    # As the previous release left them: readable by everyone.
    for entry in [data_dir, *data_dir.rglob("*")]:
        entry.chmod(0o755 if entry.is_dir() else 0o644)

    settings = load_settings(
        data_dir=data_dir, runtime_dir=tmp_path / "run", allow_private_hook_targets=True
    )
    services = Services.build(settings)
    try:
        make_document_and_hook(services)
        seen = modes(data_dir)  # while the database is open: with its WAL and shared memory
    finally:
        services.close()

    assert {"bridge.db", "bridge.db-wal", "bridge.db-shm", "secret_key"} <= set(seen)
    assert any(name.endswith(".txt") for name in seen)
    for name, mode in seen.items():
        is_dir = (data_dir / name).is_dir()
        assert mode == ("0o700" if is_dir else "0o600"), name


@pytest.mark.skipif(bool(TEST_DATABASE_URL), reason="reads the SQLite files")
def test_a_new_data_directory_is_the_service_users_alone(tmp_path: Path, usual_umask) -> None:
    settings = load_settings(data_dir=tmp_path / "fresh", runtime_dir=tmp_path / "run")
    services = Services.build(settings)
    try:
        with services.db.engine.connect() as connection:
            # The first read makes the database file, its WAL and shared memory.
            connection.execute(text("SELECT count(*) FROM sqlite_master"))
            seen = modes(settings.data_dir)
    finally:
        services.close()

    assert seen == {
        ".": "0o700",
        "secret_key": "0o600",
        "bridge.db": "0o600",
        "bridge.db-wal": "0o600",
        "bridge.db-shm": "0o600",
    }


def test_hook_secrets_are_stored_encrypted(services, hook) -> None:
    with services.db.engine.connect() as connection:
        stored = connection.execute(text("SELECT encrypted_secret FROM hooks")).scalar_one()

    assert hook.secret not in stored
    assert hook.secret.removeprefix("whsec_") not in stored
    assert services.secrets.decrypt(stored) == hook.secret
    if not TEST_DATABASE_URL:
        services.db.dispose()  # everything written through to the files
        files = [Path(services.settings.database_url.removeprefix("sqlite:///"))]
        for file in files + [file.with_name(file.name + "-wal") for file in files]:
            if file.exists():
                assert hook.secret.removeprefix("whsec_").encode() not in file.read_bytes()


def rotated(settings: Settings, *, previous: bool) -> Settings:
    """The settings after BRIDGE_SECRET_KEY changed, with or without the key before it."""
    return settings.model_copy(
        update={
            "secret_key": SecretStr(NEW_SECRET_KEY),
            "secret_key_previous": settings.secret_key if previous else None,
        }
    )


@pytest.fixture
def start_app(clock):
    apps = []

    def start(settings: Settings):
        app = create_app(settings, clock=clock)
        apps.append(app)
        return app

    yield start
    for app in apps:
        app.extensions[EXTENSION].close()


def make_template(services: Services, account) -> str:
    return services.templates.create(account.id, TemplateFields(name="T", body="{{ n }}")).id


def reencrypt(server_env: dict[str, str], **env: str):
    return CliRunner().invoke(main, ["reencrypt"], env={**server_env, **env})


def test_rotating_the_secret_key_keeps_deliveries_links_and_sessions_working(
    app, services, settings, account, hook, receiver, admin_user, server_env, start_app
) -> None:
    document = services.documents.create(
        account.id,
        NewDocument(template_id=make_template(services, account), format="txt", data={"n": 1}),
        Client.OTHER,
    )
    browser = app.test_client()
    browser.post(
        "/signin",
        data={"email": admin_user.email, "password": PASSWORD, "csrf_token": csrf_token(browser)},
    )
    cookie = browser.get_cookie("bridge_session").value

    # 1. Both keys set: the old key's secrets, links and sessions are still read.
    both = start_app(rotated(settings, previous=True))
    both_services = both.extensions[EXTENSION]
    make_template(both_services, account)
    assert both_services.delivery.run_once() == 2
    for received in receiver.wait_for(2):
        assert verify_signature(hook.secret, received.headers, received.body)
    client = both.test_client()
    assert client.get(urlsplit(document.file_url).path).status_code == 200
    client.set_cookie("bridge_session", cookie)
    assert client.get("/generate/api-keys").status_code == 200
    # A form's token from before the rotation: refused once, fine after a reload.
    form = {"name": "After the rotation", "csrf_token": csrf_token(browser, "/generate/api-keys")}
    expired = client.post("/generate/api-keys", data=form)
    assert expired.status_code == 400 and "This form has expired" in expired.text
    form["csrf_token"] = csrf_token(client, "/generate/api-keys")
    assert client.post("/generate/api-keys", data=form).status_code == 200

    # 2. Re-encrypted under the new key: the old key is no longer needed for secrets.
    done = reencrypt(
        server_env,
        BRIDGE_SECRET_KEY=NEW_SECRET_KEY,
        BRIDGE_SECRET_KEY_PREVIOUS=settings.secret_key.get_secret_value(),
    )
    assert done.exit_code == 0, done.output
    assert "Re-encrypted 1 webhook signing secrets" in done.output
    new_only = start_app(rotated(settings, previous=False))
    new_services = new_only.extensions[EXTENSION]
    make_template(new_services, account)
    assert new_services.delivery.run_once() == 1
    latest = receiver.wait_for(3)[-1]
    assert verify_signature(hook.secret, latest.headers, latest.body)
    # Links and sessions of the old key end with it (after their 24 h and 12 h at most).
    assert new_only.test_client().get(urlsplit(document.file_url).path).status_code == 403


def test_a_new_secret_key_without_the_previous_one_says_so_and_sends_nothing_unsigned(
    settings, account, hook, receiver, server_env, start_app, caplog
) -> None:
    app = start_app(rotated(settings, previous=False))
    services = app.extensions[EXTENSION]
    make_template(services, account)

    services.delivery.run_once()
    refused = reencrypt(server_env, BRIDGE_SECRET_KEY=NEW_SECRET_KEY)

    assert receiver.requests == []
    [delivery] = services.hooks.deliveries(account.id, hook.id, PageQuery()).data
    assert delivery.status == "pending"
    assert delivery.attempts[0].error == UNSIGNABLE
    assert "BRIDGE_SECRET_KEY_PREVIOUS" in caplog.text
    assert refused.exit_code == 1
    assert (
        f"1 could not be decrypted with BRIDGE_SECRET_KEY or BRIDGE_SECRET_KEY_PREVIOUS ({hook.id})"
        in (refused.output)
    )
