"""The key policy and each key's rotation over HTTP: PUT/GET /v1/key-policy, a key's own
rotate_by (PATCH), rotate_by and rotation in every listed key, the rotation filter, and rolling
starting the clock afresh."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.clock import iso

from ..helpers import key_header


@pytest.fixture
def headers(admin_key) -> dict[str, str]:
    return key_header(admin_key.value)


def test_the_policy_starts_as_the_default_and_put_changes_only_the_fields_sent(
    client, headers
) -> None:
    assert client.get("/v1/key-policy", headers=headers).json == {
        "max_age_days": None,
        "on_leak": "notify",
        "updated_at": None,
    }

    rolled = client.put("/v1/key-policy", json={"on_leak": "roll"}, headers=headers)
    aged = client.put("/v1/key-policy", json={"max_age_days": 90}, headers=headers)

    assert rolled.status_code == 200 and rolled.json["on_leak"] == "roll"
    assert aged.json["max_age_days"] == 90 and aged.json["on_leak"] == "roll"
    assert client.get("/v1/key-policy", headers=headers).json == aged.json
    cleared = client.put("/v1/key-policy", json={"max_age_days": None}, headers=headers)
    assert cleared.json["max_age_days"] is None and cleared.json["on_leak"] == "roll"


@pytest.mark.parametrize(
    ("body", "field", "hint"),
    [
        ({"max_age_days": 0}, "max_age_days", "greater than or equal to 1"),
        ({"max_age_days": 3651}, "max_age_days", "less than or equal to 3650"),
        ({"max_age_days": "90"}, "max_age_days", "integer"),
        ({"max_age_days": 1.5}, "max_age_days", "integer"),
        ({"on_leak": "delete"}, "on_leak", "'notify' or 'roll'"),
        ({"max_age": 90}, "max_age", "Extra inputs"),
    ],
)
def test_a_wrong_policy_is_refused_with_what_to_send(client, headers, body, field, hint) -> None:
    refused = client.put("/v1/key-policy", json=body, headers=headers)

    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "validation_failed"
    [problem] = refused.json["error"]["details"]["fields"]
    assert problem["field"] == field and hint in problem["message"]
    assert client.get("/v1/key-policy", headers=headers).json["updated_at"] is None


def test_only_admin_keys_read_or_change_the_policy(client, standard_key) -> None:
    standard = key_header(standard_key.value)
    assert client.get("/v1/key-policy", headers=standard).status_code == 403
    put = client.put("/v1/key-policy", json={"max_age_days": 1}, headers=standard)
    assert put.status_code == 403
    assert put.json["error"]["code"] == "api_key_not_admin"


def test_every_key_carries_rotate_by_and_rotation_from_the_policy(
    client, headers, services, account, admin_key, clock
) -> None:
    assert client.get("/v1/api-keys", headers=headers).json["data"][0]["rotate_by"] is None
    client.put("/v1/key-policy", json={"max_age_days": 30}, headers=headers)

    [key] = client.get("/v1/api-keys", headers=headers).json["data"]
    assert key["rotate_by"] == iso(admin_key.created_at + timedelta(days=30))
    assert key["rotation"] == "ok"
    clock.advance(days=23, seconds=1)
    assert client.get("/v1/api-keys", headers=headers).json["data"][0]["rotation"] == "due"
    clock.advance(days=7)
    assert client.get("/v1/api-keys", headers=headers).json["data"][0]["rotation"] == "overdue"

    rolled = services.keys.roll(account.id, admin_key.id)
    fresh = key_header(rolled.value)
    [key] = client.get("/v1/api-keys", headers=fresh).json["data"]
    assert (key["rotate_by"], key["rotation"]) == (iso(clock.now() + timedelta(days=30)), "ok")


def test_a_keys_own_rotate_by_overrides_the_policy_until_a_roll(
    client, headers, services, account, clock
) -> None:
    client.put("/v1/key-policy", json={"max_age_days": 365}, headers=headers)
    other = services.keys.create(account.id, "Reporting")
    deadline = clock.now() + timedelta(days=3)

    changed = client.patch(
        f"/v1/api-keys/{other.id}", json={"rotate_by": iso(deadline)}, headers=headers
    )

    assert changed.status_code == 200
    assert (changed.json["rotate_by"], changed.json["rotation"]) == (iso(deadline), "due")
    fetched = client.get(f"/v1/api-keys/{other.id}", headers=headers).json
    assert fetched["rotate_by"] == iso(deadline)
    services.keys.roll(account.id, other.id)
    after_roll = client.get(f"/v1/api-keys/{other.id}", headers=headers).json
    assert after_roll["rotate_by"] == iso(clock.now() + timedelta(days=365))

    client.patch(f"/v1/api-keys/{other.id}", json={"rotate_by": iso(deadline)}, headers=headers)
    cleared = client.patch(f"/v1/api-keys/{other.id}", json={"rotate_by": None}, headers=headers)
    assert cleared.json["rotate_by"] == iso(clock.now() + timedelta(days=365))


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        ({"rotate_by": "2027-03-01T09:00:00"}, "timezone"),
        ({"rotate_by": "next tuesday"}, "datetime"),
        ({}, "required"),
        ({"rotate_by": None, "name": "x"}, "Extra inputs"),
        # Times no one means, at the edges of what a date can hold (once a 500).
        ({"rotate_by": "0001-01-01T00:00:00Z"}, "between"),
        ({"rotate_by": "0001-01-01T00:00:00+14:00"}, "between"),
        ({"rotate_by": "9999-12-31T23:59:59-14:00"}, "between"),
        # A number is not an ISO time: 90 (days, meant) must not become 1970-01-01T00:01:30Z.
        ({"rotate_by": 90}, "ISO 8601"),
    ],
)
def test_a_wrong_rotate_by_is_refused_with_what_to_send(
    client, headers, admin_key, body, hint
) -> None:
    refused = client.patch(f"/v1/api-keys/{admin_key.id}", json=body, headers=headers)

    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "validation_failed"
    assert hint in refused.json["error"]["message"]


def test_a_deleted_or_unknown_key_gets_no_rotate_by(client, headers, services, account) -> None:
    gone = services.keys.create(account.id, "Gone")
    services.keys.delete(account.id, gone.id)
    body = {"rotate_by": "2027-03-01T09:00:00Z"}

    assert client.patch(f"/v1/api-keys/{gone.id}", json=body, headers=headers).status_code == 409
    unknown = client.patch("/v1/api-keys/key_nope", json=body, headers=headers)
    assert unknown.status_code == 404


def test_the_list_filters_by_rotation(client, headers, services, account, admin_key, clock) -> None:
    due = services.keys.create(account.id, "Due")
    overdue = services.keys.create(account.id, "Overdue")
    services.keys.set_rotate_by(account.id, due.id, clock.now() + timedelta(days=2))
    services.keys.set_rotate_by(account.id, overdue.id, clock.now() - timedelta(seconds=1))

    def listed(query: str) -> list[str]:
        answer = client.get(f"/v1/api-keys?rotation={query}", headers=headers)
        assert answer.status_code == 200, answer.json
        return sorted(key["name"] for key in answer.json["data"])

    assert listed("due,overdue") == ["Due", "Overdue"]
    assert listed("overdue") == ["Overdue"]
    assert listed("ok") == ["Zapier production"]
    refused = client.get("/v1/api-keys?rotation=due,late", headers=headers)
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "validation_failed"
    assert "'late'" in refused.json["error"]["message"]
    assert "ok, due or overdue" in refused.json["error"]["message"]
