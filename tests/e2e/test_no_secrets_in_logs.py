"""No key value ever reaches a log line: not on create, roll or delete, not when a request is
refused, not even when a client puts the key in the URL (as a query parameter, its name, or a
path segment, which the access log records redacted)."""

from __future__ import annotations

import logging

import requests

from connector import keys

from ..helpers import key_header


def exercise(call, admin_value: str, key_id: str) -> list[str]:
    """Create, roll and delete keys and fail authentication every way; returns every value seen."""
    seen = [admin_value]
    created = call("POST", "/v1/api-keys", admin_value, json={"name": "Temp"})
    seen.append(created["value"])
    rolled = call(
        "POST", f"/v1/api-keys/{created['id']}/roll", admin_value, json={"grace_seconds": 60}
    )
    seen.append(rolled["value"])
    call("GET", "/v1/me", created["value"])  # grace-period use
    call("DELETE", f"/v1/api-keys/{created['id']}", admin_value)
    for presented in (
        created["value"],
        rolled["value"],
        rolled["value"][:-1],
        f'"{admin_value}"',
        admin_value[:20] + ("A" if admin_value[20] != "A" else "B") + admin_value[21:],
        keys.generate(),
    ):
        seen.append(presented.strip('"'))
        call("GET", "/v1/me", presented)
    call("GET", f"/v1/me?api_key={admin_value}", None)
    call("GET", f"/v1/me?{admin_value}=1", admin_value)
    call("GET", f"/v1/templates/{admin_value}", admin_value)
    call("GET", f"/v1/templates/{rolled['value']}", created["value"])  # a rolled value
    call("GET", f"/v1/api-keys/{key_id}/failures", admin_value)
    return seen


def test_in_process_logs_hold_no_key_value(client, services, admin_key, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)

    def call(method: str, path: str, value: str | None, json: dict | None = None) -> dict:
        headers = key_header(value) if value is not None else {}
        return client.open(path, method=method, headers=headers, json=json).json

    try:
        seen = exercise(call, admin_key.value, admin_key.id)
        services.usage.flush()
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "api_key_values" in text  # the statements were logged, so the search means something
    for value in seen:
        assert value not in text
        assert value[8:] not in text


def test_server_logs_hold_no_key_value(start_server, services, admin_key) -> None:
    server = start_server()

    def call(method: str, path: str, value: str | None, json: dict | None = None) -> dict:
        headers = key_header(value) if value is not None else {}
        return requests.request(
            method, server.url + path, headers=headers, json=json, timeout=5
        ).json()

    seen = exercise(call, admin_key.value, admin_key.id)
    server.process.terminate()
    server.process.wait(timeout=15)

    log = server.log()
    assert "/v1/me" in log  # requests were logged, so the search means something
    assert '"path": "/v1/templates/tt_live_[redacted]"' in log
    for value in seen:
        assert value not in log
        assert value[8:] not in log
