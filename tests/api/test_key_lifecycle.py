"""Create, list, get, roll and delete keys over HTTP, as an admin key would."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.api_keys import IssuedApiKey

from ..helpers import key_header


def test_create_returns_the_value_once_and_stores_only_a_hint(client, admin_key) -> None:
    created = client.post(
        "/v1/api-keys", json={"name": "  Make.com  "}, headers=key_header(admin_key.value)
    )

    assert created.status_code == 201
    key = created.json
    assert key["name"] == "Make.com"
    assert key["permission"] == "standard"
    assert key["status"] == "active"
    assert key["value"].startswith("tt_live_") and len(key["value"]) == 46
    assert key["hint"] == "tt_live_…" + key["value"][-4:]
    listed = client.get("/v1/api-keys", headers=key_header(admin_key.value)).json["data"]
    fetched = client.get(f"/v1/api-keys/{key['id']}", headers=key_header(admin_key.value)).json
    assert key["value"] not in str(listed) + str(fetched)
    assert "value" not in fetched
    assert client.get("/v1/me", headers=key_header(key["value"])).status_code == 200


def test_list_is_newest_first_and_hides_deleted_keys_unless_asked(
    client, services, clock, account, admin_key
) -> None:
    clock.advance(minutes=1)
    second = services.keys.create(account.id, "Second")
    clock.advance(minutes=1)
    third = services.keys.create(account.id, "Third")
    services.keys.delete(None, second.id)

    live = client.get("/v1/api-keys", headers=key_header(admin_key.value)).json["data"]
    everything = client.get(
        "/v1/api-keys?include_deleted=true", headers=key_header(admin_key.value)
    ).json["data"]

    assert [k["id"] for k in live] == [third.id, admin_key.id]
    assert [k["id"] for k in everything] == [third.id, second.id, admin_key.id]
    assert everything[1]["status"] == "deleted"


def test_names_are_trimmed_bounded_and_unique_among_live_keys(client, services, admin_key):
    headers = key_header(admin_key.value)

    for bad in ["", "   ", "x" * 101, "line\nbreak"]:
        response = client.post("/v1/api-keys", json={"name": bad}, headers=headers)
        assert response.status_code == 422, bad
        assert response.json["error"]["details"]["fields"][0]["field"] == "name"
    taken = client.post("/v1/api-keys", json={"name": "zapier PRODUCTION"}, headers=headers)
    assert taken.status_code == 409
    assert taken.json["error"]["code"] == "api_key_name_taken"

    old = client.post("/v1/api-keys", json={"name": "Old"}, headers=headers).json
    client.delete(f"/v1/api-keys/{old['id']}", headers=headers)
    reused = client.post("/v1/api-keys", json={"name": "Old"}, headers=headers)
    assert reused.status_code == 201
    assert client.post("/v1/api-keys", json={"name": "x" * 100}, headers=headers).status_code == 201


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("\u200b", "(U+200B)"),  # zero-width space alone
        ("Zap\u200dier", "(U+200D)"),  # zero-width joiner
        ("\u202eelif.exe", "(U+202E)"),  # right-to-left override
        ("Zapier\u2066 prod\u2069", "(U+2066, U+2069)"),  # bidi isolates
        ("Zap\u00adier", "(U+00AD)"),  # soft hyphen
        ("line\u2028break", "(U+2028)"),
        ("\u3164", "at least one visible"),  # Hangul filler
        ("\u0301\u0308", "at least one visible"),  # combining marks alone
        ("\u2800 \u3000", "at least one visible"),  # blank Braille, ideographic space
    ],
)
def test_invisible_and_direction_changing_names_are_refused(client, admin_key, name, says):
    response = client.post("/v1/api-keys", json={"name": name}, headers=key_header(admin_key.value))

    assert response.status_code == 422
    [field] = response.json["error"]["details"]["fields"]
    assert field["field"] == "name" and says in field["message"]


def test_names_are_nfkc_normalised_so_look_alike_forms_are_the_same_name(client, admin_key):
    headers = key_header(admin_key.value)

    styled = client.post(
        "/v1/api-keys",
        json={"name": "\uff3a\uff41\uff50\uff49\uff45\uff52 \ufb01les"},
        headers=headers,
    )
    plain = client.post("/v1/api-keys", json={"name": "zapier FILES"}, headers=headers)

    assert styled.status_code == 201 and styled.json["name"] == "Zapier files"
    assert plain.status_code == 409 and plain.json["error"]["code"] == "api_key_name_taken"
    accented = client.post("/v1/api-keys", json={"name": "Cafe\u0301"}, headers=headers)
    assert accented.json["name"] == "Caf\u00e9"  # composed


def test_roll_keeps_id_and_name_and_refuses_the_old_value_at_once(client, admin_key, standard_key):
    headers = key_header(admin_key.value)
    assert client.get("/v1/me", headers=key_header(standard_key.value)).status_code == 200

    rolled = client.post(f"/v1/api-keys/{standard_key.id}/roll", headers=headers)

    assert rolled.status_code == 200
    assert rolled.json["id"] == standard_key.id
    assert rolled.json["name"] == standard_key.name
    assert rolled.json["value"] != standard_key.value
    assert rolled.json["rolled_at"] is not None
    old = client.get("/v1/me", headers=key_header(standard_key.value))
    assert old.status_code == 401 and old.json["error"]["code"] == "api_key_rolled"
    new = client.get("/v1/me", headers=key_header(rolled.json["value"]))
    assert new.status_code == 200 and new.json["key_id"] == standard_key.id


def test_grace_period_keeps_the_old_value_working_with_a_warning_until_it_ends(
    client, clock, admin_key, standard_key
) -> None:
    rolled = client.post(
        f"/v1/api-keys/{standard_key.id}/roll",
        json={"grace_seconds": 3600},
        headers=key_header(admin_key.value),
    ).json
    assert rolled["old_values"][0]["works_until"] == "2026-11-20T11:03:00Z"

    clock.advance(minutes=59, seconds=59)
    during = client.get("/v1/me", headers=key_header(standard_key.value))
    assert during.status_code == 200
    assert "2026-11-20T11:03:00Z" in during.headers["X-Api-Key-Warning"]
    assert during.headers["Sunset"] == "Fri, 20 Nov 2026 11:03:00 GMT"
    assert during.json["in_grace_period"] is True
    assert during.json["grace_until"] == "2026-11-20T11:03:00Z"
    assert during.json["label"] == (
        "Acme Ltd · n8n workflows (rolled: this value stops working 2026-11-20 11:03 UTC)"
    )
    fresh = client.get("/v1/me", headers=key_header(rolled["value"]))
    assert "X-Api-Key-Warning" not in fresh.headers

    clock.advance(seconds=1)
    after = client.get("/v1/me", headers=key_header(standard_key.value))
    assert after.status_code == 401
    assert after.json["error"]["code"] == "api_key_rolled"
    assert "grace period ended on 2026-11-20 11:03 UTC" in after.json["error"]["message"]


def test_grace_period_is_bounded_to_seven_days(client, admin_key, standard_key) -> None:
    headers = key_header(admin_key.value)
    too_long = client.post(
        f"/v1/api-keys/{standard_key.id}/roll",
        json={"grace_seconds": 7 * 86400 + 1},
        headers=headers,
    )
    negative = client.post(
        f"/v1/api-keys/{standard_key.id}/roll", json={"grace_seconds": -1}, headers=headers
    )

    assert too_long.status_code == 422 and negative.status_code == 422
    assert client.get("/v1/me", headers=key_header(standard_key.value)).status_code == 200
    seven_days = client.post(
        f"/v1/api-keys/{standard_key.id}/roll", json={"grace_seconds": 7 * 86400}, headers=headers
    )
    assert seven_days.status_code == 200


def test_delete_stops_the_key_and_keeps_the_record(client, admin_key, standard_key) -> None:
    headers = key_header(admin_key.value)

    deleted = client.delete(f"/v1/api-keys/{standard_key.id}", headers=headers)

    assert deleted.status_code == 200
    assert deleted.json["status"] == "deleted"
    refused = client.get("/v1/me", headers=key_header(standard_key.value))
    assert refused.status_code == 401 and refused.json["error"]["code"] == "api_key_deleted"
    record = client.get(f"/v1/api-keys/{standard_key.id}", headers=headers)
    assert record.status_code == 200 and record.json["deleted_at"] is not None
    again = client.delete(f"/v1/api-keys/{standard_key.id}", headers=headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "api_key_already_deleted"
    roll = client.post(f"/v1/api-keys/{standard_key.id}/roll", headers=headers)
    assert roll.status_code == 409


def test_delete_ends_a_running_grace_period(client, services, admin_key, standard_key) -> None:
    services.keys.roll(None, standard_key.id, grace=timedelta(hours=1))
    assert client.get("/v1/me", headers=key_header(standard_key.value)).status_code == 200

    client.delete(f"/v1/api-keys/{standard_key.id}", headers=key_header(admin_key.value))

    refused = client.get("/v1/me", headers=key_header(standard_key.value))
    assert refused.status_code == 401 and refused.json["error"]["code"] == "api_key_deleted"


def test_an_admin_key_can_roll_itself(client, admin_key: IssuedApiKey) -> None:
    rolled = client.post(f"/v1/api-keys/{admin_key.id}/roll", headers=key_header(admin_key.value))

    assert rolled.status_code == 200
    assert client.get("/v1/api-keys", headers=key_header(rolled.json["value"])).status_code == 200
    assert client.get("/v1/api-keys", headers=key_header(admin_key.value)).status_code == 401


def test_standard_keys_cannot_manage_keys(client, standard_key, admin_key) -> None:
    headers = key_header(standard_key.value)
    attempts = [
        client.get("/v1/api-keys", headers=headers),
        client.post("/v1/api-keys", json={"name": "Sneaky"}, headers=headers),
        client.get(f"/v1/api-keys/{admin_key.id}", headers=headers),
        client.post(f"/v1/api-keys/{admin_key.id}/roll", headers=headers),
        client.delete(f"/v1/api-keys/{admin_key.id}", headers=headers),
        client.get(f"/v1/api-keys/{admin_key.id}/failures", headers=headers),
    ]

    for response in attempts:
        assert response.status_code == 403
        assert response.json["error"]["code"] == "api_key_not_admin"
        assert "admin" in response.json["error"]["message"]
    assert client.get("/v1/me", headers=key_header(admin_key.value)).status_code == 200


def test_keys_of_another_account_are_not_found(client, services, admin_key) -> None:
    other = services.accounts.create("Globex")
    foreign = services.keys.create(other.id, "Their key", "admin")
    headers = key_header(admin_key.value)

    attempts = [
        client.get(f"/v1/api-keys/{foreign.id}", headers=headers),
        client.post(f"/v1/api-keys/{foreign.id}/roll", headers=headers),
        client.delete(f"/v1/api-keys/{foreign.id}", headers=headers),
        client.get(f"/v1/api-keys/{foreign.id}/failures", headers=headers),
    ]

    for response in attempts:
        assert response.status_code == 404
        assert response.json["error"]["code"] == "api_key_not_found"
    listed = client.get("/v1/api-keys", headers=headers).json["data"]
    assert foreign.id not in {key["id"] for key in listed}
    assert client.get("/v1/me", headers=key_header(foreign.value)).status_code == 200


def test_me_describes_account_and_key(client, account, admin_key) -> None:
    me = client.get("/v1/me", headers=key_header(admin_key.value)).json

    assert me == {
        "account_id": account.id,
        "account_name": "Acme Ltd",
        "key_id": admin_key.id,
        "key_name": "Zapier production",
        "key_hint": admin_key.hint,
        "permission": "admin",
        "key_created_at": "2026-11-20T10:03:00Z",
        "key_rolled_at": None,
        "label": "Acme Ltd · Zapier production",
        "in_grace_period": False,
        "grace_until": None,
    }


def test_a_value_in_its_grace_period_cannot_manage_keys_or_subscribe(
    client, services, account, admin_key
) -> None:
    new_value = client.post(
        f"/v1/api-keys/{admin_key.id}/roll",
        json={"grace_seconds": 600},
        headers=key_header(admin_key.value),
    ).json["value"]
    old = key_header(admin_key.value)

    attempts = [
        client.post(
            f"/v1/api-keys/{admin_key.id}/roll", json={"grace_seconds": 604800}, headers=old
        ),
        client.post("/v1/api-keys", json={"name": "Minted"}, headers=old),
        client.delete(f"/v1/api-keys/{admin_key.id}", headers=old),
        # A subscription belongs to the key and would outlive the value: not from a rolled one.
        client.post(
            "/v1/hooks",
            json={"target_url": "http://127.0.0.1:9/hook", "events": ["document.created"]},
            headers=old,
        ),
    ]
    for refused in attempts:
        assert refused.status_code == 403
        error = refused.json["error"]
        assert error["code"] == "api_key_in_grace_period"
        assert "'Zapier production'" in error["message"]
        assert "Use the key's new value to " in error["message"]
        assert "X-Api-Key-Warning" in refused.headers
    assert [key.name for key in services.keys.list(account.id)] == ["Zapier production"]
    # Ordinary work goes on until the grace period ends, reading keys included.
    assert client.get("/v1/api-keys", headers=old).status_code == 200
    assert client.get("/v1/templates", headers=old).status_code == 200
    # The new value manages keys as before.
    minted = client.post("/v1/api-keys", json={"name": "Minted"}, headers=key_header(new_value))
    assert minted.status_code == 201
