"""Events are recorded with the change that causes them, and listed newest first."""

from __future__ import annotations

from datetime import timedelta

from connector.templates import TemplateFields

from ..helpers import key_header


def event_types(client, key) -> list[str]:
    events = client.get("/v1/events?limit=100", headers=key_header(key.value)).json["data"]
    return [event["type"] for event in events]


def test_key_template_and_document_changes_are_events(client, services, clock, account, admin_key):
    clock.advance(seconds=1)
    template = services.templates.create(account.id, TemplateFields(name="T", body="Hi {{ n }}"))
    clock.advance(seconds=1)
    services.templates.replace(account.id, template.id, TemplateFields(name="T2", body="Yo"))
    clock.advance(seconds=1)
    client.post(
        "/v1/documents",
        json={"template_id": template.id, "format": "txt"},
        headers=key_header(admin_key.value),
    )
    clock.advance(seconds=1)
    other = services.keys.create(account.id, "Other")
    clock.advance(seconds=1)
    services.keys.roll(None, other.id, timedelta(hours=1))
    clock.advance(seconds=1)
    services.keys.delete(None, other.id)

    assert event_types(client, admin_key) == [
        "api_key.deleted",
        "api_key.rolled",
        "api_key.created",
        "document.created",
        "template.updated",
        "template.created",
        "api_key.created",
    ]


def test_event_payloads_carry_what_a_workflow_needs_and_no_key_value(
    client, services, account, admin_key
) -> None:
    issued = services.keys.create(account.id, "Zapier")
    rolled = services.keys.roll(None, issued.id)
    events = client.get("/v1/events", headers=key_header(admin_key.value)).json["data"]

    created = next(
        e for e in events if e["type"] == "api_key.created" and e["data"]["id"] == issued.id
    )
    roll = next(e for e in events if e["type"] == "api_key.rolled")
    assert created["id"].startswith("evt_")
    assert created["data"]["name"] == "Zapier" and created["data"]["hint"] == issued.hint
    assert roll["data"]["rolled_at"] is not None
    assert issued.value not in str(events) and rolled.value not in str(events)
    assert admin_key.value not in str(events)


def test_events_are_paged_and_filtered_by_type(client, services, clock, account, admin_key):
    for number in range(3):
        services.templates.create(account.id, TemplateFields(name=f"T{number}", body="x"))
        clock.advance(seconds=1)
    headers = key_header(admin_key.value)

    first = client.get("/v1/events?type=template.created&limit=2", headers=headers).json
    second = client.get(
        f"/v1/events?type=template.created&limit=2&cursor={first['next_cursor']}", headers=headers
    ).json
    bad = client.get("/v1/events?type=nonsense", headers=headers)

    names = [e["data"]["name"] for e in first["data"] + second["data"]]
    assert names == ["T2", "T1", "T0"]
    assert second["next_cursor"] is None
    assert bad.status_code == 422


def test_no_account_sees_anothers_events(client, services, admin_key) -> None:
    other = services.accounts.create("Globex")
    their_key = services.keys.create(other.id, "Theirs")

    theirs = client.get("/v1/events", headers=key_header(their_key.value)).json["data"]

    assert [e["data"]["id"] for e in theirs] == [their_key.id]


def test_old_value_use_is_an_event_at_most_once_an_hour_per_key(
    client, services, clock, account, admin_key
) -> None:
    key = services.keys.create(account.id, "Zapier staging")
    services.keys.roll(None, key.id)

    def use_old_value(times: int) -> None:
        for _ in range(times):
            client.get("/v1/me", headers=key_header(key.value, "Zapier"))
        services.usage.flush()

    use_old_value(5)
    clock.advance(minutes=30)
    use_old_value(5)
    clock.advance(minutes=31)
    use_old_value(1)

    events = client.get(
        "/v1/events?type=api_key.old_value_used", headers=key_header(admin_key.value)
    ).json["data"]
    assert len(events) == 2
    newest = events[0]["data"]
    assert newest["key_id"] == key.id and newest["key_name"] == "Zapier staging"
    assert newest["client"] == "zapier" and newest["reason"] == "rolled"
    assert newest["failure_count"] == 11
    assert newest["value_hint"] == key.hint
    assert key.value not in str(events)


def test_old_value_use_is_an_event_on_each_change_of_situation(
    client, services, clock, account, admin_key
) -> None:
    key = services.keys.create(account.id, "Zapier staging")
    services.keys.roll(None, key.id, timedelta(minutes=10))

    def use_old_value() -> None:
        for _ in range(3):
            client.get("/v1/me", headers=key_header(key.value, "Zapier"))
        services.usage.flush()

    def situations() -> list[str]:
        events = client.get(
            "/v1/events?type=api_key.old_value_used", headers=key_header(admin_key.value)
        ).json["data"]
        return [event["data"]["situation"] for event in reversed(events)]

    use_old_value()  # harmless: the grace period
    clock.advance(minutes=9)
    use_old_value()
    assert situations() == ["used_during_grace_period"]

    clock.advance(minutes=2)  # the grace period has ended: the first real refusal is told
    use_old_value()
    clock.advance(minutes=5)
    use_old_value()
    assert situations() == ["used_during_grace_period", "refused_after_roll"]

    services.keys.delete(None, key.id)
    use_old_value()
    clock.advance(minutes=61)
    use_old_value()  # the same situation, an hour later
    assert situations() == [
        "used_during_grace_period",
        "refused_after_roll",
        "used_after_delete",
        "used_after_delete",
    ]
