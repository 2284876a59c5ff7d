"""Deliveries to a real receiver on 127.0.0.1, driven by a clock the tests move (no sleeps)."""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from connector.audit import AuditAction
from connector.paging import PageQuery
from connector.platforms import API
from connector.templates import TemplateFields
from connector.webhooks.delivery import SCHEDULE_SECONDS, DeliveryWorker
from connector.webhooks.subscriptions import NewHook

from ..helpers import key_header

API_ONLY = {API.name: API.receivers}


def new_worker(services, **options) -> DeliveryWorker:
    """A delivery worker of its own, besides the one the services run; to loopback receivers."""
    defaults = {"allow_private_targets": True, "receivers": API_ONLY}
    return DeliveryWorker(services.db, services.clock, services.secrets, **defaults | options)


def make_event(services, account, name="Invoice"):
    return services.templates.create(account.id, TemplateFields(name=name, body="x"))


def test_an_event_is_delivered_signed(services, account, hook, receiver, clock) -> None:
    # A receiver checks the timestamp against its own clock, within 5 minutes: here the
    # service's clock reads the real time.
    clock.current = datetime.now(UTC)
    template = make_event(services, account)

    assert services.delivery.run_once() == 1
    [received] = receiver.wait_for(1)

    # Verified as a receiver does, with the Standard Webhooks library, not our own code.
    assert Webhook(hook.secret).verify(received.body, received.headers) == received.json
    assert received.path == "/hook"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-timestamp"] == str(int(clock.time()))
    assert received.json["type"] == "template.created"
    assert received.json["data"]["id"] == template.id
    another_secret = Webhook("whsec_" + base64.b64encode(b"x" * 24).decode())
    tampered = received.body.replace(template.id.encode(), b"tpl_another")
    with pytest.raises(WebhookVerificationError):
        another_secret.verify(received.body, received.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook.secret).verify(tampered, received.headers)


def test_only_subscribed_events_of_the_account_are_delivered(
    services, account, hook, receiver
) -> None:
    other = services.accounts.create("Globex")
    make_event(services, other)
    services.keys.create(account.id, "Not a template event")

    assert services.delivery.run_once() == 0
    assert receiver.requests == []


def test_failures_retry_on_schedule_with_one_webhook_id_then_fail(
    client, services, account, standard_key, hook, receiver, clock
) -> None:
    receiver.answer = lambda _: 500
    make_event(services, account)
    delays = []

    for attempt in range(len(SCHEDULE_SECONDS)):
        assert services.delivery.run_once() == 1, attempt
        assert services.delivery.run_once() == 0  # not due again yet
        deliveries = services.hooks.deliveries(account.id, hook.id, PageQuery()).data
        if deliveries[0].next_attempt_at is not None:
            delay = (deliveries[0].next_attempt_at - clock.now()).total_seconds()
            delays.append(delay)
            clock.advance(seconds=delay)

    received = receiver.wait_for(len(SCHEDULE_SECONDS))
    [delivery] = services.hooks.deliveries(account.id, hook.id, PageQuery()).data
    assert delivery.status == "failed"
    assert [a.status_code for a in delivery.attempts] == [500] * len(SCHEDULE_SECONDS)
    assert len({r.headers["webhook-id"] for r in received}) == 1
    assert received[0].headers["webhook-id"] == delivery.id
    for delay, planned in zip(delays, SCHEDULE_SECONDS[1:], strict=True):
        assert planned * 0.9 <= delay <= planned * 1.1

    receiver.answer = lambda _: 204
    retried = client.post(
        f"/v1/hooks/{hook.id}/deliveries/{delivery.id}/retry",
        headers=key_header(standard_key.value),
    )
    assert retried.status_code == 200 and retried.json["status"] == "pending"
    assert services.delivery.run_once() == 1
    listed = client.get(
        f"/v1/hooks/{hook.id}/deliveries", headers=key_header(standard_key.value)
    ).json["data"]
    assert listed[0]["status"] == "succeeded"
    assert [a["status_code"] for a in listed[0]["attempts"]][-1] == 204


def test_410_gone_deletes_the_subscription(services, account, hook, receiver) -> None:
    receiver.answer = lambda _: 410
    make_event(services, account)

    services.delivery.run_once()

    assert services.hooks.list(account.id) == []
    make_event(services, account, "Another")
    assert services.delivery.run_once() == 0
    # An admin who finds the subscription gone sees who removed it, and why.
    [entry] = services.audit.list(account.id, PageQuery(), action=AuditAction.HOOK_DELETED).data
    assert (entry.target, entry.actor, entry.via) == (hook.id, "service", "delivery")
    assert entry.detail["receiver_status"] == 410
    assert entry.detail["target_host"] == "127.0.0.1"


def test_redirects_are_not_followed(services, account, hook, receiver) -> None:
    receiver.answer = lambda received: 302 if received.path == "/hook" else 200
    make_event(services, account)

    services.delivery.run_once()

    assert [r.path for r in receiver.wait_for(1)] == ["/hook"]
    [delivery] = services.hooks.deliveries(account.id, hook.id, PageQuery()).data
    assert delivery.status == "pending" and delivery.attempts[0].status_code == 302


def test_five_days_of_failures_disable_the_subscription(
    client, services, account, standard_key, hook, receiver, clock
) -> None:
    receiver.answer = lambda _: 503
    for day in range(6):
        make_event(services, account, f"Day {day}")
        services.delivery.run_once()
        clock.advance(days=1)

    disabled = services.hooks.get(account.id, hook.id)
    events = client.get(
        "/v1/events?type=hook.disabled", headers=key_header(standard_key.value)
    ).json["data"]
    assert disabled.disabled_at is not None
    assert events[0]["data"]["hook_id"] == hook.id
    [entry] = services.audit.list(account.id, PageQuery(), action=AuditAction.HOOK_DISABLED).data
    assert (entry.target, entry.actor, entry.via) == (hook.id, "service", "delivery")
    make_event(services, account, "After")
    clock.advance(days=1)
    sent = len(receiver.requests)
    services.delivery.run_once()
    assert len(receiver.requests) == sent


def test_a_success_ends_a_failure_streak(services, account, hook, receiver, clock) -> None:
    receiver.answer = lambda _: 500
    make_event(services, account)
    services.delivery.run_once()
    assert services.hooks.get(account.id, hook.id).failing_since is not None

    receiver.answer = lambda _: 200
    clock.advance(seconds=10)
    services.delivery.run_once()

    assert services.hooks.get(account.id, hook.id).failing_since is None


def test_targets_are_checked_again_at_delivery(services, account, hook, receiver) -> None:
    strict = new_worker(services, allow_private_targets=False)
    make_event(services, account)

    strict.run_once()
    strict.stop()

    assert receiver.requests == []
    [delivery] = services.hooks.deliveries(account.id, hook.id, PageQuery()).data
    assert "127.0.0.1" in delivery.attempts[0].error


def test_a_lease_keeps_a_second_worker_off_until_it_expires(
    services, account, hook, receiver, clock
) -> None:
    make_event(services, account)
    second = new_worker(services, lease=timedelta(seconds=30))
    leased = second._lease_due()  # taken, then the worker "dies" before sending

    assert len(leased) == 1
    assert services.delivery.run_once() == 0
    clock.advance(seconds=31)
    assert services.delivery.run_once() == 1
    second.stop()


def test_a_named_host_is_reached_at_its_checked_address_with_its_name(
    services, account, standard_key, receiver
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    services.hooks.create(
        account.id,
        standard_key.id,
        NewHook(target_url=f"http://localhost:{port}/named?x=1", events=["template.created"]),
        "api",
    )
    make_event(services, account)

    services.delivery.run_once()

    [received] = receiver.wait_for(1)
    assert received.path == "/named?x=1"
    assert received.headers["host"] == f"localhost:{port}"


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    services, account, hook, receiver
) -> None:
    receiver.delay_seconds = 2
    impatient = new_worker(services, lease=timedelta(seconds=1))
    make_event(services, account)

    assert impatient.run_once() == 1
    impatient.stop()

    [delivery] = services.hooks.deliveries(account.id, hook.id, PageQuery()).data
    assert delivery.status == "pending"
    assert "no complete answer" in delivery.attempts[0].error


def test_a_quiet_day_breaks_a_failure_streak(services, account, hook, receiver, clock) -> None:
    receiver.answer = lambda _: 503
    make_event(services, account, "Outage")
    services.delivery.run_once()
    clock.advance(days=5, hours=6)  # nothing sent for days

    make_event(services, account, "After the quiet days")
    services.delivery.run_once()

    assert services.hooks.get(account.id, hook.id).disabled_at is None


def test_a_hook_of_a_platform_the_worker_was_not_assembled_with_is_an_error(
    services, account, standard_key, receiver
) -> None:
    services.hooks.create(
        account.id,
        standard_key.id,
        NewHook(target_url=receiver.url + "/hook", events=["template.created"]),
        "zapier",
    )
    make_event(services, account)
    api_only = new_worker(services)

    with pytest.raises(LookupError, match="'zapier'"):
        api_only.run_once()
    api_only.stop()

    assert receiver.requests == []  # not sent in the API's shape instead


def test_a_subscription_to_an_event_its_platform_no_longer_offers_holds_up_nothing(
    app, services, account, standard_key, hook, receiver
) -> None:
    # An earlier release let Zapier subscribe to template.created; Zapier offers no such trigger.
    stale = services.hooks.create(
        account.id,
        standard_key.id,
        NewHook(target_url=receiver.url + "/zapier", events=["template.created"]),
        "zapier",
    )
    make_event(services, account)

    assert services.delivery.run_once() == 2

    [delivered] = receiver.wait_for(1)
    assert delivered.path == "/hook"  # the API subscription's, in the same batch
    [delivery] = services.hooks.deliveries(account.id, stale.id, PageQuery()).data
    [attempt] = delivery.attempts
    assert attempt.error is not None and attempt.error.startswith("Not sent: No Zapier trigger")


def test_a_chore_that_raises_is_logged_and_the_loop_goes_on(
    services, account, hook, receiver, clock, caplog
) -> None:
    leaked = services.keys.create(account.id, "Leaked").value

    def broken_chore() -> None:
        raise RuntimeError("a chore went wrong")

    ran_after_it: list[bool] = []
    worker = new_worker(services, chores=[broken_chore, lambda: ran_after_it.append(True)])
    template = make_event(services, account)

    worker.start()  # the loop serve runs in each process
    try:
        [first] = receiver.wait_for(1)
        make_event(services, account, "Another")  # delivered on a later round of the loop
        [_, second] = receiver.wait_for(2)
    finally:
        worker.stop()

    assert (first.json["data"]["id"], second.json["data"]["name"]) == (template.id, "Another")
    assert ran_after_it, "the chores after a failing one still ran"
    failures = [r for r in caplog.records if r.levelname == "ERROR" and "broken_chore" in r.message]
    assert failures and all(leaked not in r.getMessage() for r in caplog.records)


def test_a_stop_from_a_signal_handler_cannot_deadlock_the_loop(services) -> None:
    # `templateto-bridge worker` stops on SIGTERM by calling stop_soon from the signal handler,
    # which Python runs on the loop's own thread, wherever it was: also inside the wake event's
    # wait or clear, which hold that event's lock. Waiting there for the same lock never ends
    # (a CI run saw a worker ignore SIGTERM). Here another thread holds that lock instead.
    worker = new_worker(services)
    with worker._wake._cond:  # where the interrupted loop may be
        stopping = threading.Thread(target=worker.stop_soon, daemon=True)
        stopping.start()
        stopping.join(timeout=5)
        assert not stopping.is_alive(), "stop_soon waited for a lock the loop holds"

    worker.run_until_stopped()  # returns: it was asked to stop
