"""Leak response: GitHub's signed secret scanning matches and `scan --report`'s digests mark a
working key value leaked, record one `api_key.leaked` event, and roll the key when the account's
key policy says `on_leak: roll`; anything unsigned, unknown or no longer working changes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from connector import keys
from connector.app import create_app
from connector.audit import Actor, Via
from connector.clock import iso
from connector.config import Settings
from connector.events import EventType
from connector.leaks import LeakSource, LeakStatus
from connector.paging import PageQuery
from connector.services import EXTENSION

from ..helpers import github_matches as matches
from ..helpers import key_header, signed_by_github, write_github_keys

GITHUB_PATH = "/v1/secret-scanning/github"


@pytest.fixture
def github_signer() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def keys_file(tmp_path: Path, github_signer) -> Path:
    path = tmp_path / "github-secret-scanning-keys.json"
    write_github_keys(path, {"github-key-1": github_signer})
    return path


@pytest.fixture
def settings(settings: Settings, keys_file: Path) -> Settings:
    return settings.model_copy(update={"github_secret_scanning_keys": keys_file})


@pytest.fixture
def report(client, github_signer):
    def send(*tokens: str, url: str = "https://github.com/acme/app/blob/abc/settings.py#L2"):
        body = matches(*tokens, url=url)
        return client.post(
            GITHUB_PATH, data=body, headers=signed_by_github(body, github_signer, "github-key-1")
        )

    return send


def key_json(client, admin_key, key_id: str) -> dict:
    listed = client.get("/v1/api-keys", headers=key_header(admin_key.value)).json["data"]
    return next(key for key in listed if key["id"] == key_id)


def leak_events(client, admin_key) -> list[dict]:
    events = client.get("/v1/events?type=api_key.leaked", headers=key_header(admin_key.value))
    return events.json["data"]


def set_on_leak(client, admin_key, on_leak: str) -> None:
    answer = client.put(
        "/v1/key-policy", json={"on_leak": on_leak}, headers=key_header(admin_key.value)
    )
    assert answer.status_code == 200, answer.json


def test_each_token_is_labelled_true_only_while_its_value_works(
    report, services, account, admin_key, clock
) -> None:
    in_grace = services.keys.create(account.id, "Grace")
    services.keys.roll(None, in_grace.id, timedelta(hours=1))
    rolled_away = services.keys.create(account.id, "Rolled")
    services.keys.roll(None, rolled_away.id)
    deleted = services.keys.create(account.id, "Deleted")
    services.keys.delete(None, deleted.id)
    never_issued = keys.generate()
    mistyped = admin_key.value[:-1] + ("A" if admin_key.value[-1] != "A" else "B")
    tokens = [
        admin_key.value,
        in_grace.value,
        rolled_away.value,
        deleted.value,
        never_issued,
        mistyped,
        "ghp_notoursatall",
    ]

    answer = report(*tokens)

    assert answer.status_code == 200
    assert answer.json == [
        {"token_hash": keys.fingerprint(token), "token_type": "templateto_api_key", "label": label}
        for token, label in zip(
            tokens,
            ["true_positive", "true_positive"] + ["false_positive"] * 5,
            strict=True,
        )
    ]


def test_a_leak_marks_the_key_and_records_one_event_without_the_value(
    report, client, services, account, admin_key
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    url = "https://github.com/acme/app/blob/abc/settings.py#L2"

    first = report(zap.value, url=url)
    again = report(zap.value, url=url)

    assert first.json[0]["label"] == again.json[0]["label"] == "true_positive"
    listed = key_json(client, admin_key, zap.id)
    assert listed["leaked_at"] is not None and listed["leak_url"] == url
    [event] = leak_events(client, admin_key)
    assert event["data"]["id"] == zap.id
    assert event["data"]["name"] == "Zapier staging"
    assert event["data"]["hint"] == zap.hint
    assert event["data"]["url"] == url
    assert event["data"]["on_leak"] == "notify"
    assert event["data"]["source"] == "github" and event["data"]["leaked_at"] is not None
    assert zap.value not in json.dumps(event)
    # notify: the key keeps working
    assert client.get("/v1/me", headers=key_header(zap.value)).status_code == 200
    entries = services.audit.list(account.id, _page()).data
    leaked = [e for e in entries if e.action == "api_key.leaked"]
    assert [(e.target, e.actor, e.via) for e in leaked] == [
        (zap.id, "GitHub secret scanning", "api")
    ]


def test_each_leaked_value_of_a_key_is_its_own_leak(
    report, client, services, account, admin_key, clock
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    clock.advance(minutes=1)
    rolled = services.keys.roll(account.id, zap.id, timedelta(days=7))
    clock.advance(minutes=1)
    # The old value (still in its grace period) is found first, then the new one elsewhere.
    report(zap.value, url="https://github.com/acme/old/blob/a/settings.py#L2")
    clock.advance(minutes=1)
    new_url = "https://github.com/acme/new/blob/b/settings.py#L9"
    again = report(rolled.value, url=new_url)
    repeated = report(rolled.value, url=new_url)

    assert again.json[0]["label"] == repeated.json[0]["label"] == "true_positive"
    hints = [event["data"]["hint"] for event in leak_events(client, admin_key)]
    assert sorted(hints) == sorted([zap.hint, rolled.hint])
    listed = key_json(client, admin_key, zap.id)
    assert listed["leak_url"] == new_url and listed["leaked_at"] == iso(clock.now())


def _page() -> PageQuery:
    return PageQuery()


@contextmanager
def app_with(settings: Settings, clock, **overrides: object) -> Iterator[FlaskClient]:
    """A second app on the same database, with other settings."""
    application = create_app(settings.model_copy(update=overrides), clock=clock)
    try:
        yield application.test_client()
    finally:
        application.extensions[EXTENSION].close()


def test_on_leak_roll_rolls_the_key_at_once_once_and_records_the_leak_response(
    report, client, services, account, admin_key
) -> None:
    set_on_leak(client, admin_key, "roll")
    zap = services.keys.create(account.id, "Zapier staging")

    first = report(zap.value)
    again = report(zap.value, zap.value)

    assert first.json[0]["label"] == "true_positive"
    # Rolled away with no grace period: the value no longer works, so it is no leak any more.
    assert [match["label"] for match in again.json] == ["false_positive", "false_positive"]
    refused = client.get("/v1/me", headers=key_header(zap.value))
    assert refused.status_code == 401 and refused.json["error"]["code"] == "api_key_rolled"
    events = client.get("/v1/events", headers=key_header(admin_key.value)).json["data"]
    about_zap = [e["type"] for e in events if e["data"]["id"] == zap.id]
    # One of each (at the same moment of the test's clock: listed in any order).
    assert sorted(about_zap) == ["api_key.created", "api_key.leaked", "api_key.rolled"]
    rolls = [
        (e.actor, e.via)
        for e in services.audit.list(account.id, _page()).data
        if e.action == "api_key.rolled"
    ]
    assert rolls == [("GitHub secret scanning", "leak_response")]


def test_a_token_found_twice_in_one_request_is_one_leak_labelled_alike(
    report, client, services, account, admin_key
) -> None:
    set_on_leak(client, admin_key, "roll")
    zap = services.keys.create(account.id, "Zapier staging")

    answer = report(zap.value, zap.value)

    assert [match["label"] for match in answer.json] == ["true_positive", "true_positive"]
    assert len(leak_events(client, admin_key)) == 1


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "signature_missing"),
        ({"Github-Public-Key-Identifier": "github-key-1"}, "signature_missing"),
        (
            {"Github-Public-Key-Identifier": "other", "Github-Public-Key-Signature": "AAAA"},
            "signature_key_unknown",
        ),
        (
            {"Github-Public-Key-Identifier": "github-key-1", "Github-Public-Key-Signature": "%%"},
            "signature_invalid",
        ),
        (
            {"Github-Public-Key-Identifier": "github-key-1", "Github-Public-Key-Signature": "AAAA"},
            "signature_invalid",
        ),
    ],
)
def test_an_unsigned_or_badly_signed_report_is_refused_and_records_nothing(
    client, services, account, admin_key, headers, code
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")

    refused = client.post(GITHUB_PATH, data=matches(zap.value), headers=headers)

    assert refused.status_code == 401
    assert refused.json["error"]["code"] == code
    assert key_json(client, admin_key, zap.id)["leaked_at"] is None
    assert leak_events(client, admin_key) == []


def test_a_body_signed_by_another_key_or_changed_after_signing_is_refused(
    client, services, account, admin_key, github_signer
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    body = matches(zap.value)
    impostor = ec.generate_private_key(ec.SECP256R1())

    forged = client.post(
        GITHUB_PATH, data=body, headers=signed_by_github(body, impostor, "github-key-1")
    )
    changed = client.post(
        GITHUB_PATH,
        data=matches(zap.value, url="https://evil.example"),
        headers=signed_by_github(body, github_signer, "github-key-1"),
    )

    assert forged.status_code == changed.status_code == 401
    assert forged.json["error"]["code"] == changed.json["error"]["code"] == "signature_invalid"
    assert key_json(client, admin_key, zap.id)["leaked_at"] is None


def test_without_a_keys_file_every_report_is_refused(settings, clock, services, account) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    signer = ec.generate_private_key(ec.SECP256R1())
    body = matches(zap.value)

    with app_with(settings, clock, github_secret_scanning_keys=None) as unconfigured:
        refused = unconfigured.post(
            GITHUB_PATH, data=body, headers=signed_by_github(body, signer, "k")
        )

    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "secret_scanning_not_configured"


def test_a_refreshed_keys_file_is_read_without_a_restart_and_a_broken_one_is_a_503(
    client, keys_file, services, account
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    body = matches(zap.value)
    newer = ec.generate_private_key(ec.SECP256R1())
    write_github_keys(keys_file, {"github-key-2": newer})

    accepted = client.post(
        GITHUB_PATH, data=body, headers=signed_by_github(body, newer, "github-key-2")
    )
    keys_file.write_text("<html>rate limited</html>")
    broken = client.post(
        GITHUB_PATH, data=body, headers=signed_by_github(body, newer, "github-key-2")
    )

    assert accepted.status_code == 200
    assert broken.status_code == 503
    assert broken.json["error"]["code"] == "secret_scanning_keys_unavailable"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"[{", 400, "malformed_json"),
        (b"\xff\xfe[]", 400, "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "malformed_json"),
        (b'{"token": "x"}', 422, "validation_failed"),
        (b'[{"type": "templateto_api_key"}]', 422, "validation_failed"),
        (b'[{"token": 5, "type": "t"}]', 422, "validation_failed"),
        (json.dumps([{"token": "t", "type": "t"}] * 1001).encode(), 422, "validation_failed"),
        (b"[" + b" " * 1_000_000 + b"]", 413, "payload_too_large"),
    ],
)
def test_a_signed_body_of_the_wrong_shape_is_a_clear_4xx(
    client, github_signer, body, status, code
) -> None:
    answer = client.post(
        GITHUB_PATH, data=body, headers=signed_by_github(body, github_signer, "github-key-1")
    )

    assert answer.status_code == status
    assert answer.json["error"]["code"] == code


def test_bad_signatures_are_not_counted_as_failed_key_authentications(
    settings, clock, admin_key
) -> None:
    """With a limit of 2 refused keys per address, 5 refused signatures from the address leave
    a key never used before from it working, and no refusal in the metrics."""
    with app_with(settings, clock, failed_auth_limit_per_address="2/minute") as limited:
        for _ in range(5):
            refused = limited.post(GITHUB_PATH, data=b"[]", headers={"X-Api-Key": "tt_live_x"})
            assert refused.status_code == 401

        assert limited.get("/v1/me", headers=key_header(admin_key.value)).status_code == 200
        metrics = limited.get("/metrics").get_data(as_text=True)
    assert 'result="api_key_malformed"' not in metrics


def test_scan_reports_mark_only_the_callers_keys_by_digest(
    client, services, account, admin_key
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    other_account = services.accounts.create("Other Ltd")
    theirs = services.keys.create(other_account.id, "Theirs")
    old = services.keys.create(account.id, "Old")
    services.keys.roll(None, old.id)
    leaks = [
        {"sha256": keys.fingerprint(zap.value), "location": "settings.py:2"},
        {"sha256": keys.fingerprint(theirs.value), "location": "a.env:1"},
        {"sha256": keys.fingerprint(old.value), "location": "old.env:3"},
        {"sha256": "0" * 64, "location": "b.env:1"},
    ]

    answer = client.post(
        "/v1/api-keys/leaks", json={"leaks": leaks}, headers=key_header(admin_key.value)
    )

    assert answer.status_code == 200
    assert [(r["location"], r["status"], r["key_id"]) for r in answer.json["data"]] == [
        ("settings.py:2", "leaked", zap.id),
        ("a.env:1", "not_found", None),
        ("old.env:3", "not_working", old.id),
        ("b.env:1", "not_found", None),
    ]
    assert key_json(client, admin_key, zap.id)["leak_url"] == "settings.py:2"
    assert services.keys.get(None, theirs.id).leaked_at is None
    [event] = leak_events(client, admin_key)
    assert event["data"]["source"] == "scan"
    again = client.post(
        "/v1/api-keys/leaks", json={"leaks": leaks[:1]}, headers=key_header(admin_key.value)
    )
    assert [(r["status"], r["hint"]) for r in again.json["data"]] == [("already_leaked", zap.hint)]
    assert len(leak_events(client, admin_key)) == 1
    actors = {
        e.actor
        for e in services.audit.list(account.id, _page()).data
        if e.action == "api_key.leaked"
    }
    assert actors == {admin_key.hint}


def test_scan_reports_need_an_admin_key_and_digests_never_values(
    client, services, account, admin_key, standard_key
) -> None:
    by_standard = client.post(
        "/v1/api-keys/leaks",
        json={"leaks": [{"sha256": "0" * 64, "location": "x:1"}]},
        headers=key_header(standard_key.value),
    )
    with_a_value = client.post(
        "/v1/api-keys/leaks",
        json={"leaks": [{"sha256": admin_key.value, "location": "x:1"}]},
        headers=key_header(admin_key.value),
    )

    assert by_standard.status_code == 403
    assert with_a_value.status_code == 422
    assert admin_key.value not in with_a_value.get_data(as_text=True)


def test_a_key_value_in_a_reported_location_is_neither_kept_nor_echoed(
    client, admin_key, standard_key
) -> None:
    # A file named after a value it holds: the location names it too.
    location = f"secrets/{standard_key.value}.env:1"
    leak = {"sha256": keys.fingerprint(standard_key.value), "location": location}

    answer = client.post(
        "/v1/api-keys/leaks", json={"leaks": [leak]}, headers=key_header(admin_key.value)
    )

    assert answer.status_code == 200
    assert standard_key.value not in answer.get_data(as_text=True)
    assert answer.json["data"][0]["location"] == "secrets/tt_live_[redacted].env:1"
    assert (
        key_json(client, admin_key, standard_key.id)["leak_url"]
        == answer.json["data"][0]["location"]
    )


def test_reports_of_one_value_at_the_same_moment_mark_and_roll_it_once(
    client, services, account, admin_key
) -> None:
    set_on_leak(client, admin_key, "roll")
    zap = services.keys.create(account.id, "Zapier staging")
    reporters = 4
    start = threading.Barrier(reporters)
    github = Actor("GitHub secret scanning", Via.API)

    def report(_: int) -> LeakStatus:
        start.wait()
        digest = keys.fingerprint(zap.value)
        return services.leaks.report(
            digest, "https://github.com/x", LeakSource.GITHUB, github
        ).status

    with ThreadPoolExecutor(reporters) as pool:
        statuses = list(pool.map(report, range(reporters)))

    assert statuses.count(LeakStatus.LEAKED) == 1
    assert len(leak_events(client, admin_key)) == 1
    rolls = services.events.list(account.id, _page(), EventType.API_KEY_ROLLED).data
    assert [event.data["id"] for event in rolls] == [zap.id]


def test_control_characters_and_lone_surrogates_in_a_signed_body_are_answered_not_500(
    client, services, account, admin_key, github_signer
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    with_nul = json.dumps(
        [
            {"token": zap.value, "type": "templateto_api_key", "url": "https://x/\u0000"},
            {"token": "\u0000", "type": "templateto_api_key"},
        ]
    ).encode()
    with_surrogate = json.dumps([{"token": "\ud800", "type": "templateto_api_key"}]).encode()

    answers = [
        client.post(
            GITHUB_PATH, data=body, headers=signed_by_github(body, github_signer, "github-key-1")
        )
        for body in (with_nul, with_surrogate)
    ]

    assert answers[0].status_code == 200
    assert [match["label"] for match in answers[0].json] == ["true_positive", "false_positive"]
    assert key_json(client, admin_key, zap.id)["leak_url"] == "https://x/?"
    assert answers[1].status_code == 422
    assert answers[1].json["error"]["code"] == "validation_failed"


# A trigger that refuses every new key value, as a full disk would: a roll fails part-way.
NO_NEW_VALUES = {
    "sqlite": [
        "CREATE TRIGGER no_new_values BEFORE INSERT ON api_key_values "
        "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION refuse_values() RETURNS trigger AS "
        "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER no_new_values BEFORE INSERT ON api_key_values "
        "FOR EACH ROW EXECUTE FUNCTION refuse_values()",
    ],
}
DROP_ON = {"sqlite": "", "postgresql": " ON api_key_values"}


def test_a_leak_is_marked_only_with_the_roll_its_policy_asks_for(
    client, services, account, admin_key
) -> None:
    set_on_leak(client, admin_key, "roll")
    zap = services.keys.create(account.id, "Zapier staging")
    github = Actor("GitHub secret scanning", Via.API)
    digest = keys.fingerprint(zap.value)
    # A real storage failure part-way: no new value can be written, so the roll fails.
    with services.db.engine.begin() as connection:
        for statement in NO_NEW_VALUES[services.db.dialect]:
            connection.execute(text(statement))
    with pytest.raises(SQLAlchemyError):
        services.leaks.report(digest, "https://github.com/x", LeakSource.GITHUB, github)
    with services.db.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER no_new_values" + DROP_ON[services.db.dialect]))

    # GitHub sends the match again: the leak, not yet responded to, is responded to now.
    again = services.leaks.report(digest, "https://github.com/x", LeakSource.GITHUB, github)

    assert (again.status, again.rolled) == (LeakStatus.LEAKED, True)
    assert client.get("/v1/api-keys", headers=key_header(zap.value)).status_code == 401
    assert len(leak_events(client, admin_key)) == 1


def test_a_leaked_value_is_not_kept_working_by_a_grace_period(
    report, client, services, account, admin_key
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    report(zap.value)  # on_leak: notify, so the key is only marked
    roll = f"/v1/api-keys/{zap.id}/roll"
    admin = key_header(admin_key.value)
    assert key_json(client, admin_key, zap.id)["value_leaked"] is True

    refused = client.post(roll, json={"grace_seconds": 3600}, headers=admin)

    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "leaked_value_grace_refused"
    assert "must stop working at once" in refused.json["error"]["message"]
    assert client.get("/v1/me", headers=key_header(zap.value)).status_code == 200  # not rolled
    rolled = client.post(roll, headers=admin)
    assert rolled.status_code == 200 and rolled.json["value_leaked"] is False
    assert client.get("/v1/me", headers=key_header(zap.value)).status_code == 401
    # The new value was never leaked: rolling it again may keep it working a while.
    assert client.post(roll, json={"grace_seconds": 3600}, headers=admin).status_code == 200
