"""Leak response against a live server: GitHub's signed matches (a P-256 key pair of the test's
own, in GitHub's keys file format) mark the key leaked and deliver `api_key.leaked` to a
subscription; `templateto-bridge scan --report` reports what it found by digest."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import requests
from cryptography.hazmat.primitives.asymmetric import ec

from connector.webhooks.subscriptions import NewHook

from ..helpers import (
    bridge_command,
    github_matches,
    key_header,
    signed_by_github,
    write_github_keys,
)

WHERE = "https://github.com/acme/app/blob/abc/settings.py#L2"


def keys_by_id(server, admin_key) -> dict[str, dict]:
    listed = requests.get(server.url + "/v1/api-keys", headers=key_header(admin_key.value))
    return {key["id"]: key for key in listed.json()["data"]}


def test_github_reports_a_leak_which_is_marked_and_delivered_to_hooks(
    start_server, services, account, admin_key, receiver, tmp_path: Path
) -> None:
    github = ec.generate_private_key(ec.SECP256R1())
    keys_file = tmp_path / "github-keys.json"
    write_github_keys(keys_file, {"github-key-1": github})
    services.hooks.create(
        account.id,
        admin_key.id,
        NewHook(target_url=receiver.url + "/leaks", events=["api_key.leaked"]),
        "api",
    )
    zap = services.keys.create(account.id, "Zapier staging")
    server = start_server(BRIDGE_GITHUB_SECRET_SCANNING_KEYS=str(keys_file))
    body = github_matches(zap.value, url=WHERE)

    unsigned = requests.post(server.url + "/v1/secret-scanning/github", data=body, timeout=10)
    answer = requests.post(
        server.url + "/v1/secret-scanning/github",
        data=body,
        headers=signed_by_github(body, github, "github-key-1"),
        timeout=10,
    )

    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "signature_missing"
    assert answer.status_code == 200
    assert answer.json() == [
        {
            "token_hash": hashlib.sha256(zap.value.encode()).hexdigest(),
            "token_type": "templateto_api_key",
            "label": "true_positive",
        }
    ]
    marked = keys_by_id(server, admin_key)[zap.id]
    assert marked["leaked_at"] is not None and marked["leak_url"] == WHERE
    [delivered] = receiver.wait_for(1, timeout=60)
    assert delivered.path == "/leaks"
    event = delivered.json
    assert event["type"] == "api_key.leaked"
    assert event["data"]["id"] == zap.id and event["data"]["url"] == WHERE
    assert event["data"]["hint"] == zap.hint
    assert zap.value not in delivered.body.decode()
    assert zap.value not in server.log()


def test_scan_report_marks_the_accounts_leaked_keys_and_rolls_them_by_policy(
    start_server, server_env, services, account, admin_key, tmp_path: Path
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    others = services.keys.create(services.accounts.create("Other Ltd").id, "Theirs")
    project = tmp_path / "project"
    project.mkdir()
    (project / "settings.py").write_text(f'ZAPIER = "{zap.value}"\nOTHER = "{others.value}"\n')
    server = start_server()
    policy = requests.put(
        server.url + "/v1/key-policy",
        json={"on_leak": "roll"},
        headers=key_header(admin_key.value),
        timeout=10,
    )
    assert policy.status_code == 200

    scanned = subprocess.run(
        bridge_command("scan", "--report", server.url, "settings.py"),
        cwd=project,
        env={**server_env, "TEMPLATETO_API_KEY": admin_key.value},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert scanned.returncode == 1, scanned.stderr
    assert scanned.stdout.splitlines() == [
        f"settings.py:1: {zap.hint}",
        f"settings.py:2: {others.hint}",
        f"reported settings.py:1: leaked (key 'Zapier staging', {zap.id}), rolled",
        "reported settings.py:2: not_found",
    ]
    assert zap.value not in scanned.stdout + scanned.stderr
    listed = keys_by_id(server, admin_key)[zap.id]
    assert listed["leak_url"] == "settings.py:1" and listed["rolled_at"] is not None
    refused = requests.get(server.url + "/v1/me", headers=key_header(zap.value), timeout=10)
    assert refused.json()["error"]["code"] == "api_key_rolled"
    assert services.keys.get(None, others.id).leaked_at is None
    listed_by_cli = subprocess.run(
        bridge_command("keys", "list", "--account", account.id, "--json"),
        env=server_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    by_id = {key["id"]: key for key in json.loads(listed_by_cli.stdout)}
    assert by_id[zap.id]["leak_url"] == "settings.py:1"
