"""Who still uses an old value after a roll or delete, and when a key was last used: recorded in
aggregate, so a flood of requests does not become a flood of writes."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event, update

from connector.models import ApiKey
from connector.usage import UsageRecorder

from ..helpers import key_header

ZAPIER = "Zapier"
N8N = "n8n"


@pytest.fixture
def settings(settings):
    """Floods of refused requests here are about counting them, not about the abuse limit."""
    return settings.model_copy(update={"failed_auth_limit_per_key_value": "1000/minute"})


def count_writes(engine, table: str) -> list[str]:
    writes: list[str] = []

    def note(_conn, _cursor, statement: str, *_args) -> None:
        lowered = statement.lower()
        if table in lowered and lowered.lstrip().startswith(("insert", "update")):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    return writes


def test_uses_of_a_rolled_value_are_counted_per_client(
    client, services, clock, admin_key, standard_key
):
    services.keys.roll(None, standard_key.id)
    for _ in range(3):
        client.get("/v1/me", headers=key_header(standard_key.value, ZAPIER))
    clock.advance(minutes=5)
    client.get("/v1/api-keys", headers=key_header(standard_key.value, "n8n"))
    client.get("/v1/me", headers=key_header(standard_key.value, "curl/8.0"))
    services.usage.flush()

    reports = client.get(
        f"/v1/api-keys/{standard_key.id}/failures", headers=key_header(admin_key.value)
    ).json["data"]

    by_client = {report["client"]: report for report in reports}
    assert set(by_client) == {"zapier", "n8n", "other"}
    assert by_client["zapier"]["count"] == 3
    assert by_client["zapier"]["reason"] == "rolled"
    assert by_client["zapier"]["value_hint"] == standard_key.hint
    assert by_client["zapier"]["first_seen_at"] == "2026-11-20T10:03:00Z"
    assert by_client["n8n"]["last_seen_at"] == "2026-11-20T10:08:00Z"
    assert by_client["n8n"]["last_path"] == "/v1/api-keys"
    assert reports[0]["client"] in {"n8n", "other"}  # most recent first


def test_uses_during_a_grace_period_and_after_delete_are_reported(
    client, services, admin_key, standard_key
) -> None:
    services.keys.roll(None, standard_key.id, timedelta(hours=1))
    assert client.get("/v1/me", headers=key_header(standard_key.value, ZAPIER)).status_code == 200
    services.keys.delete(None, standard_key.id)
    assert client.get("/v1/me", headers=key_header(standard_key.value, ZAPIER)).status_code == 401
    services.usage.flush()

    reports = services.keys.failures(None, standard_key.id)

    assert {(r.reason, r.client, r.count) for r in reports} == {
        ("grace_period", "zapier", 1),
        ("deleted", "zapier", 1),
    }


def test_a_flood_of_old_value_requests_becomes_one_write_per_flush(
    client, services, standard_key
) -> None:
    services.keys.roll(None, standard_key.id)
    writes = count_writes(services.db.engine, "api_key_failures")

    for _ in range(200):
        client.get("/v1/me", headers=key_header(standard_key.value, ZAPIER))
    services.usage.flush()

    assert len(writes) == 1
    assert services.keys.failures(None, standard_key.id)[0].count == 200


def test_counts_add_up_across_flushes(client, services, standard_key) -> None:
    services.keys.roll(None, standard_key.id)
    for _ in range(2):
        for _ in range(5):
            client.get("/v1/me", headers=key_header(standard_key.value, ZAPIER))
        services.usage.flush()

    assert services.keys.failures(None, standard_key.id)[0].count == 10


def test_usage_is_flushed_by_itself_shortly_after(client, services, standard_key) -> None:
    import time

    services.keys.roll(None, standard_key.id)
    client.get("/v1/me", headers=key_header(standard_key.value, ZAPIER))

    deadline = time.monotonic() + 10
    while not services.keys.failures(None, standard_key.id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert services.keys.failures(None, standard_key.id)[0].count == 1


def test_last_used_is_written_at_most_once_a_minute(client, services, clock, admin_key) -> None:
    writes = count_writes(services.db.engine, "api_keys")
    headers = key_header(admin_key.value)

    for _ in range(20):
        client.get("/v1/me", headers=headers)
        clock.advance(seconds=1)
    services.usage.flush()
    first = services.keys.get(None, admin_key.id).last_used_at
    clock.advance(seconds=41)
    client.get("/v1/me", headers=headers)
    services.usage.flush()

    assert first is not None and first.isoformat() == "2026-11-20T10:03:00+00:00"
    assert services.keys.get(None, admin_key.id).last_used_at.isoformat() == (
        "2026-11-20T10:04:01+00:00"
    )
    assert len(writes) == 2


def test_connection_test_has_no_side_effect_but_last_used(client, services, admin_key) -> None:
    before = services.keys.get(None, admin_key.id)

    client.get("/v1/me", headers=key_header(admin_key.value))
    services.usage.flush()

    after = services.keys.get(None, admin_key.id)
    assert after.model_dump(exclude={"last_used_at"}) == before.model_dump(exclude={"last_used_at"})
    assert after.last_used_at is not None
    assert services.keys.failures(None, admin_key.id) == []


def test_a_flush_returns_once_uses_a_timer_is_still_writing_are_written(
    services, account, standard_key, clock
) -> None:
    # Shutting down (close() flushes) or reading a report right after a flush must not miss
    # uses that the timer's flush took a moment earlier and is still writing.
    recorder = UsageRecorder(services.db, flush_delay=0.05)
    holder = services.db.engine.connect()
    holding = holder.begin()  # holds the key's row: the timer's write waits for it
    holder.execute(update(ApiKey).where(ApiKey.id == standard_key.id).values(last_used_at=None))
    try:
        recorder.note_used(standard_key.id, clock.now())
        time.sleep(0.5)  # the timer has fired, taken the use and waits for the row
        threading.Timer(0.5, holding.rollback).start()

        recorder.flush()

        assert services.keys.get(account.id, standard_key.id).last_used_at == clock.now()
    finally:
        holder.close()
