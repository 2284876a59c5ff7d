"""The command line's part of issue 18: `keys list` with rotate_by and rotation (--json, --due)
and `audit --account ACC [--json]`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result

from connector.audit import AuditAction
from connector.cli import main
from connector.key_policy import KeyPolicyChange
from connector.paging import PageQuery


@pytest.fixture
def run(server_env: dict[str, str]):
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, list(args), env=server_env, catch_exceptions=False)

    return invoke


def test_keys_list_shows_when_each_key_is_to_be_rolled_and_due_lists_only_those_due(
    run, services, account
) -> None:
    # The command runs on the real clock.
    now = datetime.now(UTC)
    fine = services.keys.create(account.id, "Fine")
    due = services.keys.create(account.id, "Due")
    late = services.keys.create(account.id, "Late")
    services.keys.set_rotate_by(account.id, fine.id, now + timedelta(days=60))
    services.keys.set_rotate_by(account.id, due.id, now + timedelta(days=3))
    services.keys.set_rotate_by(account.id, late.id, now - timedelta(days=1))

    listed = run("keys", "list", "--account", account.id, "--json")
    only_due = run("keys", "list", "--account", account.id, "--due")
    text = run("keys", "list", "--account", account.id)

    keys = {key["name"]: key for key in json.loads(listed.output)}
    assert {name: key["rotation"] for name, key in keys.items()} == {
        "Fine": "ok",
        "Due": "due",
        "Late": "overdue",
    }
    assert datetime.fromisoformat(keys["Due"]["rotate_by"]) == now + timedelta(days=3)
    assert only_due.exit_code == 0
    marks = {line.split()[0]: line.split()[-1] for line in only_due.output.splitlines()}
    assert marks == {late.id: "OVERDUE", due.id: "DUE"}
    assert f"rotate by {(now + timedelta(days=60)):%Y-%m-%d}" in text.output


def test_keys_list_due_says_when_none_are_due(run, services, account) -> None:
    services.key_policies.change(account.id, KeyPolicyChange(max_age_days=90))
    services.keys.create(account.id, "Fresh")

    result = run("keys", "list", "--account", account.id, "--due")

    assert result.exit_code == 0 and result.output.strip() == "No keys due for rolling."


def test_audit_prints_the_accounts_entries_newest_first(run, services, account) -> None:
    key = services.keys.create(account.id, "Zapier")
    run("keys", "roll", key.id, "--grace", "1h")

    text = run("audit", "--account", account.id)
    as_json = json.loads(run("audit", "--account", account.id, "--json").output)
    rolled = json.loads(
        run("audit", "--account", account.id, "--action", "api_key.rolled", "--json").output
    )

    assert text.exit_code == 0
    assert "api_key.rolled" in text.output.splitlines()[0]
    assert f"{key.id}  by operator via cli" in text.output
    assert as_json["data"][0]["action"] == "api_key.rolled"
    assert {entry["action"] for entry in as_json["data"]} == {"api_key.created", "api_key.rolled"}
    assert [entry["detail"] for entry in rolled["data"]] == [
        {"name": "Zapier", "grace_seconds": 3600}
    ]
    assert key.value not in text.output + json.dumps(as_json)


def test_audit_pages_with_the_cursor_it_prints(run, services, account) -> None:
    for number in range(3):
        services.keys.create(account.id, f"Key {number}")

    first = run("audit", "--account", account.id, "--limit", "2")
    cursor = first.output.splitlines()[-1].removeprefix("More: --cursor ")
    second = run("audit", "--account", account.id, "--limit", "2", "--cursor", cursor)

    assert len(first.output.splitlines()) == 3
    assert len(second.output.splitlines()) == 1 and "More:" not in second.output


def test_audit_of_an_unknown_account_says_so(server_env) -> None:
    result = CliRunner().invoke(main, ["audit", "--account", "acc_nope"], env=server_env)

    assert result.exit_code == 1
    assert "account_not_found: There is no account 'acc_nope'." in result.output


def test_keys_policy_shows_and_changes_the_policy_and_the_audit_log_says_who(
    run, services, account
) -> None:
    shown = run("keys", "policy", "--account", account.id)
    changed = run(
        "keys", "policy", "--account", account.id, "--max-age-days", "90", "--on-leak", "roll"
    )
    age_only = run("keys", "policy", "--account", account.id, "--no-max-age", "--json")
    both = run("keys", "policy", "--account", account.id, "--no-max-age", "--max-age-days", "9")
    too_old = run("keys", "policy", "--account", account.id, "--max-age-days", "4000")

    assert shown.output.strip() == "Keys: no maximum age. A reported leak: notify."
    assert changed.output.strip() == (
        "Keys: due for rolling 90 days after creation or last roll. "
        "A reported leak: roll the key at once."
    )
    # A part left out keeps its value.
    assert json.loads(age_only.output)["max_age_days"] is None
    assert services.key_policies.get(account.id).on_leak == "roll"
    assert both.exit_code == 2 and "not both" in both.output
    assert too_old.exit_code == 2 and "--max-age-days" in too_old.output
    entries = services.audit.list(account.id, PageQuery(), action=AuditAction.KEY_POLICY_CHANGED)
    assert [(e.actor, e.via) for e in entries.data] == [("operator", "cli")] * 2
