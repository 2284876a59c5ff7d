"""The API keys page tells the account's admins of a leaked key until it is rolled (and for a
week after), and editors not at all."""

from __future__ import annotations

from connector import keys
from connector.audit import Actor, Via
from connector.leaks import LeakSource

from .conftest import csrf_token

PAGE = "/generate/api-keys"
WHERE = "https://github.com/acme/app/blob/abc/settings.py#L2"
GITHUB = Actor("GitHub secret scanning", Via.API)


def test_admins_see_a_leaked_key_until_it_is_rolled_and_a_week_after(
    services, account, admin_user, editor_user, sign_in, clock
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    quiet = services.keys.create(account.id, "Quiet")
    services.leaks.report(keys.fingerprint(zap.value), WHERE, LeakSource.GITHUB, GITHUB)
    admin, editor = sign_in(admin_user), sign_in(editor_user)

    leaked = admin.get(PAGE).text

    assert "<strong>Zapier staging</strong> (" + zap.hint + ") was found in public" in leaked
    assert WHERE in leaked and "Roll it now" in leaked
    assert "<strong>Quiet</strong>" not in leaked and quiet.value not in leaked
    assert "found in public" not in editor.get(PAGE).text

    clock.advance(minutes=5)
    services.keys.roll(None, zap.id)
    rolled = admin.get(PAGE).text
    clock.advance(days=7)
    week_later = admin.get(PAGE).text

    assert "the leaked value no longer works" in rolled and "Roll it now" not in rolled
    assert "found in public" not in week_later


def test_the_roll_dialog_of_a_leaked_key_offers_no_grace_period_and_says_why(
    services, account, admin_user, sign_in
) -> None:
    zap = services.keys.create(account.id, "Zapier staging")
    quiet = services.keys.create(account.id, "Quiet")
    services.leaks.report(keys.fingerprint(zap.value), WHERE, LeakSource.GITHUB, GITHUB)
    admin = sign_in(admin_user)

    page = admin.get(PAGE).text
    leaked_dialog = page[page.index(f'id="roll-{zap.id}"') :].split("</dialog>")[0]
    quiet_dialog = page[page.index(f'id="roll-{quiet.id}"') :].split("</dialog>")[0]

    assert 'name="grace" value="3600"' not in leaked_dialog
    assert 'type="hidden" name="grace" value="0"' in leaked_dialog
    assert "was reported leaked, so it stops working at once:</strong> no" in leaked_dialog
    assert 'name="grace" value="3600"' in quiet_dialog and "reported leaked" not in quiet_dialog
    kept_alive = admin.post(
        f"{PAGE}/{zap.id}/roll",
        data={"grace": "3600", "csrf_token": csrf_token(admin, PAGE)},
        headers={"Accept": "application/json"},
    )
    assert kept_alive.status_code == 422
    assert kept_alive.json["error"]["code"] == "leaked_value_grace_refused"
