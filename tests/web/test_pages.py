"""The API keys page and signing in, through the Flask client: what the server guarantees whatever
the browser does (the browser tests show what a user sees)."""

from __future__ import annotations

import json
from datetime import timedelta

from pydantic import HttpUrl

from connector.accounts import NewUser, Role
from connector.app import create_app
from connector.clients import Client
from connector.documents import NewDocument
from connector.services import EXTENSION
from connector.templates import TemplateFields
from connector.webhooks.subscriptions import NewHook

from ..conftest import PASSWORD
from ..helpers import key_header
from .conftest import csrf_token

PAGE = "/generate/api-keys"
JSON = {"Accept": "application/json"}


def test_the_page_needs_a_signed_in_user(client) -> None:
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response.headers["Location"] == "/signin?next=/generate/api-keys"


def test_wrong_password_and_unknown_email_get_the_same_answer(client, admin_user) -> None:
    token = csrf_token(client)
    wrong = client.post(
        "/signin", data={"email": admin_user.email, "password": "x" * 12, "csrf_token": token}
    )
    unknown = client.post(
        "/signin", data={"email": "nobody@acme.example", "password": PASSWORD, "csrf_token": token}
    )

    assert wrong.status_code == unknown.status_code == 401
    assert "The email or password is not right." in wrong.text
    assert "The email or password is not right." in unknown.text


def test_failed_sign_ins_are_limited_with_a_clear_message(client, admin_user) -> None:
    token = csrf_token(client)
    attempt = {"email": admin_user.email, "password": "wrong password", "csrf_token": token}
    for _ in range(10):
        assert client.post("/signin", data=attempt).status_code == 401

    limited = client.post("/signin", data=attempt)
    right = client.post("/signin", data={**attempt, "password": PASSWORD})

    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert (
        "Too many failed sign-ins for this email from your network. Try again in 15 minutes"
        in limited.text
    )
    assert right.status_code == 429  # even the right password waits: no guessing through


def test_a_guesser_elsewhere_does_not_lock_the_user_out(app, admin_user) -> None:
    guesser, user = app.test_client(), app.test_client()
    guesser.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    user.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    attempt = {"email": admin_user.email, "password": "wrong password"}
    token = csrf_token(guesser)
    guesses = [guesser.post("/signin", data={**attempt, "csrf_token": token}) for _ in range(11)]
    assert [guess.status_code for guess in guesses] == [401] * 10 + [429]

    signed_in = user.post(
        "/signin", data={**attempt, "password": PASSWORD, "csrf_token": csrf_token(user)}
    )

    assert signed_in.status_code == 302


def test_one_ipv6_network_counts_as_one_address(app, admin_user) -> None:
    """Its owner may use any of its 2^64 addresses: by address alone, 21 of them would reach
    the per-email ceiling and lock the user out from everywhere."""
    attempt = {"email": admin_user.email, "password": "wrong password"}
    answers = []
    for host in range(12):
        guesser = app.test_client()
        guesser.environ_base["REMOTE_ADDR"] = f"2001:db8:0:1::{host + 1:x}"
        answers.append(guesser.post("/signin", data={**attempt, "csrf_token": csrf_token(guesser)}))
    user = app.test_client()
    user.environ_base["REMOTE_ADDR"] = "198.51.100.7"

    signed_in = user.post(
        "/signin", data={**attempt, "password": PASSWORD, "csrf_token": csrf_token(user)}
    )

    assert [answer.status_code for answer in answers] == [401] * 10 + [429] * 2
    assert signed_in.status_code == 302


def test_workers_without_redis_count_failed_sign_ins_together(settings, admin_user) -> None:
    """Two processes (here two apps) of one machine share one count of failures."""
    workers = [create_app(settings) for _ in range(2)]
    clients = [worker.test_client() for worker in workers]
    attempt = {"email": admin_user.email, "password": "wrong password"}
    try:
        answers = [
            client.post("/signin", data={**attempt, "csrf_token": csrf_token(client)}).status_code
            for client in clients * 6
        ]
    finally:
        for worker in workers:
            worker.extensions[EXTENSION].close()

    assert answers == [401] * 10 + [429] * 2


def test_session_cookie_is_httponly_and_lax(client, admin_user) -> None:
    response = client.post(
        "/signin",
        data={"email": admin_user.email, "password": PASSWORD, "csrf_token": csrf_token(client)},
    )

    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # served over http here; https deployments set it


def test_sign_in_goes_back_only_to_this_site(client, admin_user) -> None:
    token = csrf_token(client)
    response = client.post(
        "/signin",
        data={
            "email": admin_user.email,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/steal",
        },
    )

    assert response.headers["Location"] == PAGE


def test_a_sign_in_link_whose_next_holds_a_line_break_goes_to_the_keys_page(
    client, admin_user
) -> None:
    form = client.get("/signin?next=/generate/api-keys%0D%0ASet-Cookie:%20planted=1")

    assert form.status_code == 200
    assert 'name="next" value="/generate/api-keys"' in form.text


def test_state_changes_without_the_csrf_token_are_refused(sign_in, admin_user, services, account):
    client = sign_in(admin_user)

    response = client.post(PAGE, data={"name": "Sneaky"}, headers=JSON)
    sign_out = client.post("/signout")

    assert response.status_code == 400
    assert response.json["error"]["code"] == "csrf_invalid"
    assert sign_out.status_code == 400
    assert services.keys.list(account.id) == []


def test_create_answers_the_value_once(sign_in, admin_user, services, account) -> None:
    client = sign_in(admin_user)
    token = csrf_token(client, PAGE)

    created = client.post(
        PAGE, data={"name": "Zapier production", "csrf_token": token}, headers=JSON
    )
    page = client.get(PAGE)

    assert created.status_code == 200
    value = created.json["value"]
    assert created.json["name"] == "Zapier production"
    assert "Zapier production" in created.json["rows"]
    assert value.startswith("tt_live_") and value not in page.text
    assert value[-4:] in page.text  # the hint, tt_live_…abcd
    assert created.headers["Cache-Control"] == "no-store"
    assert value not in json.dumps(dict(client.get_cookie("bridge_session").__dict__), default=str)
    assert client.get("/v1/me", headers=key_header(value)).status_code == 200


def test_without_javascript_the_forms_still_work(sign_in, admin_user) -> None:
    client = sign_in(admin_user)
    token = csrf_token(client, PAGE)

    created = client.post(PAGE, data={"name": "Plain form", "csrf_token": token})

    assert created.status_code == 200
    assert "Created the key &#39;Plain form&#39;." in created.text
    assert 'id="secret-value" readonly value="tt_live_' in created.text


def test_bad_names_and_duplicates_say_what_to_fix(sign_in, admin_user, services, account):
    services.keys.create(account.id, "Zapier production")
    client = sign_in(admin_user)
    token = csrf_token(client, PAGE)

    blank = client.post(PAGE, data={"name": "  ", "csrf_token": token}, headers=JSON)
    taken = client.post(PAGE, data={"name": "zapier PRODUCTION", "csrf_token": token}, headers=JSON)

    assert blank.status_code == 400 and blank.json["message"].startswith("Name:")
    invisible = client.post(PAGE, data={"name": "\u200b", "csrf_token": token}, headers=JSON)
    assert invisible.status_code == 400
    assert invisible.json["message"] == (
        "Name: Remove the control or invisible characters (U+200B): a name holds none."
    )
    assert taken.status_code == 409 and "already" in taken.json["message"]


def test_roll_with_grace_shows_until_when_the_old_value_works(
    sign_in, admin_user, services, clock, account
) -> None:
    key = services.keys.create(account.id, "n8n production")
    client = sign_in(admin_user)
    token = csrf_token(client, PAGE)

    rolled = client.post(
        f"{PAGE}/{key.id}/roll", data={"grace": "86400", "csrf_token": token}, headers=JSON
    )

    assert rolled.status_code == 200
    assert rolled.json["message"] == (
        "Rolled the key 'n8n production': its old value stops working on 2026-11-21 10:03 UTC."
    )
    assert "Active · old value works until 2026-11-21 10:03 UTC" in rolled.json["rows"]
    assert rolled.json["value"] != key.value
    assert client.get("/v1/me", headers=key_header(key.value)).status_code == 200


def test_roll_refuses_an_unknown_grace(sign_in, admin_user, services, account) -> None:
    key = services.keys.create(account.id, "n8n production")
    client = sign_in(admin_user)

    response = client.post(
        f"{PAGE}/{key.id}/roll",
        data={"grace": "31536000", "csrf_token": csrf_token(client, PAGE)},
        headers=JSON,
    )

    assert response.status_code == 400
    assert services.keys.get(account.id, key.id).rolled_at is None


def test_delete_and_the_old_value_still_in_use(
    sign_in, admin_user, services, clock, account, client
) -> None:
    key = services.keys.create(account.id, "Zapier production")
    services.keys.roll(None, key.id)
    client.get("/zapier/me", headers=key_header(key.value, "Zapier"))
    client.get("/zapier/me", headers=key_header(key.value, "Zapier"))
    services.usage.flush()
    page = sign_in(admin_user)
    token = csrf_token(page, PAGE)

    before = page.get(PAGE).text
    deleted = page.post(f"{PAGE}/{key.id}/delete", data={"csrf_token": token}, headers=JSON)

    assert "Zapier: 2 calls with tt_live_…" in before and "(rolled), last 2026-11-20" in before
    assert deleted.json["message"] == "Deleted the key 'Zapier production'."
    # Still listed, as deleted, because something still calls with its old value.
    assert "Deleted on 2026-11-20 10:03 UTC" in deleted.json["rows"]
    assert f"roll-{key.id}" not in deleted.json["rows"]


def test_editors_see_no_controls_and_are_refused(sign_in, editor_user, services, account):
    key = services.keys.create(account.id, "Zapier production")
    client = sign_in(editor_user)
    page = client.get(PAGE).text
    token = csrf_token(client, PAGE)

    create = client.post(PAGE, data={"name": "Mine", "csrf_token": token}, headers=JSON)
    roll = client.post(f"{PAGE}/{key.id}/roll", data={"csrf_token": token}, headers=JSON)
    delete = client.post(f"{PAGE}/{key.id}/delete", data={"csrf_token": token})

    assert "Zapier production" in page
    assert "Create key" not in page and "data-open" not in page
    assert create.status_code == roll.status_code == delete.status_code == 403
    assert "Only admins can create, roll or delete API keys" in delete.text
    assert [k.name for k in services.keys.list(account.id)] == ["Zapier production"]
    assert services.keys.get(account.id, key.id).rolled_at is None


def test_names_are_text_and_the_page_has_a_csp(sign_in, admin_user, services, account):
    services.keys.create(account.id, "<script>alert(1)</script>")
    client = sign_in(admin_user)

    response = client.get(PAGE)

    assert "<script>alert(1)</script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy


def test_integrations_show_platform_event_host_key_and_last_delivery(
    sign_in, admin_user, services, account, receiver
) -> None:
    key = services.keys.create(account.id, "Zapier production")
    services.hooks.create(
        account.id,
        key.id,
        NewHook(target_url=receiver.url + "/hooks/catch/123/secret", events=["document.created"]),
        "zapier",
    )
    template = services.templates.create(account.id, TemplateFields(name="Invoice", body="n"))
    services.documents.create(account.id, NewDocument(template_id=template.id), Client.ZAPIER)
    services.delivery.run_once()
    client = sign_in(admin_user)

    page = client.get(PAGE).text

    section = page[page.index('id="integrations-title"') :]
    assert "Zapier" in section and "document.created" in section
    assert "127.0.0.1" in section and "/hooks/catch/123/secret" not in section
    assert "Zapier production" in section
    assert "200 · 2026-11-20 10:03 UTC" in section and "Active" in section


def test_empty_states(sign_in, admin_user) -> None:
    page = sign_in(admin_user).get(PAGE).text

    assert "No keys yet. Create one for each integration" in page
    assert "No integrations yet." in page


def test_signing_out_ends_the_session(sign_in, admin_user) -> None:
    client = sign_in(admin_user)

    client.post("/signout", data={"csrf_token": csrf_token(client, PAGE)})

    assert client.get(PAGE).status_code == 302


def test_signing_out_ends_every_session_of_the_user_a_copied_cookie_too(
    app, sign_in, admin_user, editor_user
) -> None:
    laptop, phone, colleague = sign_in(admin_user), sign_in(admin_user), sign_in(editor_user)
    copy = app.test_client()
    copy.set_cookie("bridge_session", laptop.get_cookie("bridge_session").value)
    assert copy.get(PAGE).status_code == 200

    laptop.post("/signout", data={"csrf_token": csrf_token(laptop, PAGE)})

    assert copy.get(PAGE).status_code == 302
    assert phone.get(PAGE).status_code == 302
    assert colleague.get(PAGE).status_code == 200  # another user's session is untouched
    assert sign_in(admin_user).get(PAGE).status_code == 200  # and signing in again works


def test_a_grace_period_with_time_left_and_one_past(
    sign_in, admin_user, services, clock, account
) -> None:
    key = services.keys.create(account.id, "n8n production")
    services.keys.roll(None, key.id, timedelta(hours=1))
    client = sign_in(admin_user)
    assert "old value works until 2026-11-20 11:03 UTC" in client.get(PAGE).text

    clock.advance(hours=2)

    assert "old value works until" not in client.get(PAGE).text


def test_session_cookie_is_secure_when_served_over_https(settings, clock, account) -> None:
    https = settings.model_copy(update={"public_url": HttpUrl("https://bridge.example.com")})
    app = create_app(https, clock=clock)
    services = app.extensions["templateto"]
    user = services.accounts.add_user(
        account.id, NewUser(email="ada@acme.example", password=PASSWORD, role=Role.ADMIN)
    )
    client = app.test_client()

    response = client.post(
        "/signin",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)},
    )

    assert "Secure" in response.headers["Set-Cookie"]
    services.close()


def test_the_page_never_says_a_value_works_when_it_does_not(
    sign_in, admin_user, services, clock, account, client
) -> None:
    key = services.keys.create(account.id, "Zapier production")
    services.keys.roll(None, key.id, timedelta(hours=1))
    client.get("/zapier/me", headers=key_header(key.value, "Zapier"))
    services.usage.flush()
    page = sign_in(admin_user)

    during = page.get(PAGE).text
    clock.advance(hours=1)
    ended = page.get(PAGE).text
    services.keys.roll(None, key.id)  # a second roll, then a delete: still not working
    services.keys.delete(None, key.id)
    deleted = page.get(PAGE).text

    assert "(in its grace period: works until 2026-11-20 11:03 UTC)" in during
    for later in (ended, deleted):
        assert "(during its grace period; it no longer works)" in later
        assert "works until" not in later
