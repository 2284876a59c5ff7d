"""Fixtures: a real database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), the real app,
a clock the tests can move, and real servers on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks import live
from connector import schema
from connector.accounts import AccountInfo, NewUser, Role, UserInfo
from connector.api_keys import IssuedApiKey, Permission
from connector.app import create_app
from connector.config import Settings, load_settings
from connector.db import make_engine
from connector.models import Base
from connector.services import EXTENSION, Services
from connector.webhooks.subscriptions import NewHook

from .helpers import ManualClock, bridge_command, free_port
from .receiver import Receiver

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
PASSWORD = "correct horse battery"
# Well within pytest's limit per test (120 s), in which a test may start two servers.
SERVER_START_SECONDS = 45
TESTS = Path(__file__).parent

# A test that uses the database (the `database_url` fixture, or marked `storage` where it makes
# its own from TEST_DATABASE_URL) is marked `storage`: CI's PostgreSQL pass runs those, but for
# those marked `any_database` (HTTP and rendering behaviour, the same whatever stores the keys).
# What makes a test slow, found from what it uses: a fixture that starts something outside this
# Python process, or living in tests/e2e (servers and programs started as processes). Each such
# test is marked with its reason and `slow`; `make test-fast` runs the rest (`-m "not slow"`).
SLOW_FIXTURES = {
    "n8n_runtime": "n8n",
    "zapier_runtime": "zapier_runtime",
    "browser": "chromium",
    "start_server": "servers",
    "start_worker": "servers",
    "redis_server": "servers",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = getattr(item, "fixturenames", ())
        reasons = {reason for fixture, reason in SLOW_FIXTURES.items() if fixture in used}
        if (TESTS / "e2e") in item.path.parents or item.get_closest_marker("servers"):
            reasons.add("servers")
        for reason in sorted(reasons):
            item.add_marker(reason)
        if reasons:
            item.add_marker("slow")
        uses_database = "database_url" in used or item.get_closest_marker("storage")
        if uses_database and not item.get_closest_marker("any_database"):
            item.add_marker("storage")


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database brought to the newest schema once per run: the template every test starts from."""
    template = tmp_path_factory.mktemp("template") / "bridge.db"
    url = TEST_DATABASE_URL or f"sqlite:///{template}"
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def database_url(migrated_database: str, tmp_path: Path) -> str:
    """A database of its own for each test, with the newest schema and no rows."""
    url = make_url(migrated_database)
    if url.get_backend_name() == "sqlite":
        copy = tmp_path / "bridge.db"
        shutil.copyfile(url.database, copy)
        return f"sqlite:///{copy}"
    engine = make_engine(migrated_database)
    tables = [t.name for t in Base.metadata.sorted_tables if t.name != "auth_generation"]
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        connection.execute(text("UPDATE auth_generation SET generation = 0"))
    engine.dispose()
    return migrated_database


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Webhook receivers in tests listen on 127.0.0.1; the SSRF tests turn this off.
    return load_settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        runtime_dir=tmp_path / "run",
        allow_private_hook_targets=True,
    )


@dataclass
class RedisServer:
    """A Redis of one test's own, on a port of its own: nothing listens there until start()."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except RedisConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def app(settings: Settings, clock: ManualClock) -> Iterator:
    application = create_app(settings, clock=clock)
    yield application
    application.extensions[EXTENSION].close()


@pytest.fixture
def services(app) -> Services:
    return app.extensions[EXTENSION]


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def account(services: Services) -> AccountInfo:
    return services.accounts.create("Acme Ltd")


@pytest.fixture
def admin_key(services: Services, account: AccountInfo) -> IssuedApiKey:
    return services.keys.create(account.id, "Zapier production", Permission.ADMIN)


@pytest.fixture
def standard_key(services: Services, account: AccountInfo) -> IssuedApiKey:
    return services.keys.create(account.id, "n8n workflows", Permission.STANDARD)


# --- real servers on 127.0.0.1 -------------------------------------------------------------


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def server_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "TEMPLATETO_"))}
    env.update(
        BRIDGE_DATA_DIR=str(settings.data_dir),
        BRIDGE_DATABASE_URL=settings.database_url,
        BRIDGE_RUNTIME_DIR=str(settings.runtime_dir),
        BRIDGE_SECRET_KEY=settings.secret_key.get_secret_value(),
        BRIDGE_ALLOW_PRIVATE_HOOK_TARGETS="1",
    )
    return env


@pytest.fixture
def start_server(
    server_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., RunningServer]]:
    """Start ``templateto-bridge serve`` processes on free loopback ports, each returned once
    every worker answers ``ready_path``: ``/healthz`` (its app is loaded; a render waits for its
    render processes), or ``/readyz`` for a test that times renders (they are up too). Stop
    their process groups after. Without BRIDGE_PUBLIC_URL, as a first run has none: links start
    with the address served."""
    with contextlib.ExitStack() as stack:

        def start(
            workers: int = 1, *, ready_path: str = "/healthz", **extra_env: str
        ) -> RunningServer:
            port = free_port()
            log_path = tmp_path / f"server-{port}.log"
            command = bridge_command("serve", "--port", str(port), "--workers", str(workers))
            env = {**server_env, **extra_env}
            process = stack.enter_context(live.started(command, env=env, log=log_path))
            server = RunningServer(f"http://127.0.0.1:{port}", process, log_path, server_env)
            try:
                live.wait_until_ready(
                    server.url + ready_path, process, workers, log_path, within=SERVER_START_SECONDS
                )
            except RuntimeError as error:
                pytest.fail(str(error))
            return server

        yield start


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver().running() as running:
        yield running


@pytest.fixture
def hook(services, account, standard_key, receiver):
    """A subscription of the standard key's account to template.created, at the receiver."""
    return services.hooks.create(
        account.id,
        standard_key.id,
        NewHook(target_url=receiver.url + "/hook", events=["template.created"]),
        "api",
    )


@pytest.fixture
def admin_user(services, account) -> UserInfo:
    return services.accounts.add_user(
        account.id, NewUser(email="ada@acme.example", password=PASSWORD, role=Role.ADMIN)
    )


@pytest.fixture
def editor_user(services, account) -> UserInfo:
    return services.accounts.add_user(
        account.id, NewUser(email="eddie@acme.example", password=PASSWORD, role=Role.EDITOR)
    )
