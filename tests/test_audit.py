"""The audit log's recorder and reader: an entry commits with its action or not at all, entries
list newest first with keyset paging and filters, and old ones are purged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.audit import OPERATOR, Actor, AuditAction, Via, record
from connector.errors import InvalidCursor
from connector.paging import PageQuery
from connector.services import Services

ADA = Actor("ada@acme.example", Via.PAGE, "203.0.113.7", "Firefox")


def test_an_entry_commits_with_its_transaction_or_not_at_all(services, account, clock) -> None:
    with services.db.transaction() as session:
        record(session, account.id, AuditAction.KEY_POLICY_CHANGED, "key_policy", ADA, clock.now())
    with pytest.raises(RuntimeError), services.db.transaction() as session:
        record(session, account.id, AuditAction.USER_CREATED, "x@acme.example", ADA, clock.now())
        raise RuntimeError("the action failed")

    [entry] = services.audit.list(account.id, PageQuery()).data
    assert entry.action is AuditAction.KEY_POLICY_CHANGED
    assert (entry.actor, entry.via, entry.source_address, entry.user_agent) == (
        "ada@acme.example",
        Via.PAGE,
        "203.0.113.7",
        "Firefox",
    )


def test_entries_page_newest_first_and_filter_by_action_and_target(
    services, account, clock
) -> None:
    for number in range(5):
        with services.db.transaction() as session:
            record(
                session,
                account.id,
                AuditAction.HOOK_CREATED,
                f"hook_{number}",
                OPERATOR,
                clock.now(),
            )
        clock.advance(seconds=1)
    with services.db.transaction() as session:
        record(session, account.id, AuditAction.HOOK_DELETED, "hook_0", OPERATOR, clock.now())

    first = services.audit.list(account.id, PageQuery(limit=4))
    second = services.audit.list(account.id, PageQuery(limit=4, cursor=first.next_cursor))
    targets = [entry.target for entry in first.data + second.data]
    assert targets == ["hook_0", "hook_4", "hook_3", "hook_2", "hook_1", "hook_0"]
    assert second.next_cursor is None

    deleted = services.audit.list(account.id, PageQuery(), action=AuditAction.HOOK_DELETED)
    assert [e.target for e in deleted.data] == ["hook_0"]
    about_hook_0 = services.audit.list(account.id, PageQuery(), target="hook_0")
    assert [e.action for e in about_hook_0.data] == [
        AuditAction.HOOK_DELETED,
        AuditAction.HOOK_CREATED,
    ]
    with pytest.raises(InvalidCursor):
        services.audit.list(account.id, PageQuery(cursor="not-a-cursor"))


def test_an_other_accounts_entries_are_not_listed(services, account, clock) -> None:
    other = services.accounts.create("Other Ltd")
    with services.db.transaction() as session:
        record(
            session, other.id, AuditAction.USER_CREATED, "o@other.example", OPERATOR, clock.now()
        )
    assert services.audit.list(account.id, PageQuery()).data == []


def test_entries_older_than_the_retention_period_are_purged(services, account, clock) -> None:
    with services.db.transaction() as session:
        record(
            session, account.id, AuditAction.USER_CREATED, "old@acme.example", OPERATOR, clock.now()
        )
    clock.advance(days=200)
    with services.db.transaction() as session:
        record(
            session, account.id, AuditAction.USER_CREATED, "new@acme.example", OPERATOR, clock.now()
        )
    clock.advance(days=166)  # the first is 366 days old, past the default 365

    services.audit.housekeeping()

    kept = services.audit.list(account.id, PageQuery()).data
    assert [entry.target for entry in kept] == ["new@acme.example"]


def test_creating_rolling_and_deleting_a_key_are_recorded_with_who_did_it(
    services, account, clock
) -> None:
    key = services.keys.create(account.id, "Zapier", actor=ADA)
    clock.advance(seconds=1)
    services.keys.roll(account.id, key.id, timedelta(hours=1), actor=ADA)
    clock.advance(seconds=1)
    services.keys.delete(account.id, key.id)  # the operator, at the command line

    entries = services.audit.list(account.id, PageQuery(), target=key.id).data
    assert [(e.action, e.actor, e.via, e.detail) for e in entries] == [
        (AuditAction.API_KEY_DELETED, "operator", Via.CLI, {"name": "Zapier"}),
        (AuditAction.API_KEY_ROLLED, ADA.name, Via.PAGE, {"name": "Zapier", "grace_seconds": 3600}),
        (
            AuditAction.API_KEY_CREATED,
            ADA.name,
            Via.PAGE,
            {"name": "Zapier", "permission": "standard"},
        ),
    ]
    assert not any(value in str(entries) for value in (key.value,))


def test_the_retention_period_is_bridge_audit_retention_days(settings, account, clock) -> None:
    short = Services.build(settings.model_copy(update={"audit_retention_days": 30}), clock)
    try:
        with short.db.transaction() as session:
            record(
                session,
                account.id,
                AuditAction.USER_CREATED,
                "a@acme.example",
                OPERATOR,
                clock.now(),
            )
        clock.advance(days=30)
        short.audit.housekeeping()
        assert len(short.audit.list(account.id, PageQuery()).data) == 1
        clock.advance(hours=1, seconds=1)  # past 30 days, and the next purge is due
        short.audit.housekeeping()
        assert short.audit.list(account.id, PageQuery()).data == []
    finally:
        short.close()


def test_entries_of_one_instant_list_in_the_order_recorded(services, account, clock) -> None:
    with services.db.transaction() as session:
        for number in range(20):
            record(
                session,
                account.id,
                AuditAction.HOOK_CREATED,
                f"hook_{number}",
                OPERATOR,
                clock.now(),
            )

    listed = services.audit.list(account.id, PageQuery(limit=7))
    rest = services.audit.list(account.id, PageQuery(limit=20, cursor=listed.next_cursor))

    assert [e.target for e in listed.data + rest.data] == [f"hook_{n}" for n in reversed(range(20))]
