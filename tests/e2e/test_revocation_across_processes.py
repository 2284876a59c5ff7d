"""Two server processes share one database. Each caches authenticated keys; a roll or delete in
one must stop the old value in the other within a second."""

from __future__ import annotations

import json
import subprocess
import time

import requests

from ..helpers import bridge_command, key_header


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
    for _ in range(3):
        assert requests.get(server_url + "/v1/me", headers=key_header(value), timeout=5).ok


def test_a_roll_in_one_process_stops_the_old_value_in_another_within_a_second(start_server):
    first, second = start_server(), start_server()
    key = create_key(first.env, "Zapier production")
    warm(first.url, key["value"])
    warm(second.url, key["value"])

    rolled = requests.post(
        f"{first.url}/v1/api-keys/{key['id']}/roll", headers=key_header(key["value"]), timeout=5
    )
    rolled_at = time.monotonic()

    assert rolled.status_code == 200
    same_process = requests.get(first.url + "/v1/me", headers=key_header(key["value"]), timeout=5)
    assert same_process.status_code == 401
    time.sleep(max(0.0, 1.0 - (time.monotonic() - rolled_at)))
    other_process = requests.get(second.url + "/v1/me", headers=key_header(key["value"]), timeout=5)
    assert other_process.status_code == 401
    assert other_process.json()["error"]["code"] == "api_key_rolled"
    new_value = rolled.json()["value"]
    assert requests.get(second.url + "/v1/me", headers=key_header(new_value), timeout=5).ok


def test_a_delete_from_the_command_line_stops_the_key_in_a_running_server(start_server):
    server = start_server()
    key = create_key(server.env, "n8n workflows")
    warm(server.url, key["value"])

    subprocess.run(
        bridge_command("keys", "delete", key["id"], "--yes"),
        env=server.env,
        check=True,
        capture_output=True,
    )
    deleted_at = time.monotonic()

    time.sleep(max(0.0, 1.0 - (time.monotonic() - deleted_at)))
    refused = requests.get(server.url + "/v1/me", headers=key_header(key["value"]), timeout=5)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_deleted"
