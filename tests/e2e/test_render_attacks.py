"""The attacks that used to stall or crash a web worker, replayed against a live server: each
is answered within its limit plus a second, and another account is served all the while."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest
import requests

from connector.api_keys import Permission
from connector.templates import TemplateFields

from ..helpers import key_header

# HTTP and rendering behaviour: the same whatever database is behind the server.
pytestmark = pytest.mark.any_database

TXT_SECONDS, PDF_SECONDS = 2.0, 4.0
LIMIT_SECONDS = {"txt": TXT_SECONDS, "pdf": PDF_SECONDS}
TABLE = (
    "<table>{% for i in (1..15000) %}<tr><td>{{ i }}</td><td>cell {{ i }}</td>"
    "<td>more text</td></tr>{% endfor %}</table>"
)
ATTACKS = [
    # (format, template, data, status, the limit named, the template's PDF engine)
    pytest.param(
        "txt", "{{ x }}", {"x": "<!--" * 60_000}, 200, None, None, id="html-to-text-quadratic"
    ),
    pytest.param(
        "txt", "{{ x | strip_html | size }}", {"x": ">" + "<!--" * 60_000}, 422, "time", None,
        id="slow-filter",
    ),
    pytest.param(
        "txt", '{{ (1..20000000) | join: "," }}', {}, 422, "value", None, id="range-join"
    ),
    pytest.param("pdf", TABLE, {}, 422, "time", None, id="pdf-15000-rows"),
    pytest.param("pdf", TABLE, {}, 422, "time", "weasyprint", id="pdf-15000-rows-weasyprint"),
    # Chromium's layout of the table grows past the memory limit about when the time limit
    # ends: whichever comes first stops it.
    pytest.param(
        "pdf", TABLE, {}, 422, {"time", "memory"}, "chromium", id="pdf-15000-rows-chromium",
        marks=pytest.mark.chromium,
    ),
    pytest.param(
        "txt", "{{ x }}", {"x": "<![<!["}, 200, None, None, id="malformed-declaration"
    ),
]  # fmt: skip


@pytest.fixture
def server_env(server_env: dict[str, str]) -> dict[str, str]:
    return {
        **server_env,
        "BRIDGE_RENDER_TXT_SECONDS": str(TXT_SECONDS),
        "BRIDGE_RENDER_PDF_SECONDS": str(PDF_SECONDS),
    }


@contextmanager
def someone_else_polling(url: str, key: str) -> Iterator[list[int]]:
    """Another account's connection test, every 50 ms while the block runs: its statuses."""
    statuses: list[int] = []
    done = threading.Event()

    def poll() -> None:
        with requests.Session() as session:
            while not done.is_set():
                try:
                    response = session.get(url + "/v1/me", headers=key_header(key), timeout=5)
                    statuses.append(response.status_code)
                except requests.RequestException:
                    statuses.append(0)
                done.wait(0.05)

    thread = threading.Thread(target=poll)
    thread.start()
    try:
        yield statuses
    finally:
        done.set()
        thread.join(10)


def new_account_key(services, name: str) -> str:
    account = services.accounts.create(name)
    return services.keys.create(account.id, "Renders", Permission.STANDARD).value


@pytest.mark.parametrize(("format", "body", "data", "status", "limit", "engine"), ATTACKS)
def test_an_attack_is_answered_within_its_limit_and_others_are_served(
    start_server, services, format, body, data, status, limit, engine
) -> None:
    server = start_server(workers=2, ready_path="/readyz")
    attacker = services.accounts.create("Mallory")
    key = services.keys.create(attacker.id, "Renders", Permission.STANDARD).value
    template = services.templates.create(
        attacker.id, TemplateFields(name="Attack", body=body, engine=engine)
    )

    with someone_else_polling(server.url, new_account_key(services, "Bystander")) as statuses:
        started = time.monotonic()
        response = requests.post(
            f"{server.url}/render/{format}/{template.id}",
            json=data,
            headers=key_header(key),
            timeout=60,
        )
        seconds = time.monotonic() - started
        after = requests.post(
            f"{server.url}/render/txt/{template.id}", json={}, headers=key_header(key), timeout=10
        )

    assert response.status_code == status, response.text
    if limit is not None:
        assert response.json()["error"]["code"] == "render_limit_exceeded"
        named = limit if isinstance(limit, set) else {limit}
        assert response.json()["error"]["details"]["limit"] in named
    assert seconds < LIMIT_SECONDS[format] + 1
    assert after.status_code in (200, 422)  # the pool serves on after a killed render
    assert statuses and set(statuses) == {200}
    assert "WORKER TIMEOUT" not in server.log()


def test_an_account_saturating_its_share_does_not_hold_up_another(start_server, services) -> None:
    server = start_server(workers=2, ready_path="/readyz")
    attacker = services.accounts.create("Mallory")
    attacker_key = services.keys.create(attacker.id, "Renders", Permission.STANDARD).value
    slow = services.templates.create(
        attacker.id, TemplateFields(name="Slow", body="{{ x | strip_html | size }}")
    )
    victim = services.accounts.create("Acme")
    victim_key = services.keys.create(victim.id, "Renders", Permission.STANDARD).value
    small = services.templates.create(victim.id, TemplateFields(name="Hi", body="<p>Hi</p>"))

    def attack(_: int) -> int:
        return requests.post(
            f"{server.url}/render/txt/{slow.id}",
            json={"x": ">" + "<!--" * 60_000},
            headers=key_header(attacker_key),
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        attacks = pool.map(attack, range(8))
        time.sleep(0.5)  # the attacker's renders hold its share and its places in the queue
        started = time.monotonic()
        rendered = requests.post(
            f"{server.url}/render/txt/{small.id}", headers=key_header(victim_key), timeout=10
        )
        seconds = time.monotonic() - started
        attack_statuses = sorted(attacks)

    assert rendered.status_code == 200 and rendered.text == "Hi\n"
    assert seconds < 3
    assert 429 in attack_statuses  # beyond its share and its queue places, at once
    assert set(attack_statuses) <= {422, 429}
