"""The API keys page's rotation and audit parts: each key's age and rotate-by time with due and
overdue marked, the key policy form (admins) or summary (editors), and the audit log (admins)."""

from __future__ import annotations

from datetime import timedelta

from connector.key_policy import KeyPolicyChange, OnLeak

from .conftest import csrf_token

PAGE = "/generate/api-keys"


def row_of(page: str, key_id: str) -> str:
    return page.split(f'id="row-{key_id}"', 1)[1].split("</tr>", 1)[0]


def test_each_key_shows_its_age_and_rotate_by_with_due_and_overdue_marked(
    sign_in, admin_user, services, account, clock
) -> None:
    services.key_policies.change(account.id, KeyPolicyChange(max_age_days=30))
    fresh = services.keys.create(account.id, "Fresh")
    due = services.keys.create(account.id, "Due soon")
    late = services.keys.create(account.id, "Late")
    services.keys.set_rotate_by(account.id, due.id, clock.now() + timedelta(days=20, hours=3))
    services.keys.set_rotate_by(account.id, late.id, clock.now() + timedelta(days=10))
    clock.advance(days=16)

    page = sign_in(admin_user).get(PAGE).text

    assert "16 days" in row_of(page, fresh.id)
    assert "2026-12-20 10:03 UTC" in row_of(page, fresh.id)  # created 2026-11-20 + 30 days
    assert "badge" not in row_of(page, fresh.id)
    assert '<strong class="badge due">Due</strong>' in row_of(page, due.id)
    assert '<strong class="badge overdue">Overdue</strong>' in row_of(page, late.id)
    services.keys.roll(account.id, late.id)
    rolled_row = row_of(sign_in(admin_user).get(PAGE).text, late.id)
    assert "today (since its last roll)" in rolled_row and "badge" not in rolled_row


def test_an_admin_saves_the_policy_from_the_page(sign_in, admin_user, services, account) -> None:
    browser = sign_in(admin_user)
    token = csrf_token(browser, PAGE)

    saved = browser.post(
        f"{PAGE}/policy", data={"max_age_days": "90", "on_leak": "roll", "csrf_token": token}
    )
    refused = browser.post(
        f"{PAGE}/policy", data={"max_age_days": "0", "on_leak": "roll", "csrf_token": token}
    )
    words = browser.post(
        f"{PAGE}/policy", data={"max_age_days": "ninety", "on_leak": "roll", "csrf_token": token}
    )

    assert saved.status_code == 200
    assert "Saved the key policy: 90 days; on a leak: roll." in saved.text
    assert 'value="90"' in saved.text
    assert refused.status_code == 400 and words.status_code == 400
    assert "whole number of days from 1 to 3650" in refused.text
    policy = services.key_policies.get(account.id)
    assert (policy.max_age_days, policy.on_leak) == (90, OnLeak.ROLL)
    cleared = browser.post(
        f"{PAGE}/policy", data={"max_age_days": "", "on_leak": "notify", "csrf_token": token}
    )
    assert "no maximum age; on a leak: notify" in cleared.text
    assert services.key_policies.get(account.id).max_age_days is None


def test_editors_see_the_policy_but_neither_its_form_nor_the_audit_log(
    sign_in, editor_user, services, account
) -> None:
    services.key_policies.change(account.id, KeyPolicyChange(max_age_days=45))
    browser = sign_in(editor_user)

    page = browser.get(PAGE).text
    refused = browser.post(
        f"{PAGE}/policy",
        data={"max_age_days": "1", "csrf_token": csrf_token(browser, PAGE)},
        headers={"Accept": "application/json"},
    )

    assert "Maximum key age: 45 days." in page
    assert 'name="max_age_days"' not in page
    assert "Audit log" not in page
    assert refused.status_code == 403
    assert services.key_policies.get(account.id).max_age_days == 45


def test_admins_see_the_audit_log_newest_first_with_who_and_from_where(
    sign_in, admin_user, services, account, clock
) -> None:
    browser = sign_in(admin_user)
    clock.advance(minutes=1)
    browser.post(
        PAGE,
        data={"name": "From the page", "csrf_token": csrf_token(browser, PAGE)},
        headers={"User-Agent": "Firefox"},
    )

    page = browser.get(PAGE).text
    log = page.split('id="audit-log"', 1)[1].split("</table>", 1)[0]

    [newest, *older] = log.split("<tr>")[2:]
    assert "api_key.created" in newest and "From the page" in newest
    assert admin_user.email in newest and "page" in newest and "127.0.0.1" in newest
    assert any("user.sign_in_succeeded" in row for row in older)
