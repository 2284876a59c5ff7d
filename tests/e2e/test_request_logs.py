"""A full run's log: every line JSON, one per request with the id echoed to the client, and not
a single secret in any line: key values, passwords, session cookies, signing secrets."""

from __future__ import annotations

import json
import re

import requests

from ..conftest import PASSWORD
from ..helpers import key_header


def test_every_log_line_is_json_and_holds_no_secret(
    start_server, server_env, services, admin_key, admin_user, receiver
) -> None:
    server = start_server()
    browser = requests.Session()
    token = re.search(
        r'name="csrf_token" value="([^"]+)"', browser.get(server.url + "/signin").text
    )
    signed_in = browser.post(
        server.url + "/signin",
        data={"email": admin_user.email, "password": PASSWORD, "csrf_token": token.group(1)},
        allow_redirects=False,
    )
    page = browser.get(server.url + "/generate/api-keys")
    form_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    created = browser.post(
        server.url + "/generate/api-keys",
        data={"name": "From the page", "csrf_token": form_token},
        headers={"Accept": "application/json"},
    ).json()
    hook = requests.post(
        server.url + "/v1/hooks",
        json={"target_url": receiver.url + "/hook", "events": ["template.created"]},
        headers=key_header(admin_key.value),
        timeout=10,
    ).json()
    traced = requests.get(
        server.url + "/v1/me",
        headers={**key_header(admin_key.value), "X-Request-Id": "trace-42"},
        timeout=10,
    )
    generated = requests.get(
        server.url + "/v1/me", headers=key_header(created["value"]), timeout=10
    )
    requests.get(server.url + f"/v1/me?api_key={admin_key.value}", timeout=10)
    server.process.terminate()
    server.process.wait(timeout=15)

    lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    requests_logged = [line for line in lines if line.get("message") == "request"]
    secrets = [
        admin_key.value,
        created["value"],
        PASSWORD,
        hook["secret"],
        signed_in.cookies["bridge_session"],
        browser.cookies["bridge_session"],
        server_env["BRIDGE_SECRET_KEY"],
    ]
    text = server.log()
    for secret in secrets:
        assert secret not in text
    assert created["value"][8:] not in text and admin_key.value[8:] not in text
    assert traced.headers["X-Request-Id"] == "trace-42"
    assert any(line["request_id"] == "trace-42" for line in requests_logged)
    assert any(
        line["request_id"] == generated.headers["X-Request-Id"] and line["status"] == 200
        for line in requests_logged
    )
    first = requests_logged[0]
    assert {
        "time", "level", "logger", "pid", "method", "path", "route", "status", "duration_ms"
    } <= set(first)  # fmt: skip
    assert all("?" not in line["path"] for line in requests_logged)
