"""Issue 18's parts 1 and 3 against real processes: a `templateto-bridge worker` notices a key
that becomes due while it runs and tells it once, also across a restart; a served API keeps the
policy, each key's rotation and the audit log, which no method changes."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from connector.events import EventType
from connector.templates import TemplateFields
from connector.webhooks.subscriptions import NewHook

from ..helpers import bridge_command, key_header


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path


def start_worker(server_env, tmp_path, name: str) -> Worker:
    """A worker process, once it has begun delivering (and made its first look for due keys)."""
    log_path = tmp_path / f"worker-{name}.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            bridge_command("worker"),
            env={**server_env, "PYTHONFAULTHANDLER": "1"},  # SIGABRT prints where it is
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "Delivering webhooks." not in log_path.read_text():
        assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.05)
    return Worker(worker, log_path)


def stop(*workers: Worker) -> None:
    """SIGTERM, as a supervisor stops a worker: it finishes its batch (here: none) and ends."""
    for worker in workers:
        worker.process.terminate()
        try:
            worker.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.process.send_signal(signal.SIGABRT)
            worker.process.wait()
            raise AssertionError(worker.log.read_text()) from None


def test_worker_processes_tell_a_key_due_once_across_a_restart(
    services, account, standard_key, receiver, server_env, tmp_path, clock
) -> None:
    services.hooks.create(
        account.id,
        standard_key.id,
        NewHook(
            target_url=receiver.url + "/hook",
            events=[EventType.API_KEY_ROTATION_DUE, EventType.TEMPLATE_CREATED],
        ),
        "api",
    )
    first, second = (start_worker(server_env, tmp_path, name) for name in ("1", "2"))
    try:
        # The workers run on the real clock: the key falls due while they run; they look every
        # 30 seconds.
        clock.current = datetime.now(UTC)
        services.keys.set_rotate_by(account.id, standard_key.id, clock.current + timedelta(days=2))
        [told] = receiver.wait_for(1, timeout=60)
    finally:
        stop(first, second)

    restarted = start_worker(server_env, tmp_path, "3")
    try:
        # A worker looks for due keys before each batch: once this event is delivered, the
        # restarted worker has looked at the key too.
        services.templates.create(account.id, TemplateFields(name="Marker", body="x"))
        received = receiver.wait_for(2, timeout=60)
    finally:
        stop(restarted)

    assert told.json["type"] == "api_key.rotation_due"
    assert (told.json["data"]["id"], told.json["data"]["rotation"]) == (standard_key.id, "due")
    assert [r.json["type"] for r in received] == ["api_key.rotation_due", "template.created"]


def test_a_served_api_keeps_the_policy_rotation_and_an_unchangeable_audit_log(
    start_server, admin_key, services, account
) -> None:
    server = start_server(workers=2)
    headers = key_header(admin_key.value, user_agent="e2e-test/1")
    api = requests.Session()
    api.headers.update(headers)
    other = services.keys.create(account.id, "Reporting")

    policy = api.put(server.url + "/v1/key-policy", json={"max_age_days": 90}, timeout=10)
    refused = api.put(server.url + "/v1/key-policy", json={"on_leak": "shred"}, timeout=10)
    overdue = api.patch(
        f"{server.url}/v1/api-keys/{other.id}",
        json={"rotate_by": "2020-01-01T00:00:00Z"},
        timeout=10,
    )
    to_roll = api.get(server.url + "/v1/api-keys?rotation=due,overdue", timeout=10)
    log = api.get(server.url + "/v1/audit-log", timeout=10)

    assert policy.status_code == 200 and policy.json()["max_age_days"] == 90
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "validation_failed"
    assert api.get(server.url + "/v1/key-policy", timeout=10).json()["on_leak"] == "notify"
    assert overdue.json()["rotation"] == "overdue"
    assert [key["name"] for key in to_roll.json()["data"]] == ["Reporting"]
    entries = log.json()["data"]
    assert [e["action"] for e in entries[:2]] == ["api_key.rotate_by_set", "key_policy.changed"]
    assert {(e["actor"], e["via"], e["user_agent"]) for e in entries[:2]} == {
        (admin_key.hint, "api", "e2e-test/1")
    }
    for method in ("PUT", "PATCH", "DELETE"):
        for path in ("/v1/audit-log", f"/v1/audit-log/{entries[0]['id']}"):
            answer = api.request(method, server.url + path, json={}, timeout=10)
            assert answer.status_code == 405, (method, path)
            assert answer.json()["error"]["code"] == "method_not_allowed"
    assert api.get(server.url + "/v1/audit-log", timeout=10).json()["data"] == entries
