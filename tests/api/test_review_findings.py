"""Edge cases found in review: races, poisoned paths, silently lost grace periods."""

from __future__ import annotations

import threading

from connector.api_keys import IssuedApiKey
from connector.errors import ApiKeyRollConflict, BridgeError

from ..helpers import key_header

ROLLS = 4


def test_concurrent_rolls_leave_exactly_one_working_value(client, services, standard_key):
    # Every thread waits at the barrier, so the rolls start together and race for the same
    # current value instead of running one after another.
    barrier = threading.Barrier(ROLLS)
    outcomes: list[IssuedApiKey | BridgeError] = []

    def roll() -> None:
        barrier.wait(timeout=10)
        try:
            outcomes.append(services.keys.roll(None, standard_key.id))
        except BridgeError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=roll) for _ in range(ROLLS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    issued = [outcome.value for outcome in outcomes if isinstance(outcome, IssuedApiKey)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, BridgeError)]
    working = [v for v in issued if client.get("/v1/me", headers=key_header(v)).status_code == 200]
    # Every roll answered: a new value, or a conflict that says to look at the key and retry.
    assert len(outcomes) == ROLLS
    assert all(isinstance(error, ApiKeyRollConflict) for error in refused), refused
    assert len(working) == 1
    assert services.keys.get(None, standard_key.id).hint.endswith(working[0][-4:])
    old = client.get("/v1/me", headers=key_header(standard_key.value))
    assert old.json["error"]["code"] == "api_key_rolled"


def test_rolling_again_cuts_off_an_old_value_in_its_grace_period(client, admin_key, standard_key):
    headers = key_header(admin_key.value)
    client.post(
        f"/v1/api-keys/{standard_key.id}/roll", json={"grace_seconds": 86400}, headers=headers
    )
    assert client.get("/v1/me", headers=key_header(standard_key.value)).status_code == 200

    client.post(f"/v1/api-keys/{standard_key.id}/roll", headers=headers)

    refused = client.get("/v1/me", headers=key_header(standard_key.value))
    assert refused.status_code == 401 and refused.json["error"]["code"] == "api_key_rolled"


def test_a_roll_body_is_never_silently_ignored(client, admin_key, standard_key) -> None:
    headers = key_header(admin_key.value)
    url = f"/v1/api-keys/{standard_key.id}/roll"

    misspelt = client.post(url, json={"grace": 86400}, headers=headers)
    boolean = client.post(url, json={"grace_seconds": True}, headers=headers)
    broken = client.post(url, data="{grace_seconds: 5", headers=headers)
    no_content_type = client.post(url, data='{"grace_seconds": 60}', headers=headers)

    assert misspelt.status_code == 422 and boolean.status_code == 422
    assert broken.status_code == 400 and broken.json["error"]["code"] == "malformed_json"
    assert no_content_type.status_code == 200
    assert no_content_type.json["old_values"][0]["works_until"] is not None


def test_a_path_with_control_characters_does_not_block_usage_reports(
    client, services, standard_key
):
    services.keys.roll(None, standard_key.id)

    client.get("/v1/api-keys/%01x", headers=key_header(standard_key.value, "Zapier"))
    services.usage.flush()
    assert services.keys.failures(None, standard_key.id)[0].last_path == "/v1/api-keys/?x"
    client.get("/v1/me", headers=key_header(standard_key.value, "Zapier"))
    services.usage.flush()

    reports = services.keys.failures(None, standard_key.id)
    assert (reports[0].count, reports[0].last_path) == (2, "/v1/me")


def test_deeply_nested_json_is_a_400(client, admin_key) -> None:
    response = client.post(
        "/v1/api-keys",
        data="[" * 100_000,
        content_type="application/json",
        headers=key_header(admin_key.value),
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed_json"


def test_a_key_as_a_query_parameter_name_or_repeated_value_is_refused(client, admin_key) -> None:
    as_name = client.get(f"/v1/me?{admin_key.value}", headers=key_header(admin_key.value))
    repeated = client.get(f"/v1/me?a=1&a={admin_key.value}", headers=key_header(admin_key.value))

    assert as_name.json["error"]["code"] == "api_key_in_query"
    assert repeated.json["error"]["code"] == "api_key_in_query"
