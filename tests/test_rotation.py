"""api_key.rotation_due: recorded when a key becomes due and again when it becomes overdue, once
each per rotation period, whichever process (or how many at once) looks; a roll starts afresh;
delivered to subscriptions like any event. Nothing is rolled."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from connector.clock import iso
from connector.events import EventType
from connector.key_policy import KeyPolicyChange
from connector.models import Event
from connector.paging import PageQuery
from connector.rotation import RotationWatch
from connector.webhooks.subscriptions import NewHook


def told(services) -> list[tuple[str, str]]:
    """(key name, rotation) of every api_key.rotation_due recorded, oldest first."""
    page = services.events.list(
        services.accounts.list()[0].id, PageQuery(limit=100), EventType.API_KEY_ROTATION_DUE
    )
    return [(event.data["name"], event.data["rotation"]) for event in reversed(page.data)]


def test_a_key_is_told_due_then_overdue_once_each_and_again_after_a_roll(
    services, account, clock
) -> None:
    services.key_policies.change(account.id, KeyPolicyChange(max_age_days=30))
    key = services.keys.create(account.id, "Zapier")
    watch = services.rotation

    clock.advance(days=23, seconds=-1)  # 7 days and a second before its rotate-by time
    assert watch.tell_due_keys() == 0
    clock.advance(seconds=1)
    assert watch.tell_due_keys() == 1
    assert watch.tell_due_keys() == 0
    assert RotationWatch(services.db, clock).tell_due_keys() == 0  # a restart, another worker
    clock.advance(days=7)
    assert watch.tell_due_keys() == 1
    clock.advance(days=100)
    assert watch.tell_due_keys() == 0
    assert told(services) == [("Zapier", "due"), ("Zapier", "overdue")]
    assert services.keys.get(account.id, key.id).rolled_at is None  # told, never rolled

    services.keys.roll(account.id, key.id)
    assert watch.tell_due_keys() == 0
    clock.advance(days=23, seconds=1)
    assert watch.tell_due_keys() == 1
    assert told(services)[-1] == ("Zapier", "due")


def test_a_key_found_already_overdue_is_told_overdue_only(services, account, clock) -> None:
    key = services.keys.create(account.id, "Reporting")
    services.keys.set_rotate_by(account.id, key.id, clock.now() - timedelta(minutes=1))

    assert services.rotation.tell_due_keys() == 1

    assert told(services) == [("Reporting", "overdue")]


def test_a_deadline_moved_later_starts_a_new_period_with_its_own_notices(
    services, account, clock
) -> None:
    key = services.keys.create(account.id, "Zapier")
    services.keys.set_rotate_by(account.id, key.id, clock.now() + timedelta(days=5))
    assert services.rotation.tell_due_keys() == 1

    services.keys.set_rotate_by(account.id, key.id, clock.now() + timedelta(days=30))
    assert services.rotation.tell_due_keys() == 0  # ok again: nothing to tell
    clock.advance(days=24)
    assert services.rotation.tell_due_keys() == 1
    assert RotationWatch(services.db, clock).tell_due_keys() == 0  # a restart, another worker
    clock.advance(days=7)
    assert services.rotation.tell_due_keys() == 1
    assert services.rotation.tell_due_keys() == 0

    assert told(services) == [("Zapier", "due"), ("Zapier", "due"), ("Zapier", "overdue")]


def test_a_larger_policy_age_starts_a_new_period(services, account, clock) -> None:
    services.key_policies.change(account.id, KeyPolicyChange(max_age_days=30))
    services.keys.create(account.id, "Zapier")
    clock.advance(days=31)
    assert services.rotation.tell_due_keys() == 1

    services.key_policies.change(account.id, KeyPolicyChange(max_age_days=60))
    clock.advance(days=23)
    assert services.rotation.tell_due_keys() == 1

    assert told(services) == [("Zapier", "overdue"), ("Zapier", "due")]


def test_a_deadline_moved_earlier_into_the_past_is_told_overdue_once(
    services, account, clock
) -> None:
    key = services.keys.create(account.id, "Reporting")
    services.keys.set_rotate_by(account.id, key.id, clock.now() + timedelta(days=3))
    assert services.rotation.tell_due_keys() == 1

    clock.advance(minutes=1)
    services.keys.set_rotate_by(account.id, key.id, clock.now() - timedelta(hours=1))
    assert services.rotation.tell_due_keys() == 1
    assert services.rotation.tell_due_keys() == 0

    assert told(services) == [("Reporting", "due"), ("Reporting", "overdue")]


def test_keys_without_a_deadline_and_deleted_keys_are_never_told(services, account, clock) -> None:
    services.keys.create(account.id, "No deadline")
    gone = services.keys.create(account.id, "Gone")
    services.keys.set_rotate_by(account.id, gone.id, clock.now() + timedelta(days=1))
    services.keys.delete(account.id, gone.id)

    clock.advance(days=3650)

    assert services.rotation.tell_due_keys() == 0


def test_workers_looking_at_the_same_moment_tell_once(services, account, clock) -> None:
    services.key_policies.change(account.id, KeyPolicyChange(max_age_days=1))
    for number in range(5):
        services.keys.create(account.id, f"Key {number}")
    clock.advance(days=2)
    watches = [RotationWatch(services.db, clock) for _ in range(4)]
    start = threading.Barrier(len(watches))
    counts: list[int] = []

    def look(watch: RotationWatch) -> None:
        start.wait()
        counts.append(watch.tell_due_keys())

    threads = [threading.Thread(target=look, args=(watch,)) for watch in watches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == 5
    with services.db.transaction() as session:
        recorded = session.scalars(
            select(Event.payload).where(Event.type == EventType.API_KEY_ROTATION_DUE.value)
        ).all()
    assert sorted(payload["name"] for payload in recorded) == [f"Key {n}" for n in range(5)]


def test_the_notice_is_delivered_to_subscriptions_by_the_worker_loop(
    services, account, standard_key, receiver, clock
) -> None:
    services.hooks.create(
        account.id,
        standard_key.id,
        NewHook(target_url=receiver.url + "/hook", events=[EventType.API_KEY_ROTATION_DUE]),
        "api",
    )
    services.keys.set_rotate_by(account.id, standard_key.id, clock.now() + timedelta(days=6))

    services.delivery.start()  # the loop that serve runs in each process
    try:
        [delivered] = receiver.wait_for(1)
    finally:
        services.delivery.stop()

    assert delivered.json["type"] == "api_key.rotation_due"
    data = delivered.json["data"]
    assert (data["id"], data["name"], data["rotation"]) == (standard_key.id, "n8n workflows", "due")
    assert data["hint"] == standard_key.hint and standard_key.value not in delivered.body.decode()


def test_key_events_carry_rotate_by_and_rotation(services, account, clock) -> None:
    services.key_policies.change(account.id, KeyPolicyChange(max_age_days=10))
    services.keys.create(account.id, "Zapier")

    [created] = services.events.list(account.id, PageQuery(), EventType.API_KEY_CREATED).data

    assert created.data["rotate_by"] == iso(clock.now() + timedelta(days=10))
    assert created.data["rotation"] == "ok"
