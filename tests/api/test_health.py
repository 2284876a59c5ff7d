"""/healthz, /readyz and /metrics: what a load balancer, an orchestrator and Prometheus rely on."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from multiprocessing import forkserver
from pathlib import Path

import requests

from connector import keys
from connector.app import create_app
from connector.config import load_settings
from connector.rendering.engines import Engine
from connector.services import EXTENSION
from connector.templates import TemplateFields
from connector.webhooks.subscriptions import NewHook

from ..helpers import key_header


def sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format; 0 when absent."""
    for line in metrics.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_healthz_answers_without_a_key(client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_readyz_checks_database_schema_and_delivery(client, services) -> None:
    separate = client.get("/readyz")
    services.delivery.start()
    try:
        delivering = client.get("/readyz")
    finally:
        services.delivery.stop()

    assert separate.status_code == 200
    assert separate.json == {
        "status": "ready",
        "checks": {
            "database": "ok",
            "schema": "ok",
            "delivery": "separate workers",
            "rendering": "ok",  # its processes start with the first render
            "pdf_engine": "ok",
        },
        # CI installs WeasyPrint's and Chromium's system packages (.ci/run).
        "pdf_engines": {
            "default": "xhtml2pdf",
            "available": ["xhtml2pdf", "weasyprint", "chromium"],
        },
    }
    assert delivering.json["checks"]["delivery"] == "ok"


def test_readyz_is_503_when_the_default_engine_is_not_installed(settings, tmp_path) -> None:
    missing = settings.model_copy(
        update={"pdf_engine": Engine.CHROMIUM, "chromium_path": tmp_path / "no-chromium"}
    )
    app = create_app(missing)
    try:
        response = app.test_client().get("/readyz")
    finally:
        app.extensions[EXTENSION].close()

    assert response.status_code == 503
    assert response.json["checks"]["pdf_engine"] == "chromium is not installed"
    assert response.json["pdf_engines"]["available"] == ["xhtml2pdf", "weasyprint"]


def fork_server_pid() -> int:
    """This process's multiprocessing fork server, which starts every render process."""
    forkserver.ensure_running()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = stat.read_text().rsplit(")", 1)[1].split()[1]
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        if parent == str(os.getpid()) and b"forkserver" in command:
            return int(stat.parent.name)
    raise AssertionError("no fork server")


def test_readyz_is_503_while_the_render_processes_start(settings) -> None:
    app = create_app(settings.model_copy(update={"render_concurrency": 16}))
    client = app.test_client()
    starting = threading.Thread(target=app.extensions[EXTENSION].renderer.start)
    # With the fork server stopped, the first render process cannot come up: the start stays
    # under way while the test asks. (Once the fork server runs, a start can take a few ms.)
    fork_server = fork_server_pid()
    os.kill(fork_server, signal.SIGSTOP)
    try:
        starting.start()
        deadline = time.monotonic() + 10
        during = client.get("/readyz")
        while during.status_code == 200 and time.monotonic() < deadline:
            during = client.get("/readyz")  # until the thread is under way
    finally:
        os.kill(fork_server, signal.SIGCONT)
    try:
        starting.join()
        after = client.get("/readyz")
    finally:
        app.extensions[EXTENSION].close()

    assert (during.status_code, during.json["checks"]["rendering"]) == (503, "starting")
    assert after.status_code == 200 and after.json["checks"]["rendering"] == "ok"


def test_readyz_is_503_without_the_schema(tmp_path) -> None:
    app = create_app(load_settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/new.db"))

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert response.json["checks"]["schema"] == "outdated: run templateto-bridge init"
    app.extensions["templateto"].close()


def test_readyz_and_requests_are_503_when_the_database_is_unreachable(tmp_path) -> None:
    app = create_app(
        load_settings(data_dir=tmp_path, database_url="postgresql://postgres@127.0.0.1:9/nowhere")
    )
    client = app.test_client()

    ready = client.get("/readyz")
    # A well-formed key with a right checksum: only the database can say whose it is.
    request = client.get("/v1/me", headers=key_header(keys.generate()))

    assert ready.status_code == 503
    assert ready.json["checks"]["database"].startswith("unreachable")
    assert request.status_code == 503
    assert request.json["error"]["code"] == "storage_unavailable"
    assert request.headers["Retry-After"] == "5"
    app.extensions["templateto"].close()


def test_metrics_count_requests_authentications_deliveries_and_the_outbox(
    client, services, account, standard_key, receiver
) -> None:
    services.hooks.create(
        account.id,
        standard_key.id,
        NewHook(target_url=receiver.url + "/hook", events=["template.created"]),
        "api",
    )
    client.get("/v1/me", headers=key_header(standard_key.value))
    client.get("/v1/me", headers=key_header(standard_key.value))
    client.get("/v1/me", headers=key_header("tt_live_" + "A" * 38))
    client.get("/v1/templates/tpl_nope", headers=key_header(standard_key.value))
    services.templates.create(account.id, TemplateFields(name="Invoice", body="<p>x</p>"))
    waiting = client.get("/metrics").text
    services.delivery.run_once()

    metrics = client.get("/metrics")

    text = metrics.text
    assert metrics.mimetype == "text/plain"
    assert sample(text, "bridge_http_requests_total", route="/v1/me", status="200") == 2
    assert sample(text, "bridge_http_requests_total", route="/v1/me", status="401") == 1
    assert (
        sample(
            text, "bridge_http_requests_total", route="/v1/templates/<template_id>", status="404"
        )
        == 1
    )
    assert sample(text, "bridge_http_request_duration_seconds_count", route="/v1/me") == 3
    assert sample(text, "bridge_authentications_total", result="accepted") == 3
    assert sample(text, "bridge_authentications_total", result="api_key_checksum_mismatch") == 1
    assert sample(text, "bridge_webhook_deliveries_total", outcome="delivered") == 1
    assert sample(waiting, "bridge_outbox_pending_deliveries") == 1
    assert sample(text, "bridge_outbox_pending_deliveries") == 0


def test_metrics_name_their_format_and_charset_once(client) -> None:
    metrics = client.get("/metrics")

    assert metrics.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_metrics_add_up_every_gunicorn_worker(start_server, standard_key) -> None:
    server = start_server(workers=2)
    for _ in range(40):
        requests.get(server.url + "/v1/me", headers=key_header(standard_key.value), timeout=10)

    # Whichever worker answers the scrape, the totals are the same.
    scrapes = [requests.get(server.url + "/metrics", timeout=10).text for _ in range(6)]

    counts = {
        sample(s, "bridge_http_requests_total", route="/v1/me", status="200") for s in scrapes
    }
    assert counts == {40.0}


def test_without_redis_the_limits_still_count_and_readyz_says_degraded(
    settings, clock, account, redis_server
) -> None:
    """Redis set but not answering: each process counts, /readyz and /metrics say so; once it
    answers, every process counts in it again."""
    shared = settings.model_copy(
        update={"redis_url": redis_server.url, "rate_limit_per_key": "3/minute"}
    )
    first, second = create_app(shared, clock=clock), create_app(shared, clock=clock)
    try:
        key = first.extensions[EXTENSION].keys.create(account.id, "Zapier production")
        headers = key_header(key.value)
        away = [first.test_client().get("/v1/me", headers=headers).status_code for _ in range(4)]
        degraded = first.test_client().get("/readyz")
        metrics_away = first.test_client().get("/metrics").text

        redis_server.start()
        ready = first.test_client().get("/readyz")
        metrics_back = second.test_client().get("/metrics").text
        back = [app.test_client().get("/v1/me", headers=headers) for app in (first, second) * 2]
    finally:
        for app in (first, second):
            app.extensions[EXTENSION].close()

    assert away == [200, 200, 200, 429]  # counted in this process's memory
    assert degraded.status_code == 200
    assert degraded.json["status"] == "degraded"
    assert degraded.json["checks"]["redis"] == "unreachable: abuse limits count locally"
    assert sample(metrics_away, "bridge_redis_up") == 0
    assert ready.json["status"] == "ready" and ready.json["checks"]["redis"] == "ok"
    assert sample(metrics_back, "bridge_redis_up") == 1
    assert [answer.status_code for answer in back] == [200, 200, 200, 429]  # shared again
