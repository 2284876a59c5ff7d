"""GET /v1/audit-log: what each surface records (who, through what, from where), admin keys
only, keyset paging and filters, and no way to change or delete an entry."""

from __future__ import annotations

import pytest

from connector.accounts import NewUser, Role
from connector.paging import PageQuery

from ..conftest import PASSWORD
from ..helpers import key_header
from ..web.conftest import csrf_token

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


@pytest.fixture
def headers(admin_key) -> dict[str, str]:
    return key_header(admin_key.value, user_agent="curl/8.5")


def entries(client, headers, query: str = "") -> list[dict]:
    answer = client.get(f"/v1/audit-log{query}", headers=headers)
    assert answer.status_code == 200, answer.json
    return answer.json["data"]


def test_api_actions_name_the_key_by_its_hint_with_address_and_user_agent(
    client, headers, admin_key, clock
) -> None:
    clock.advance(seconds=1)  # after the admin key's own creation, by the operator
    created = client.post("/v1/api-keys", json={"name": "Make"}, headers=headers).json
    clock.advance(seconds=1)
    client.post(f"/v1/api-keys/{created['id']}/roll", json={"grace_seconds": 60}, headers=headers)
    clock.advance(seconds=1)
    client.put("/v1/key-policy", json={"max_age_days": 90}, headers=headers)
    clock.advance(seconds=1)
    client.delete(f"/v1/api-keys/{created['id']}", headers=headers)

    log = entries(client, headers)[:-1]

    assert [(e["action"], e["target"]) for e in log] == [
        ("api_key.deleted", created["id"]),
        ("key_policy.changed", "key_policy"),
        ("api_key.rolled", created["id"]),
        ("api_key.created", created["id"]),
    ]
    assert {(e["actor"], e["via"], e["source_address"], e["user_agent"]) for e in log} == {
        (admin_key.hint, "api", "127.0.0.1", "curl/8.5")
    }
    assert log[2]["detail"] == {"name": "Make", "grace_seconds": 60}
    assert log[1]["detail"] == {
        "before": {"max_age_days": None, "on_leak": "notify"},
        "after": {"max_age_days": 90, "on_leak": "notify"},
    }
    assert created["value"] not in str(log) and admin_key.value not in str(log)


def test_hooks_created_and_deleted_are_recorded_without_their_urls_path(
    client, headers, receiver
) -> None:
    url = receiver.url + "/hook/secret-token-123"
    hook = client.post(
        "/v1/hooks", json={"target_url": url, "events": ["template.created"]}, headers=headers
    ).json
    client.delete(f"/v1/hooks/{hook['id']}", headers=headers)

    log = entries(client, headers, f"?target={hook['id']}")

    assert sorted(e["action"] for e in log) == ["hook.created", "hook.deleted"]
    assert log[0]["detail"] == {
        "platform": "api",
        "events": ["template.created"],
        "target_host": "127.0.0.1",
    }
    assert "secret-token-123" not in str(log)


def test_hooks_deleted_with_their_key_are_recorded_by_who_deleted_it(
    client, headers, services, account, admin_key, receiver
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    hook = client.post(
        "/v1/hooks",
        json={"target_url": receiver.url + "/hook", "events": ["template.created"]},
        headers=key_header(zap.value),
    ).json

    client.delete(f"/v1/api-keys/{zap.id}", headers=headers)

    [deleted] = entries(client, headers, f"?target={hook['id']}&action=hook.deleted")
    assert (deleted["actor"], deleted["via"]) == (admin_key.hint, "api")
    assert deleted["detail"]["target_host"] == "127.0.0.1"


def test_page_sign_ins_sign_outs_and_key_actions_name_the_user(
    app, client, headers, admin_user, clock
) -> None:
    browser = app.test_client()
    token = csrf_token(browser)
    clock.advance(seconds=1)  # after the fixtures' user and key were made
    wrong = {"email": admin_user.email, "password": "not the password", "csrf_token": token}
    nobody = {"email": "nobody@acme.example", "password": PASSWORD, "csrf_token": token}
    assert browser.post("/signin", data=wrong, headers={"User-Agent": BROWSER}).status_code == 401
    assert browser.post("/signin", data=nobody).status_code == 401
    clock.advance(seconds=1)
    right = {**wrong, "password": PASSWORD}
    assert browser.post("/signin", data=right, headers={"User-Agent": BROWSER}).status_code == 302
    clock.advance(seconds=1)
    page_token = csrf_token(browser, "/generate/api-keys")
    browser.post(
        "/generate/api-keys",
        data={"name": "From the page", "csrf_token": page_token},
        headers={"User-Agent": BROWSER},
    )
    clock.advance(seconds=1)
    browser.post("/signout", data={"csrf_token": page_token}, headers={"User-Agent": BROWSER})

    log = entries(client, headers)

    assert [(e["action"], e["actor"], e["via"]) for e in log[:4]] == [
        ("user.signed_out", admin_user.email, "page"),
        ("api_key.created", admin_user.email, "page"),
        ("user.sign_in_succeeded", admin_user.email, "page"),
        ("user.sign_in_failed", admin_user.email, "page"),
    ]
    assert ("user.created", admin_user.email, "operator") in {
        (e["action"], e["target"], e["actor"]) for e in log
    }
    assert log[0]["user_agent"] == BROWSER and log[0]["source_address"] == "127.0.0.1"
    assert "nobody@acme.example" not in str(log)  # an email that is nobody's is not kept


def test_users_created_and_passwords_set_are_recorded(
    client, headers, services, account, clock
) -> None:
    services.accounts.add_user(
        account.id, NewUser(email="eve@acme.example", password=PASSWORD, role=Role.EDITOR)
    )
    clock.advance(seconds=1)
    services.accounts.set_password("eve@acme.example", "another good password")

    log = entries(client, headers, "?target=eve@acme.example")

    assert [e["action"] for e in log] == ["user.password_set", "user.created"]
    assert log[1]["detail"] == {"role": "editor"}
    assert "another good password" not in str(log)


def test_the_log_pages_and_filters_by_action(client, headers, services, account, clock) -> None:
    for number in range(5):
        clock.advance(seconds=1)  # after the admin key's creation, and each after the last
        services.keys.create(account.id, f"Key {number}")

    first = client.get("/v1/audit-log?limit=3&action=api_key.created", headers=headers).json
    second = client.get(
        f"/v1/audit-log?limit=3&action=api_key.created&cursor={first['next_cursor']}",
        headers=headers,
    ).json

    names = [e["detail"]["name"] for e in first["data"] + second["data"]]
    assert names == ["Key 4", "Key 3", "Key 2", "Key 1", "Key 0", "Zapier production"]
    assert second["next_cursor"] is None
    entry = first["data"][0]
    assert client.get(f"/v1/audit-log/{entry['id']}", headers=headers).json == entry
    bad = client.get("/v1/audit-log?action=key.stolen", headers=headers)
    assert bad.status_code == 422 and bad.json["error"]["code"] == "validation_failed"
    unknown = client.get("/v1/audit-log/aud_nope", headers=headers)
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "audit_entry_not_found"


def test_another_accounts_entries_are_out_of_reach(client, headers, services) -> None:
    other = services.accounts.create("Other Ltd")
    services.keys.create(other.id, "Theirs")
    [theirs] = services.audit.list(other.id, PageQuery()).data

    assert all(e["detail"].get("name") != "Theirs" for e in entries(client, headers))
    assert client.get(f"/v1/audit-log/{theirs.id}", headers=headers).status_code == 404


def test_only_admin_keys_read_the_log(client, standard_key) -> None:
    refused = client.get("/v1/audit-log", headers=key_header(standard_key.value))
    assert refused.status_code == 403 and refused.json["error"]["code"] == "api_key_not_admin"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
def test_no_method_changes_or_deletes_entries(client, headers, method) -> None:
    entry = entries(client, headers)[0]
    for path in ("/v1/audit-log", f"/v1/audit-log/{entry['id']}"):
        answer = client.open(path, method=method, json={}, headers=headers)
        assert answer.status_code == 405, (method, path)
        assert answer.json["error"]["code"] == "method_not_allowed"
    assert entries(client, headers)[0] == entry


def test_a_keys_own_rotate_by_is_recorded_with_the_date(client, headers, admin_key) -> None:
    client.patch(
        f"/v1/api-keys/{admin_key.id}",
        json={"rotate_by": "2027-03-01T09:00:00+01:00"},
        headers=headers,
    )

    [entry] = entries(client, headers, "?action=api_key.rotate_by_set")

    assert entry["target"] == admin_key.id
    assert entry["detail"] == {"name": "Zapier production", "rotate_by": "2027-03-01T08:00:00Z"}


def test_a_key_value_in_a_user_agent_is_not_kept(client, admin_key) -> None:
    # A client that fills the wrong header with the key (a template variable gone astray).
    careless = key_header(admin_key.value, user_agent=f"sync-script key={admin_key.value}")
    client.put("/v1/key-policy", json={"max_age_days": 90}, headers=careless)

    [entry] = entries(client, careless, "?action=key_policy.changed")

    assert admin_key.value not in str(entry)
    assert entry["user_agent"] == "sync-script key=tt_live_[redacted]"
