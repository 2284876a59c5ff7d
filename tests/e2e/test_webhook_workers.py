"""Delivery workers as real processes: killed mid-batch they lose nothing; two of them on
PostgreSQL send each delivery once; serve delivers by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import defaultdict

import pytest
import requests

from connector.clients import Client
from connector.documents import NewDocument
from connector.rendering import Format
from connector.templates import TemplateFields
from connector.webhooks.subscriptions import NewHook

from ..helpers import bridge_command, key_header

EVENTS = 20


@pytest.fixture
def start_worker(server_env, tmp_path):
    started: list[subprocess.Popen] = []

    def start(concurrency: int = 4) -> subprocess.Popen:
        env = dict(server_env, BRIDGE_DELIVERY_LEASE_SECONDS="2")
        log = (tmp_path / f"worker-{len(started)}.log").open("w")
        process = subprocess.Popen(
            bridge_command("worker", "--concurrency", str(concurrency)),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)


def make_events(services, account, count: int) -> set[str]:
    return {
        services.templates.create(account.id, TemplateFields(name=f"T{n}", body="x")).id
        for n in range(count)
    }


def wait_for_templates(receiver, expected: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if {r.json["data"]["id"] for r in list(receiver.requests)} >= expected:
            return
        time.sleep(0.05)
    raise AssertionError("not every event arrived")


def webhook_ids_per_event(receiver) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for received in receiver.requests:
        ids[received.json["id"]].add(received.headers["webhook-id"])
    return ids


def test_a_worker_killed_mid_batch_loses_nothing(
    services, account, hook, receiver, start_worker
) -> None:
    receiver.delay_seconds = 0.3
    templates = make_events(services, account, EVENTS)

    first = start_worker()
    receiver.wait_for(3, timeout=30)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    receiver.delay_seconds = 0
    start_worker()

    wait_for_templates(receiver, templates)
    assert len(webhook_ids_per_event(receiver)) == EVENTS
    assert all(len(ids) == 1 for ids in webhook_ids_per_event(receiver).values())


def test_two_workers_on_postgresql_deliver_each_event_once(
    services, account, hook, receiver, start_worker
) -> None:
    if services.db.dialect != "postgresql":
        pytest.skip("sharing the outbox with SKIP LOCKED is a PostgreSQL feature")
    start_worker(), start_worker()
    templates = make_events(services, account, 50)

    wait_for_templates(receiver, templates)
    time.sleep(1)  # anything sent twice would arrive by now

    assert len(receiver.requests) == 50


def test_serve_delivers_by_itself(start_server, services, account, standard_key, receiver):
    server = start_server()
    headers = key_header(standard_key.value)
    hook = requests.post(
        server.url + "/v1/hooks",
        json={"target_url": receiver.url + "/hook", "events": ["template.created"]},
        headers=headers,
        timeout=5,
    ).json()

    created = requests.post(
        server.url + "/v1/templates", json={"name": "Live", "body": "x"}, headers=headers, timeout=5
    ).json()

    [received] = receiver.wait_for(1)
    assert received.json["data"]["id"] == created["id"]
    assert received.headers["webhook-signature"].startswith("v1,")
    assert hook["secret"].startswith("whsec_")


def test_a_separate_worker_speaks_to_each_platform_in_its_shape(
    start_worker, services, account, standard_key, receiver
) -> None:
    for platform in ("zapier", "n8n"):
        services.hooks.create(
            account.id,
            standard_key.id,
            NewHook(target_url=f"{receiver.url}/{platform}", events=["document.created"]),
            platform,
        )
    template = services.templates.create(account.id, TemplateFields(name="T", body="x"))
    document = services.documents.create(
        account.id, NewDocument(template_id=template.id, format=Format.TXT), Client.OTHER
    )
    start_worker()

    by_path = {received.path: received.json for received in receiver.wait_for(2, timeout=60)}

    # Zapier: the item as its New Document trigger polls it. n8n: the event as Get Many lists it.
    assert by_path["/zapier"]["id"] == document.id
    assert by_path["/zapier"]["filename"] == "T.txt" and "type" not in by_path["/zapier"]
    assert by_path["/n8n"]["type"] == "document.created"
    assert by_path["/n8n"]["data"]["id"] == document.id
