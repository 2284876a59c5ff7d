"""The API keys page in a real browser: Playwright driving Debian's Chromium against a live
``templateto-bridge serve`` on 127.0.0.1. Screenshots of the page's states go to
``$BRIDGE_SCREENSHOTS_DIR`` when set (docs/screenshots holds the committed ones)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ..conftest import PASSWORD
from ..helpers import key_header

CHROMIUM = Path("/usr/bin/chromium")
PAGE = "/generate/api-keys"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="Chromium is not installed: `apt-get install -y chromium` (CI does)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def server(start_server):
    return start_server()


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("BRIDGE_SCREENSHOTS_DIR") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def open_page(browser: Browser, server, email: str, **context) -> Page:
    page = browser.new_context(
        base_url=server.url, permissions=["clipboard-read", "clipboard-write"], **context
    ).new_page()
    page.goto(PAGE)
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    return page


def row(page: Page, name: str):
    return page.locator("#key-rows tr").filter(has=page.get_by_role("rowheader", name=name))


def me(server, value: str, user_agent: str = "pytest") -> requests.Response:
    return requests.get(server.url + "/v1/me", headers=key_header(value, user_agent), timeout=10)


def test_create_copy_roll_and_delete(browser, server, screenshots, services, account, admin_user):
    page = open_page(browser, server, admin_user.email)
    expect(page.get_by_text("No keys yet.")).to_be_visible()
    page.screenshot(path=screenshots / "empty.png", full_page=True)

    # Create, then copy the value shown once.
    page.get_by_role("button", name="Create key").click()
    page.get_by_label("Name").fill("Zapier production")
    page.screenshot(path=screenshots / "create-dialog.png")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_have_text("Created the key 'Zapier production'.")
    expect(page.get_by_text("This is the only time the full key is shown.")).to_be_visible()
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    copied = page.evaluate("navigator.clipboard.readText()")
    page.screenshot(path=screenshots / "created.png", full_page=True)
    assert copied.startswith("tt_live_")
    assert me(server, copied).json()["key_name"] == "Zapier production"
    expect(row(page, "Zapier production")).to_contain_text(copied[-4:])

    # Reloading hides the value for good.
    page.reload()
    expect(page.locator("#secret")).to_be_hidden()
    assert copied not in page.content()

    # Cancel a dialogue: nothing changes.
    row(page, "Zapier production").get_by_role("button", name="Roll").click()
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("dialog[open]")).to_have_count(0)
    assert me(server, copied).status_code == 200

    # Roll immediately: the old value is refused with the rolled reason.
    row(page, "Zapier production").get_by_role("button", name="Roll").click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_contain_text("fails until it is updated")
    expect(dialog.get_by_label("Immediately")).to_be_checked()
    page.screenshot(path=screenshots / "roll-dialog.png")
    dialog.get_by_role("button", name="Roll key").click()
    expect(page.locator("#secret")).to_be_visible()
    rolled_value = page.locator("#secret-value").input_value()
    refused = me(server, copied, "Zapier")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_rolled"
    assert me(server, rolled_value).status_code == 200

    # The old value, used by "Zapier", shows under "still in use".
    deadline = time.monotonic() + 15
    while "Zapier: 1 call" not in row(page, "Zapier production").inner_text():
        assert time.monotonic() < deadline, "the failure report did not show"
        time.sleep(0.5)
        page.reload()
    expect(row(page, "Zapier production")).to_contain_text(
        f"Zapier: 1 call with tt_live_…{copied[-4:]} (rolled)"
    )

    # Roll with a grace period: the row says until when the old value works.
    row(page, "Zapier production").get_by_role("button", name="Roll").click()
    page.locator("dialog[open]").get_by_label("In 24 hours").check()
    page.locator("dialog[open]").get_by_role("button", name="Roll key").click()
    expect(row(page, "Zapier production")).to_contain_text("Active · old value works until")
    assert me(server, rolled_value).status_code == 200
    page.screenshot(path=screenshots / "grace-period.png", full_page=True)

    # Delete through the dialogue naming the key.
    row(page, "Zapier production").get_by_role("button", name="Delete").click()
    dialog = page.locator("dialog[open]")
    expect(dialog.get_by_role("heading")).to_have_text("Delete “Zapier production”?")
    dialog.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status").first).to_have_text("Deleted the key 'Zapier production'.")
    expect(row(page, "Zapier production")).to_contain_text("Deleted on")
    assert me(server, rolled_value).json()["error"]["code"] == "api_key_deleted"
    page.screenshot(path=screenshots / "deleted.png", full_page=True)


def test_editors_see_no_controls_and_forged_posts_fail(
    browser, server, services, account, editor_user
) -> None:
    key = services.keys.create(account.id, "n8n production")
    page = open_page(browser, server, editor_user.email)

    expect(row(page, "n8n production")).to_be_visible()
    expect(page.get_by_role("button", name="Create key")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Roll|Delete"))).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.input_value()
    forged = page.request.post(
        f"{PAGE}/{key.id}/delete",
        form={"csrf_token": token},
        headers={"Accept": "application/json"},
    )
    without_token = page.request.post(
        f"{PAGE}/{key.id}/roll", form={"grace": "0"}, headers={"Accept": "application/json"}
    )

    assert forged.status == 403
    assert forged.json()["message"].startswith("Only admins can create, roll or delete API keys.")
    assert without_token.status == 400
    assert without_token.json()["error"]["code"] == "csrf_invalid"
    assert me(server, key.value).status_code == 200


def test_a_request_without_the_csrf_token_is_refused(browser, server, account, admin_user):
    page = open_page(browser, server, admin_user.email)

    response = page.request.post(PAGE, form={"name": "Forged"}, headers={"Accept": "*/*"})

    assert response.status == 400
    assert "This form has expired or did not come from this page." in response.text()
    expect(page.get_by_text("No keys yet.")).to_be_visible()


def test_names_are_text_keyboard_works_and_phones_fit(
    browser, server, screenshots, services, account, admin_user
) -> None:
    services.keys.create(account.id, "<script>alert(1)</script>")
    services.keys.create(account.id, "n8n production")
    page = open_page(browser, server, admin_user.email, viewport={"width": 390, "height": 844})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    expect(page.get_by_role("rowheader", name="<script>alert(1)</script>")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=screenshots / "phone.png", full_page=True)
    # The keyboard alone: focus "Create key", open it, type, Escape closes without a change.
    page.get_by_role("button", name="Create key").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Name")).to_be_focused()
    page.keyboard.type("Typed only")
    page.keyboard.press("Escape")

    assert width <= 390
    assert dialogs == []  # the script-named key never ran
    expect(page.locator("dialog[open]")).to_have_count(0)
    assert {k.name for k in services.keys.list(account.id)} == {
        "n8n production",
        "<script>alert(1)</script>",
    }


def test_an_admin_sets_the_policy_and_sees_which_keys_are_due(
    browser, server, screenshots, services, account, admin_user, clock
) -> None:
    # The server runs on the real clock.
    clock.current = datetime.now(UTC)
    due = services.keys.create(account.id, "n8n production")
    clock.advance(milliseconds=10)  # each action after the last, as in the audit log
    late = services.keys.create(account.id, "Old monitor")
    clock.advance(milliseconds=10)
    services.keys.set_rotate_by(account.id, due.id, clock.current + timedelta(days=3))
    clock.advance(milliseconds=10)
    services.keys.set_rotate_by(account.id, late.id, clock.current - timedelta(days=1))
    page = open_page(browser, server, admin_user.email)

    page.get_by_label("Maximum key age (days)").fill("90")
    page.get_by_label("When a key's value is reported leaked").select_option("roll")
    page.get_by_role("button", name="Update policy").click()

    expect(page.get_by_text("Saved the key policy: 90 days; on a leak: roll.")).to_be_visible()
    expect(row(page, "n8n production").get_by_text("Due", exact=True)).to_be_visible()
    expect(row(page, "Old monitor").get_by_text("Overdue", exact=True)).to_be_visible()
    expect(page.locator("#audit-log").get_by_text("key_policy.changed")).to_be_visible()
    page.screenshot(path=screenshots / "rotation.png", full_page=True)
    assert services.key_policies.get(account.id).max_age_days == 90
