"""Server processes share one database, and each caches authenticated keys. A roll or delete
must stop the old value in every process of the machine before it answers, and on other
machines (PostgreSQL) as soon as they hear of it."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from ..conftest import TEST_DATABASE_URL
from ..helpers import bridge_command, key_header

# Makes its own database from TEST_DATABASE_URL (tests/conftest.py).
pytestmark = pytest.mark.storage


def create_key(env: dict[str, str], name: str) -> dict:
    def cli(*args: str) -> dict:
        result = subprocess.run(
            bridge_command(*args, "--json"), env=env, capture_output=True, text=True, check=True
        )
        return json.loads(result.stdout)

    account = cli("accounts", "create", "Acme Ltd")
    return cli(
        "keys", "create", "--account", account["id"], "--name", name, "--permission", "admin"
    )


def warm(server_url: str, value: str) -> None:
    with requests.Session() as session:  # one kept-alive connection, as Zapier's would be
        for _ in range(5):
            assert session.get(server_url + "/v1/me", headers=key_header(value), timeout=5).ok


def me(server_url: str, value: str) -> requests.Response:
    return requests.get(server_url + "/v1/me", headers=key_header(value), timeout=5)


def test_a_roll_stops_the_old_value_in_every_process_of_the_machine_before_it_answers(
    start_server,
):
    first, second = start_server(workers=2), start_server(workers=2)
    key = create_key(first.env, "Zapier production")
    warm(first.url, key["value"])
    warm(second.url, key["value"])

    rolled = requests.post(
        f"{first.url}/v1/api-keys/{key['id']}/roll", headers=key_header(key["value"]), timeout=5
    )

    assert rolled.status_code == 200
    # At once, no waiting: every worker of both servers, whichever takes the connection.
    for server in (first, second):
        for _ in range(6):
            refused = me(server.url, key["value"])
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "api_key_rolled"
    assert me(second.url, rolled.json()["value"]).ok


def test_a_delete_from_the_command_line_stops_the_key_in_a_running_server_at_once(start_server):
    server = start_server(workers=2)
    key = create_key(server.env, "n8n workflows")
    warm(server.url, key["value"])

    subprocess.run(
        bridge_command("keys", "delete", key["id"], "--yes"),
        env=server.env,
        check=True,
        capture_output=True,
    )

    for _ in range(6):
        refused = me(server.url, key["value"])
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "api_key_deleted"


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="other machines share PostgreSQL")
def test_another_machine_hears_of_a_roll_through_postgresql(start_server, tmp_path):
    # Separate runtime directories: the two servers share the database but not memory; and no
    # safety-net poll during the test, so that only the notification can tell the second.
    apart = {"BRIDGE_REVOCATION_POLL_SECONDS": "3600"}
    first = start_server(BRIDGE_RUNTIME_DIR=str(tmp_path / "machine-1"), **apart)
    second = start_server(BRIDGE_RUNTIME_DIR=str(tmp_path / "machine-2"), **apart)
    key = create_key(first.env, "Zapier production")
    warm(first.url, key["value"])
    warm(second.url, key["value"])

    rolled = requests.post(
        f"{first.url}/v1/api-keys/{key['id']}/roll", headers=key_header(key["value"]), timeout=5
    )
    assert rolled.status_code == 200

    deadline = time.monotonic() + 2
    while me(second.url, key["value"]).ok:
        assert time.monotonic() < deadline, "the other machine still accepts the old value"
        time.sleep(0.02)
