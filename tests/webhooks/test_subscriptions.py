"""Subscriptions over HTTP: created with a secret shown once, per account, tied to their key."""

from __future__ import annotations

import pytest

from connector.errors import HookTargetRefused
from connector.webhooks.subscriptions import HookStore, NewHook
from connector.webhooks.targets import check_target

from ..helpers import key_header


def subscribe(client, key, url="http://127.0.0.1:9/hook", events=("document.created",)):
    return client.post(
        "/v1/hooks", json={"target_url": url, "events": list(events)}, headers=key_header(key.value)
    )


def test_create_list_get_delete(client, standard_key) -> None:
    created = subscribe(client, standard_key, events=["document.created", "template.created"])
    headers = key_header(standard_key.value)
    hook_id = created.json["id"]

    listed = client.get("/v1/hooks", headers=headers).json["data"]
    fetched = client.get(f"/v1/hooks/{hook_id}", headers=headers).json

    assert created.status_code == 201
    assert created.json["secret"].startswith("whsec_")
    assert created.json["key_id"] == standard_key.id
    assert created.json["events"] == ["document.created", "template.created"]
    assert [h["id"] for h in listed] == [hook_id]
    assert "secret" not in fetched and "secret" not in listed[0]
    assert client.delete(f"/v1/hooks/{hook_id}", headers=headers).status_code == 204
    gone = client.delete(f"/v1/hooks/{hook_id}", headers=headers)
    assert gone.status_code == 404 and gone.json["error"]["code"] == "hook_not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"target_url": "http://127.0.0.1:9/", "events": []},
        {"target_url": "http://127.0.0.1:9/", "events": ["nothing.happened"]},
        {"target_url": "", "events": ["document.created"]},
        {"events": ["document.created"]},
    ],
)
def test_bad_subscriptions_are_422(client, standard_key, body) -> None:
    response = client.post("/v1/hooks", json=body, headers=key_header(standard_key.value))

    assert response.status_code == 422


def test_no_account_sees_anothers_hooks(client, services, standard_key) -> None:
    other = services.accounts.create("Globex")
    their_key = services.keys.create(other.id, "Theirs")
    theirs = subscribe(client, their_key).json["id"]
    headers = key_header(standard_key.value)

    assert client.get("/v1/hooks", headers=headers).json["data"] == []
    assert client.get(f"/v1/hooks/{theirs}", headers=headers).status_code == 404
    assert client.delete(f"/v1/hooks/{theirs}", headers=headers).status_code == 404
    assert client.get(f"/v1/hooks/{theirs}/deliveries", headers=headers).status_code == 404


def test_rolling_the_key_keeps_its_hooks_and_deleting_it_removes_them(
    client, services, admin_key, standard_key
) -> None:
    hook_id = subscribe(client, standard_key).json["id"]

    rolled = services.keys.roll(None, standard_key.id)
    kept = client.get(f"/v1/hooks/{hook_id}", headers=key_header(rolled.value))
    services.keys.delete(None, standard_key.id)
    listed = client.get("/v1/hooks", headers=key_header(admin_key.value)).json["data"]

    assert kept.status_code == 200
    assert listed == []


BLOCKED = [
    "http://127.0.0.1/hook",
    "http://[::1]/hook",
    "http://10.1.2.3/hook",
    "http://172.16.0.1/hook",
    "http://172.31.255.254/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
    "http://100.64.0.1/hook",
    "http://localhost:8000/hook",
    "http://localhost./hook",
    "http://[2002:7f00:1::]/hook",  # 6to4 around 127.0.0.1
    "http://[2002:a9fe:a9fe::]/hook",  # 6to4 around the metadata address
    "http://[fec0::1]/hook",  # site-local
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://0x7f.1/hook",
]


@pytest.mark.parametrize("url", BLOCKED)
def test_private_and_internal_targets_are_refused(url: str) -> None:
    with pytest.raises(HookTargetRefused):
        check_target(url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://example.com/hook", "https://"),
        ("file:///etc/passwd", "https://"),
        ("https://user:secret@example.com/hook", "credentials"),
        ("https:///nohost", "no host"),
        ("http://[::1/hook", "not a valid URL"),
        ("http://ßlocal.example/hook", "ASCII"),
    ],
)
def test_malformed_targets_are_refused_saying_why(url: str, words: str) -> None:
    with pytest.raises(HookTargetRefused) as refused:
        check_target(url)

    assert words in refused.value.message


def test_a_public_address_is_accepted() -> None:
    check_target("https://93.184.215.14/hook")  # resolves without DNS: a literal address


def test_subscribing_refuses_private_targets_unless_allowed(services, account, standard_key):
    strict = HookStore(services.db, services.clock, services.secrets, allow_private_targets=False)
    new = NewHook(target_url="http://127.0.0.1:9/hook", events=["document.created"])

    with pytest.raises(HookTargetRefused) as refused:
        strict.create(account.id, standard_key.id, new, "api")

    assert refused.value.status == 422
    assert "127.0.0.1" in refused.value.message
    assert services.hooks.create(account.id, standard_key.id, new, "api").id
