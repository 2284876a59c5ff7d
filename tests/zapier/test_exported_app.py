"""The exported Zapier app, run unchanged by Zapier's own runtime (zapier-platform-core 19.1.0,
createAppTester under NODE_ENV=test) against a live bridge on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from connector.templates import TemplateFields
from zapier_bridge.export import export

from .conftest import RUNTIME


@pytest.fixture
def app_dir(tmp_path: Path, start_server, zapier_runtime: Path) -> tuple[Path, str]:
    server = start_server()
    directory = tmp_path / "zapier-app"
    export(directory, server.url)
    (directory / "node_modules").symlink_to(zapier_runtime)
    return directory, server.url


def run(app: Path, key: str, scenario: str, data: dict | None = None) -> dict:
    env = {**os.environ, "TEMPLATETO_API_KEY": key}
    completed = subprocess.run(
        [
            shutil.which("node") or "node",
            str(RUNTIME / "run_app.js"),
            str(app),
            scenario,
            json.dumps(data or {}),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    # The runtime logs its own lines too; ours is the one JSON result line.
    [result] = [line for line in completed.stdout.splitlines() if line.startswith('{"ok":')]
    return json.loads(result)


def test_the_app_definition_is_valid(app_dir, standard_key) -> None:
    result = run(app_dir[0], standard_key.value, "validate")

    assert result == {"ok": True, "result": {"errors": []}}


def test_connect_triggers_create_search_and_hooks(
    app_dir, services, account, standard_key, receiver
) -> None:
    app, _ = app_dir
    invoice = services.templates.create(
        account.id, TemplateFields(name="Invoice", body="<p>Invoice {{ number }} Łódź €</p>")
    )
    key = standard_key.value

    connected = run(app, key, "auth")
    templates = run(app, key, "trigger", {"key": "new_template"})
    dropdown = run(app, key, "trigger", {"key": "templates"})
    pdf = run(
        app,
        key,
        "create",
        {"template": invoice.id, "data": {"number": "42"}, "document_type": "pdf"},
    )
    txt = run(
        app,
        key,
        "create",
        {
            "template": invoice.id,
            "advanced": True,
            "data": '{"number": 7}',
            "document_type": "txt",
        },
    )
    documents = run(app, key, "performList", {"key": "new_document"})
    found = run(app, key, "search", {"key": "find_template", "inputData": {"name": "INVOICE"}})
    hooks = run(app, key, "subscribe", {"key": "new_document", "targetUrl": receiver.url})
    document_id = pdf["result"]["document"]["id"]
    by_id = run(app, key, "search", {"key": "find_document", "inputData": {"id": document_id}})
    old_values = run(app, key, "performList", {"key": "old_value_used"})

    assert connected["result"]["label"] == "Acme Ltd · n8n workflows"
    assert [t["id"] for t in templates["result"]] == [invoice.id]
    assert [(t["id"], t["name"]) for t in dropdown["result"]] == [(invoice.id, "Invoice")]
    assert pdf["ok"], pdf
    assert pdf["result"]["document"]["format"] == "pdf"
    assert pdf["result"]["file"]["text"].startswith("%PDF")
    assert "Invoice.pdf" in pdf["result"]["file"]["disposition"]
    assert key not in json.dumps(pdf["result"]["document"])
    assert txt["result"]["file"]["text"] == "Invoice 7 Łódź €\n"
    assert pdf["result"]["file"]["size"] == pdf["result"]["document"]["size"]
    assert [d["id"] for d in documents["result"]] == [
        txt["result"]["document"]["id"],
        pdf["result"]["document"]["id"],
    ]
    assert [t["id"] for t in found["result"]] == [invoice.id]
    assert [d["id"] for d in by_id["result"]] == [document_id]
    assert old_values == {"ok": True, "result": []}
    assert hooks["result"]["subscribeData"]["id"].startswith("hook_")
    assert hooks["result"]["unsubscribed"]["deleted"] is True
    assert services.hooks.list(account.id) == []
    again = run(
        app,
        key,
        "unsubscribe",
        {"key": "new_document", "id": hooks["result"]["subscribeData"]["id"]},
    )
    assert again == {
        "ok": True,
        "result": {"id": hooks["result"]["subscribeData"]["id"], "deleted": False},
    }


def test_a_rolled_key_gives_the_exact_error_the_user_sees(app_dir, services, standard_key) -> None:
    app, _ = app_dir
    services.keys.roll(None, standard_key.id)

    auth = run(app, standard_key.value, "auth")
    zap = run(app, standard_key.value, "performList", {"key": "new_document"})

    # z.errors.Error reaches Zapier as an AppError carrying message, code and status.
    assert auth["ok"] is False and auth["name"] == "AppError"
    shown = json.loads(auth["message"])
    assert shown["code"] == "AuthenticationError" and shown["status"] == 401
    assert shown["message"].startswith("This API key ('n8n workflows') was rolled on ")
    assert zap["ok"] is False and zap["name"] == "ExpiredAuthError"
    assert "Reconnect your TemplateTo account in Zapier" in zap["message"]


def test_a_deleted_key_gives_the_exact_error_the_user_sees(app_dir, services, standard_key):
    app, _ = app_dir
    services.keys.delete(None, standard_key.id)

    zap = run(app, standard_key.value, "trigger", {"key": "new_template"})

    assert zap["ok"] is False and zap["name"] == "ExpiredAuthError"
    assert zap["message"].startswith("This API key ('n8n workflows') was deleted on ")


def test_template_data_switches_to_json_text_with_advanced_input(app_dir, standard_key) -> None:
    app, _ = app_dir

    simple = run(app, standard_key.value, "dataField", {"advanced": "false"})
    advanced = run(app, standard_key.value, "dataField", {"advanced": "true"})

    assert [(f["key"], f.get("dict"), f.get("type")) for f in simple["result"]] == [
        ("data", True, None)
    ]
    assert [(f["key"], f.get("type")) for f in advanced["result"]] == [("data", "text")]


def test_over_the_rate_zapier_is_told_when_to_retry(
    tmp_path: Path, start_server, server_env, standard_key, zapier_runtime: Path
) -> None:
    server_env["BRIDGE_RATE_LIMIT_PER_KEY"] = "1/minute"
    server = start_server()
    app = tmp_path / "zapier-app"
    export(app, server.url)
    (app / "node_modules").symlink_to(zapier_runtime)

    first = run(app, standard_key.value, "trigger", {"key": "new_template"})
    throttled = run(app, standard_key.value, "trigger", {"key": "new_template"})

    assert first == {"ok": True, "result": []}
    # Zapier retries a ThrottledError after its delay: our integer Retry-After.
    assert throttled["ok"] is False and throttled["name"] == "ThrottledError"
    shown = json.loads(throttled["message"])
    assert isinstance(shown["delay"], int) and 1 <= shown["delay"] <= 60


def test_the_template_dropdown_pages_through_every_template(
    app_dir, services, account, standard_key
) -> None:
    made = {
        services.templates.create(account.id, TemplateFields(name=f"T{n}", body="x")).id
        for n in range(105)
    }

    shown = run(app_dir[0], standard_key.value, "allPages", {"key": "templates", "limit": 50})

    ids = [template["id"] for template in shown["result"]]
    assert len(ids) == 105 and set(ids) == made
