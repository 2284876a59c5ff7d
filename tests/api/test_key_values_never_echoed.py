"""A key value sent where it does not belong (a query parameter's name, a path segment) is never
repeated: not in the answer, not in the failure report, not in the events and webhooks that
tell of it. (The logs: tests/e2e/test_no_secrets_in_logs.py.)"""

from __future__ import annotations

from connector.webhooks.subscriptions import NewHook

from ..helpers import key_header


def test_a_key_as_a_query_parameter_name_is_refused_without_repeating_it(client, admin_key):
    refused = client.get(f"/v1/me?{admin_key.value}=1", headers=key_header(admin_key.value))

    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "api_key_in_query"
    assert "(query parameter 'tt_live_[redacted]')" in refused.json["error"]["message"]
    assert refused.json["error"]["details"] == {"parameter": "tt_live_[redacted]"}
    assert admin_key.value not in refused.text
    assert admin_key.value[8:20] not in refused.text


def test_a_key_in_the_path_is_not_repeated_by_the_answer(client, admin_key) -> None:
    for path in (
        f"/v1/templates/{admin_key.value}",
        f"/v1/documents/{admin_key.value}",
        f"/v1/api-keys/{admin_key.value}",
        f"/v1/hooks/{admin_key.value}",
    ):
        answer = client.get(path, headers=key_header(admin_key.value))

        assert answer.status_code == 404, path
        assert admin_key.value[8:20] not in answer.text, path
        assert "tt_live_[redacted]" in answer.json["error"]["message"], path


def test_a_key_shaped_path_is_redacted_in_the_report_the_event_and_the_webhook(
    client, services, account, admin_key, standard_key, receiver
) -> None:
    services.hooks.create(
        account.id,
        admin_key.id,
        NewHook(target_url=receiver.url + "/hook", events=["api_key.old_value_used"]),
        "api",
    )
    services.keys.roll(None, standard_key.id)
    pasted = f"/v1/templates/{standard_key.value}"

    refused = client.get(pasted, headers=key_header(standard_key.value, "Zapier"))
    services.usage.flush()
    services.delivery.run_once()
    [delivered] = receiver.wait_for(1)

    assert refused.json["error"]["code"] == "api_key_rolled"
    [report] = services.keys.failures(None, standard_key.id)
    assert report.last_path == "/v1/templates/tt_live_[redacted]"
    events = client.get(
        "/v1/events?type=api_key.old_value_used", headers=key_header(admin_key.value)
    ).json["data"]
    assert events[0]["data"]["last_path"] == "/v1/templates/tt_live_[redacted]"
    assert delivered.json["data"]["last_path"] == "/v1/templates/tt_live_[redacted]"
    for seen in (refused.text, str(events), delivered.body.decode()):
        assert standard_key.value[8:20] not in seen


def test_neither_a_redirect_nor_the_request_id_repeats_a_key(client, admin_key) -> None:
    redirected = client.get(f"/openapi?{admin_key.value}=1")
    traced = client.get(
        "/v1/me", headers={**key_header(admin_key.value), "X-Request-Id": admin_key.value}
    )

    assert redirected.status_code == 308
    assert redirected.headers["Location"].endswith("/openapi/?tt_live_%5Bredacted%5D=1")
    assert admin_key.value[8:20] not in redirected.get_data(as_text=True)
    assert traced.status_code == 200
    assert admin_key.value[8:20] not in traced.headers["X-Request-Id"]
