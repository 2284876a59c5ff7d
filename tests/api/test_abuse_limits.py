"""Abuse limits on key-authenticated requests: 429 JSON with an integer Retry-After, on every
surface; refused requests limited per address and per key value; requests limited per key."""

from __future__ import annotations

import secrets

import pytest

from connector.app import create_app

from ..helpers import key_header


@pytest.fixture
def settings(settings):
    return settings.model_copy(
        update={
            "rate_limit_per_key": "3/minute",
            "failed_auth_limit_per_key_value": "2/minute",
            "failed_auth_limit_per_address": "5/minute",
        }
    )


def test_a_key_over_its_rate_gets_429_with_retry_after(client, standard_key) -> None:
    headers = key_header(standard_key.value)
    answers = [client.get("/v1/me", headers=headers) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.json["error"]["code"] == "rate_limited"
    assert limited.json["error"]["message"].startswith(
        "The API key 'n8n workflows' made more than 3 requests in 1 minute. Retry in "
    )
    assert limited.json["error"]["details"]["retry_after"] == int(limited.headers["Retry-After"])


def test_the_rate_is_per_key_whatever_its_values(client, services, account, standard_key):
    other = services.keys.create(account.id, "Zapier production")
    for _ in range(3):
        client.get("/v1/me", headers=key_header(standard_key.value))

    assert client.get("/v1/me", headers=key_header(other.value)).status_code == 200
    assert client.get("/v1/me", headers=key_header(standard_key.value)).status_code == 429


def test_zapier_and_n8n_get_the_429_in_their_shapes(client, standard_key) -> None:
    for _ in range(3):
        client.get("/v1/me", headers=key_header(standard_key.value))

    zapier = client.get("/zapier/me", headers=key_header(standard_key.value, "Zapier"))
    n8n = client.get("/n8n/templates", headers=key_header(standard_key.value, "n8n"))

    assert zapier.status_code == n8n.status_code == 429
    assert int(zapier.headers["Retry-After"]) >= 1 and int(n8n.headers["Retry-After"]) >= 1
    assert len(zapier.json["error"]["message"]) <= 250
    assert n8n.json["message"] == n8n.json["error"]["message"]


def test_a_refused_value_is_limited_without_a_lookup(client, services, account) -> None:
    old = services.keys.create(account.id, "Zapier production")
    services.keys.roll(None, old.id)
    headers = key_header(old.value, "Zapier")

    answers = [client.get("/zapier/me", headers=headers).status_code for _ in range(3)]
    limited = client.get("/zapier/me", headers=headers)

    assert answers == [401, 401, 429]
    assert limited.json["error"]["code"] == "failed_auth_key_limited"
    assert limited.json["error"]["message"].startswith(
        "Too many requests with this refused API key. Retry in "
    )


def test_n8ns_repeated_401_is_one_attempt(client, services, account) -> None:
    old = services.keys.create(account.id, "n8n production")
    services.keys.roll(None, old.id)
    headers = key_header(old.value, "n8n")

    # Two attempts, each repeated by n8n: four 401s, two failures counted.
    answers = [client.get("/n8n/templates", headers=headers).status_code for _ in range(5)]

    assert answers == [401, 401, 401, 401, 429]


def test_an_address_flooding_bad_keys_keeps_its_working_keys(client, standard_key) -> None:
    good = key_header(standard_key.value)
    assert client.get("/v1/me", headers=good).status_code == 200  # known to work here
    bad = ["tt_live_" + str(n) * 38 for n in range(6)]

    answers = [client.get("/v1/me", headers=key_header(value)).status_code for value in bad]

    assert answers[:5] == [401] * 5 and answers[5] == 429
    assert client.get("/v1/me", headers=good).status_code == 200


def test_a_key_named_with_braces_is_limited_all_the_same(client, services, account) -> None:
    key = services.keys.create(account.id, "{wait} {0} {")
    for _ in range(3):
        client.get("/v1/me", headers=key_header(key.value))

    limited = client.get("/v1/me", headers=key_header(key.value))

    assert limited.status_code == 429
    assert limited.json["error"]["message"].startswith("The API key '{wait} {0} {' made more")


def test_limits_are_shared_through_redis(settings, clock, account) -> None:
    """Two processes (here two apps) with BRIDGE_REDIS_URL count one key's requests together."""
    shared = settings.model_copy(update={"redis_url": "redis://127.0.0.1:6379/0"})
    first, second = create_app(shared, clock=clock), create_app(shared, clock=clock)
    key = first.extensions["templateto"].keys.create(account.id, "Zapier production")
    headers = key_header(key.value)

    address = an_address_of_its_own()
    answers = [
        app.test_client().get("/v1/me", headers=headers, environ_base=address)
        for app in (first, second) * 2
    ]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    for app in (first, second):
        app.extensions["templateto"].close()


@pytest.mark.parametrize("redis_url", ["", "redis://127.0.0.1:6379/0"], ids=["alone", "redis"])
def test_n8ns_repeat_answered_by_another_process_is_the_same_attempt(
    settings, clock, account, redis_url
) -> None:
    """A repeat is known whichever worker or machine answers it, with or without Redis."""
    shared = settings.model_copy(
        update={"redis_url": redis_url, "failed_auth_limit_per_key_value": "100/minute"}
    )
    first, second = create_app(shared, clock=clock), create_app(shared, clock=clock)
    services = first.extensions["templateto"]
    old = services.keys.create(account.id, "n8n production")
    services.keys.roll(None, old.id)
    headers = key_header(old.value, "n8n")

    # Three attempts, each first answered by one process and repeated to the other.
    address = an_address_of_its_own()
    answers = [
        app.test_client().get("/n8n/templates", headers=headers, environ_base=address).status_code
        for app in (first, second) * 3
    ]

    assert answers == [401] * 6
    second.extensions["templateto"].usage.flush()
    assert reported_count(services, old.id) == 3
    for app in (first, second):
        app.extensions["templateto"].close()


def test_when_redis_is_unreachable_requests_are_served_and_counted(
    settings, clock, account, caplog
) -> None:
    nowhere = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    app = create_app(nowhere, clock=clock)
    key = app.extensions["templateto"].keys.create(account.id, "Zapier production")

    answers = [app.test_client().get("/v1/me", headers=key_header(key.value)) for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 3 + [429] * 2  # counted in memory
    assert caplog.text.count("Redis (BRIDGE_REDIS_URL) does not answer (ConnectionError)") == 1
    app.extensions["templateto"].close()


def an_address_of_its_own() -> dict[str, str]:
    """Counts in Redis outlive a test: a fresh client address keeps earlier runs' out."""
    return {"REMOTE_ADDR": f"127.{secrets.randbelow(250)}.{secrets.randbelow(250)}.1"}


def reported_count(services, key_id: str) -> int:
    services.usage.flush()
    return sum(report.count for report in services.keys.failures(None, key_id))


def test_every_use_of_an_old_value_is_counted_the_limited_ones_too(
    client, services, account
) -> None:
    old = services.keys.create(account.id, "Zapier production")
    services.keys.roll(None, old.id)
    headers = key_header(old.value, "Zapier")

    answers = [client.get("/zapier/me", headers=headers).status_code for _ in range(4)]
    # Another key's roll: the limited value stays known.
    other = services.keys.create(account.id, "Reporting")
    services.keys.roll(None, other.id)
    answers += [client.get("/zapier/me", headers=headers).status_code for _ in range(4)]

    assert answers == [401, 401] + [429] * 6
    assert reported_count(services, old.id) == 8


def test_a_process_that_never_saw_a_limited_value_still_counts_it(settings, clock, account):
    """With Redis, another process may meet a value already over its limit."""
    shared = settings.model_copy(update={"redis_url": "redis://127.0.0.1:6379/0"})
    first, second = create_app(shared, clock=clock), create_app(shared, clock=clock)
    services = first.extensions["templateto"]
    old = services.keys.create(account.id, "Zapier production")
    services.keys.roll(None, old.id)
    headers = key_header(old.value, "Zapier")

    address = an_address_of_its_own()
    answers = [
        app.test_client().get("/zapier/me", headers=headers, environ_base=address)
        for app in (first, first, second, second, second)
    ]

    assert [a.status_code for a in answers] == [401, 401, 429, 429, 429]
    second.extensions["templateto"].usage.flush()
    assert reported_count(services, old.id) == 5
    for app in (first, second):
        app.extensions["templateto"].close()


def test_uses_refused_by_the_address_limit_are_counted_too(settings, clock, account) -> None:
    """Zapier's shared address may be over its limit because of someone else's bad key."""
    strict = settings.model_copy(
        update={
            "failed_auth_limit_per_key_value": "100/minute",
            "failed_auth_limit_per_address": "2/minute",
        }
    )
    app = create_app(strict, clock=clock)
    services, client = app.extensions["templateto"], app.test_client()
    old = services.keys.create(account.id, "Zapier production")
    services.keys.roll(None, old.id)
    for bad in ("tt_live_" + "1" * 38, "tt_live_" + "2" * 38):
        assert client.get("/zapier/me", headers=key_header(bad, "Zapier")).status_code == 401
    headers = key_header(old.value, "Zapier")

    first = [client.get("/zapier/me", headers=headers).status_code for _ in range(3)]
    other = services.keys.create(account.id, "Reporting")
    services.keys.roll(None, other.id)
    then = [client.get("/zapier/me", headers=headers).status_code for _ in range(2)]

    assert first + then == [429] * 5
    assert reported_count(services, old.id) == 5
    services.close()
