"""The templateto-bridge command: schema set-up, accounts, users, keys, and its refusals."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from connector.cli import main
from connector.db import make_engine


@pytest.fixture
def run(server_env: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(main, list(args), env=server_env, input=stdin, catch_exceptions=False)

    return invoke


@pytest.fixture
def fresh_env(tmp_path: Path, server_env: dict[str, str]) -> dict[str, str]:
    """An environment pointing at an empty SQLite database with no schema."""
    env = dict(server_env)
    env["BRIDGE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'fresh.db'}"
    return env


def test_init_creates_then_reports_a_current_schema(fresh_env) -> None:
    runner = CliRunner()

    created = runner.invoke(main, ["init"], env=fresh_env)
    again = runner.invoke(main, ["init"], env=fresh_env)

    assert created.exit_code == 0 and "Schema created" in created.output
    assert again.exit_code == 0 and "Schema is current" in again.output


def test_serve_refuses_a_database_without_schema_and_names_the_fix(fresh_env) -> None:
    result = CliRunner().invoke(main, ["serve"], env=fresh_env)

    assert result.exit_code != 0
    assert "templateto-bridge init" in result.output


def test_serve_refuses_an_outdated_schema(fresh_env) -> None:
    CliRunner().invoke(main, ["init"], env=fresh_env)
    engine = make_engine(fresh_env["BRIDGE_DATABASE_URL"])
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()

    result = CliRunner().invoke(main, ["serve"], env=fresh_env)

    assert result.exit_code != 0
    assert "revision 0000" in result.output and "templateto-bridge init" in result.output


def test_serve_refuses_a_port_another_server_listens_on(run, services) -> None:
    # Its workers bind with SO_REUSEPORT, which would otherwise share the port with the other.
    with socket.create_server(("127.0.0.1", 0)) as other:
        port = other.getsockname()[1]
        result = run("serve", "--port", str(port))

    assert result.exit_code != 0
    assert f"Cannot listen on 127.0.0.1:{port}: Address already in use" in result.output
    assert "choose another --port" in result.output


def test_serve_refuses_a_host_that_is_not_this_machines(run, services) -> None:
    unknown = run("serve", "--host", "no-such-host.invalid", "--port", "8000")

    assert unknown.exit_code != 0
    assert "Cannot listen on no-such-host.invalid:8000" in unknown.output
    assert "Check --host" in unknown.output


def test_bad_configuration_stops_with_the_variable_named(fresh_env) -> None:
    fresh_env["BRIDGE_PUBLIC_URL"] = "not-a-url"

    result = CliRunner().invoke(main, ["serve"], env=fresh_env)

    assert result.exit_code != 0
    assert "BRIDGE_PUBLIC_URL" in result.output


def test_key_lifecycle_from_the_command_line(run) -> None:
    account = json.loads(run("accounts", "create", "Acme Ltd", "--json").output)

    created = run("keys", "create", "--account", account["id"], "--name", "CI monitor", "--json")
    key = json.loads(created.output)
    listed = run("keys", "list", "--account", account["id"])
    rolled = json.loads(run("keys", "roll", key["id"], "--grace", "1h", "--json").output)
    deleted = json.loads(run("keys", "delete", key["id"], "--yes", "--json").output)

    assert created.exit_code == 0
    assert key["value"].startswith("tt_live_") and key["name"] == "CI monitor"
    assert key["id"] in listed.output and key["value"] not in listed.output
    assert key["hint"] in listed.output
    assert rolled["id"] == key["id"] and rolled["value"] != key["value"]
    assert rolled["old_values"][0]["works_until"] is not None
    assert deleted["status"] == "deleted"


def test_key_value_is_printed_once_with_a_warning(run) -> None:
    account = json.loads(run("accounts", "create", "Acme Ltd", "--json").output)

    created = run("keys", "create", "--account", account["id"], "--name", "Zapier")

    assert "tt_live_" in created.output
    assert "shown once" in created.output


def test_delete_asks_for_confirmation(run) -> None:
    account = json.loads(run("accounts", "create", "Acme Ltd", "--json").output)
    key = json.loads(
        run("keys", "create", "--account", account["id"], "--name", "K", "--json").output
    )

    declined = run("keys", "delete", key["id"], stdin="n\n")

    assert declined.exit_code != 0
    listed = json.loads(run("keys", "list", "--account", account["id"], "--json").output)
    assert listed[0]["status"] == "active"


def test_cli_errors_are_one_line_with_the_code(run) -> None:
    missing = run("keys", "roll", "key_nope")
    too_long = run("keys", "roll", "key_nope", "--grace", "8d")
    no_account = run("keys", "create", "--account", "acc_nope", "--name", "K")

    assert missing.exit_code == 1 and "api_key_not_found" in missing.output
    assert too_long.exit_code == 2 and "7 days" in too_long.output
    assert no_account.exit_code == 1 and "account_not_found" in no_account.output


def test_failures_command_reports_old_value_uses(run, server_env) -> None:
    account = json.loads(run("accounts", "create", "Acme Ltd", "--json").output)
    key = json.loads(
        run("keys", "create", "--account", account["id"], "--name", "K", "--json").output
    )

    empty = run("keys", "failures", key["id"])
    as_json = run("keys", "failures", key["id"], "--json")

    assert "No uses of old values" in empty.output
    assert json.loads(as_json.output) == []


def test_users_are_created_with_a_hashed_password_from_stdin(run, server_env) -> None:
    account = json.loads(run("accounts", "create", "Acme Ltd", "--json").output)

    created = run(
        "users",
        "create",
        "--account",
        account["id"],
        "--email",
        "Ada@Example.com",
        "--role",
        "admin",
        "--json",
        stdin="correct horse battery\n",
    )
    duplicate = run(
        "users",
        "create",
        "--account",
        account["id"],
        "--email",
        "ada@example.com",
        stdin="another password!\n",
    )
    short = run(
        "users",
        "create",
        "--account",
        account["id"],
        "--email",
        "bob@example.com",
        stdin="short\n",
    )

    user = json.loads(created.output)
    assert user["email"] == "ada@example.com" and user["role"] == "admin"
    assert "correct horse" not in created.output
    assert duplicate.exit_code == 1 and "email_taken" in duplicate.output
    assert short.exit_code == 1 and "password" in short.output
    engine = make_engine(server_env["BRIDGE_DATABASE_URL"])
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT password_hash FROM users")).scalar_one()
    engine.dispose()
    assert "correct horse" not in stored and stored.startswith("scrypt:")


def test_demo_creates_an_account_key_and_user_once(run) -> None:
    first = run("demo")
    second = run("demo")

    assert "tt_live_" in first.output and "admin@demo.example" in first.output
    assert "already exists" in second.output and "tt_live_…" in second.output
    assert first.output.count("tt_live_") >= 1
    assert "keys roll" in second.output


def test_templates_import_saves_a_file_and_refuses_a_broken_one(run, tmp_path) -> None:
    account = json.loads(run("accounts", "create", "Acme Ltd", "--json").output)
    good = tmp_path / "invoice.html"
    good.write_text("<h1>Invoice {{ number }}</h1>\n<p>{{ customer.name }}</p>", encoding="utf-8")
    broken = tmp_path / "broken.html"
    broken.write_text("<p>ok</p>\n<p>{{ customer.name </p>", encoding="utf-8")

    imported = run("templates", "import", str(good), "--account", account["id"], "--json")
    refused = run("templates", "import", str(broken), "--account", account["id"])

    template = json.loads(imported.output)
    assert template["name"] == "invoice"
    assert template["variables"] == ["customer", "number"]
    assert refused.exit_code == 1
    assert "template_syntax_error" in refused.output and "line 2" in refused.output


def test_demo_invoice_renders_with_the_printed_command(run, client) -> None:
    import io
    import re

    from pypdf import PdfReader

    from connector.cli import DEMO_FILES

    output = run("demo").output
    key = re.search(r"X-Api-Key: (tt_live_\w+)", output)[1]
    path = re.search(r"http://127\.0\.0\.1:8000(/render/pdf/tpl_\w+)", output)[1]
    data = (DEMO_FILES / "invoice-data.json").read_text(encoding="utf-8")

    response = client.post(
        path, data=data, content_type="application/json", headers={"X-Api-Key": key}
    )

    assert response.status_code == 200
    text = PdfReader(io.BytesIO(response.data)).pages[0].extract_text()
    assert "Invoice INV-2026-0042" in text
    assert "Café Łódź Ltd" in text
    assert "Zapier integration set-up" in text
    assert "450 EUR" in text  # 3 x 150, computed by the template


def test_documents_purge_deletes_expired_files(run, services, account) -> None:
    from connector.clients import Client
    from connector.documents import NewDocument
    from connector.templates import TemplateFields

    template = services.templates.create(account.id, TemplateFields(name="T", body="Hi"))
    services.documents.create(account.id, NewDocument(template_id=template.id), Client.OTHER)
    files = services.settings.data_dir / "documents"

    # The document was made on the test clock (2026-11-20, 24 h expiry); the CLI runs on the
    # real clock, days later.
    result = run("documents", "purge")

    assert result.exit_code == 0 and "1 expired" in result.output
    assert not list(files.rglob("*.pdf"))


@pytest.mark.parametrize(
    ("content", "words"), [(b"", "at least 1 character"), (b"\xff\xfe", "UTF-8")]
)
def test_templates_import_refuses_empty_and_binary_files(run, tmp_path, content, words) -> None:
    account = json.loads(run("accounts", "create", "Acme Ltd", "--json").output)
    file = tmp_path / "bad.html"
    file.write_bytes(content)

    result = run("templates", "import", str(file), "--account", account["id"])

    assert result.exit_code == 1
    assert words in result.output
    assert "Traceback" not in result.output
