"""The templateto-bridge command: schema set-up, accounts, users, keys, and its refusals."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from connector.cli import main
from connector.db import make_engine

from .helpers import bridge_command


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


def test_serve_refuses_a_database_without_schema_and_names_the_fix(fresh_env, tmp_path) -> None:
    (tmp_path / "fresh.db").touch()  # an empty SQLite database

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

    # The command line acts for no account: it does not say "in this account".
    assert missing.output == "Error: api_key_not_found: There is no API key 'key_nope'.\n"
    assert missing.exit_code == 1
    assert too_long.exit_code == 2
    assert "Invalid value for '--grace': '8d': at most 7 days" in too_long.output
    assert no_account.exit_code == 1 and "account_not_found" in no_account.output


@pytest.mark.parametrize("grace", ["soon", "1w", "-1h", ""])
def test_a_grace_period_it_cannot_read_is_refused_naming_the_option(run, grace) -> None:
    result = run("keys", "roll", "key_nope", "--grace", grace)

    assert result.exit_code == 2
    assert f"Invalid value for '--grace': {grace!r}: use seconds or a number with s, m, h" in (
        result.output
    )


@pytest.mark.parametrize(
    "command", [("accounts", "list"), ("keys", "list"), ("users", "set-password")]
)
def test_every_command_says_what_it_does(run, command) -> None:
    group = run(command[0], "--help")
    own = run(*command, "--help")

    summary = own.output.split("\n\n")[1].strip()
    assert len(summary) > 20
    assert summary[:30] in group.output.replace("\n", " ")


@pytest.mark.parametrize("platform", ["zapier", "n8n"])
@pytest.mark.parametrize(
    "url", ["not-a-url", "bridge.example.com", "ftp://bridge.example.com", "https://x.example/?a=1"]
)
def test_export_refuses_a_base_url_that_is_not_an_address(run, tmp_path, platform, url) -> None:
    result = run("export", platform, "--out", str(tmp_path / "app"), "--base-url", url)

    assert result.exit_code == 2
    assert f"Invalid value for '--base-url': {url!r} is not the service's address" in result.output
    assert not (tmp_path / "app").exists()


def test_check_without_a_key_says_how_to_give_one(server_env) -> None:
    result = CliRunner().invoke(
        main, ["check", "--url", "http://127.0.0.1:9"], env=server_env, input=""
    )

    assert result.exit_code == 1
    assert result.output == (
        "api_key_missing: No API key given. Set TEMPLATETO_API_KEY, or pipe the key on stdin "
        "(never on the command line).\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ("accounts", "list"),
        ("keys", "list", "--account", "acc_x"),
        ("demo",),
        ("serve",),
        ("worker",),
        ("documents", "purge"),
    ],
)
def test_a_command_run_where_there_is_no_database_says_where_it_looked(
    server_env, tmp_path, monkeypatch, command
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    env = {**server_env, "BRIDGE_DATA_DIR": None, "BRIDGE_DATABASE_URL": None}

    result = CliRunner().invoke(main, list(command), env=env)

    assert result.exit_code == 1
    assert result.output.startswith(f"Error: No database at {elsewhere / 'var' / 'bridge.db'}. ")
    assert "Set BRIDGE_DATA_DIR to the directory that holds bridge.db" in result.output
    assert "templateto-bridge init" in result.output
    assert list(elsewhere.iterdir()) == []  # no empty var/ left behind


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


def test_demo_creates_an_account_key_and_user_once_and_prints_their_ids(run, services) -> None:
    first = run("demo")
    second = run("demo")

    [account] = services.accounts.list()
    [key] = services.keys.list(account.id)
    templates = services.templates.find_by_name(account.id, "Invoice")
    assert f"Demo account 'Demo Ltd' ({account.id})" in first.output
    assert f"admin API key {key.id}:" in first.output
    assert f"Invoice {templates[0].id}" in first.output
    assert "admin user admin@demo.example, password " in first.output
    assert first.output.count("tt_live_") == 2  # the value, and the curl line that uses it
    assert f"({account.id}) already exists" in second.output
    assert f"Invoice {templates[0].id}" in second.output
    assert "tt_live_…" in second.output and "keys roll" in second.output
    # Its password was shown once: the way back in is named.
    assert (
        "for a new password: templateto-bridge users set-password --email admin@demo.example"
        in second.output
    )


def test_demo_links_follow_the_port_serve_will_listen_on(run, server_env) -> None:
    output = run("demo", "--host", "0.0.0.0", "--port", "18080").output

    assert "API keys page: http://127.0.0.1:18080/generate/api-keys" in output
    assert re.search(r"-o invoice\.pdf http://127\.0\.0\.1:18080/render/pdf/tpl_\w+$", output, re.M)
    assert ":8000" not in output


def test_set_password_gives_a_new_password_and_ends_sessions(run, app, services) -> None:
    from .web.conftest import csrf_token

    old_password = re.search(r"password (\w+)", run("demo").output)[1]
    browser, later = app.test_client(), app.test_client()

    def sign_in(client, password: str) -> int:
        form = {"email": "admin@demo.example", "password": password}
        form["csrf_token"] = csrf_token(client)
        return client.post("/signin", data=form).status_code

    assert sign_in(browser, old_password) == 302
    changed = run(
        "users", "set-password", "--email", "Admin@Demo.example", stdin="a brand new password\n"
    )
    short = run("users", "set-password", "--email", "admin@demo.example", stdin="short\n")
    unknown = run("users", "set-password", "--email", "nobody@demo.example", stdin="long enough!\n")

    user = services.accounts.sign_in("admin@demo.example", "a brand new password")
    assert changed.exit_code == 0 and user is not None
    assert changed.output == f"New password set for admin@demo.example ({user.id}).\n"
    assert browser.get("/generate/api-keys").status_code == 302  # signed out
    assert sign_in(later, old_password) == 401
    assert sign_in(later, "a brand new password") == 302
    assert short.exit_code == 1 and "password: String should have at least 10" in short.output
    assert unknown.exit_code == 1
    assert "user_not_found: There is no user with the email nobody@demo.example." in unknown.output


def test_set_password_asks_twice_on_a_terminal_without_echoing(server_env, services) -> None:
    import pty

    run_cli_on_a_terminal = bridge_command("users", "set-password", "--email", "admin@demo.example")
    CliRunner().invoke(main, ["demo"], env=server_env)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        run_cli_on_a_terminal, env=server_env, stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    output = _answer_prompts(controller, ["a terminal password\n", "a terminal password\n"])
    process.wait(timeout=30)
    os.close(controller)

    assert process.returncode == 0, output
    assert "New password:" in output and "Repeat for confirmation:" in output
    assert "a terminal password" not in output
    assert services.accounts.sign_in("admin@demo.example", "a terminal password") is not None


def _answer_prompts(controller: int, answers: list[str]) -> str:
    """Everything the terminal showed, typing each answer when a prompt ends with ': '."""
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the command ended and closed the terminal
            return shown.decode()
        if not chunk:
            return shown.decode()
        shown += chunk
        if answers and shown.rstrip(b" ").endswith(b":"):
            os.write(controller, answers.pop(0).encode())


@pytest.mark.parametrize(
    "email", ["admin@acme.test", "ops@corp.internal", "me@intranet.local", "root@localhost"]
)
def test_self_hosted_users_have_internal_email_addresses(run, client, account, email) -> None:
    from .web.conftest import csrf_token

    created = run(
        "users", "create", "--account", account.id, "--email", email, stdin="correct horse!\n"
    )
    page = client.post(
        "/signin",
        data={"email": email, "password": "correct horse!", "csrf_token": csrf_token(client)},
    )

    assert created.exit_code == 0, created.output
    assert email in created.output
    assert page.status_code == 302


@pytest.mark.parametrize("email", ["not-an-email", "a@nowhere.invalid", "a@b@c.test", "a@.test"])
def test_addresses_that_name_nobody_are_still_refused(run, account, email) -> None:
    result = run(
        "users", "create", "--account", account.id, "--email", email, stdin="correct horse!\n"
    )

    assert result.exit_code == 1
    assert "email: Value error, not a valid email address" in result.output


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


def test_the_docs_push_the_zapier_app_as_the_export_says(run, tmp_path) -> None:
    printed = run(
        "export", "zapier", "--out", str(tmp_path / "app"), "--base-url", "https://b.example.com"
    ).output
    root = Path(__file__).parents[1]
    guide = (root / "docs" / "zapier.md").read_text(encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")

    # `zapier push` alone fails on an app Zapier does not know yet: register (or link) first.
    for steps in (printed, guide, readme):
        assert "zapier push" not in steps or (
            "zapier register" in steps
            and steps.index("zapier register") < steps.index("zapier push")
        )
    assert "zapier push" in printed and "zapier push" in guide
