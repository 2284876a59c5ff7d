"""``templateto-bridge check``: the connection test for monitors and CI jobs."""

from __future__ import annotations

import json
import subprocess

import pytest

from connector import keys

from ..helpers import bridge_command, free_port

# HTTP and rendering behaviour: the same whatever database is behind the server.
pytestmark = pytest.mark.any_database


def check(url: str, env: dict[str, str], *, key: str | None = None, stdin: str | None = None):
    env = dict(env)
    if key is not None:
        env["TEMPLATETO_API_KEY"] = key
    return subprocess.run(
        bridge_command("check", "--url", url),
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=30,
    )


def issue_key(env: dict[str, str]) -> dict:
    run = lambda *a: json.loads(  # noqa: E731
        subprocess.run(
            bridge_command(*a, "--json"), env=env, capture_output=True, text=True, check=True
        ).stdout
    )
    account = run("accounts", "create", "Acme Ltd")
    return run("keys", "create", "--account", account["id"], "--name", "Uptime monitor")


def test_check_passes_with_a_working_key_from_the_environment(start_server) -> None:
    server = start_server()
    key = issue_key(server.env)

    result = check(server.url, server.env, key=key["value"])

    assert result.returncode == 0
    assert result.stdout.startswith("ok: Acme Ltd · Uptime monitor")
    assert key["value"] not in result.stdout + result.stderr


def test_check_reads_the_key_from_stdin(start_server) -> None:
    server = start_server()
    key = issue_key(server.env)

    result = check(server.url + "/", server.env, stdin=key["value"] + "\n")

    assert result.returncode == 0, result.stdout


def test_check_fails_with_one_line_giving_the_reason(start_server) -> None:
    server = start_server()
    key = issue_key(server.env)
    subprocess.run(
        bridge_command("keys", "roll", key["id"]), env=server.env, check=True, capture_output=True
    )

    rolled = check(server.url, server.env, key=key["value"])
    unknown = check(server.url, server.env, key=keys.generate())

    assert rolled.returncode == 1
    assert rolled.stdout.count("\n") == 1
    assert rolled.stdout.startswith("api_key_rolled: ")
    assert "'Uptime monitor'" in rolled.stdout
    assert unknown.returncode == 1 and unknown.stdout.startswith("api_key_unknown: ")


def test_check_reports_an_unreachable_server(server_env) -> None:
    result = check(f"http://127.0.0.1:{free_port()}", server_env, key=keys.generate())

    assert result.returncode == 1
    assert result.stdout.startswith("unreachable: ")


def test_check_diagnoses_a_malformed_key_without_a_traceback(server_env) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    hint = check(url, server_env, key="tt_live_…abcd")
    newline = check(url, server_env, key=keys.generate() + "\n")

    for result in (hint, newline):
        assert result.returncode == 1
        assert result.stdout.startswith("api_key_malformed: ")
        assert "Traceback" not in result.stderr
