"""Requests that once got a 500 from a live server, half done: each is a 4xx now, and leaves
nothing behind."""

from __future__ import annotations

import re

import requests

from ..conftest import PASSWORD
from ..helpers import key_header


def test_data_nested_950_deep_with_an_idempotency_key_is_a_422_that_makes_nothing(
    start_server, services, account, standard_key
) -> None:
    server = start_server()
    template = requests.post(
        server.url + "/v1/templates",
        json={"name": "Deep", "body": "{{ a }}"},
        headers=key_header(standard_key.value),
        timeout=10,
    ).json()
    data = '{"a":' * 950 + "1" + "}" * 950
    headers = {
        **key_header(standard_key.value),
        "Content-Type": "application/json",
        "Idempotency-Key": "deep-1",
    }

    answer = requests.post(
        server.url + "/v1/documents",
        data=f'{{"template_id": "{template["id"]}", "format": "txt", "data": {data}}}',
        headers=headers,
        timeout=30,
    )

    assert answer.status_code == 422
    assert answer.json()["error"] == {
        "code": "template_render_error",
        "message": "The data is nested too deeply.",
    }
    listed = requests.get(
        server.url + "/v1/documents", headers=key_header(standard_key.value), timeout=10
    )
    assert listed.json()["data"] == []
    assert not list((services.settings.data_dir / "documents").rglob("*.*"))
    # The Idempotency-Key was not used up: a proper request with it makes its document.
    made = requests.post(
        server.url + "/v1/documents",
        json={"template_id": template["id"], "format": "txt", "data": {"a": 1}},
        headers=headers,
        timeout=30,
    )
    assert made.status_code == 201


def test_a_sign_in_whose_next_holds_a_line_break_is_a_400_page_that_signs_no_one_in(
    start_server, admin_user
) -> None:
    server = start_server()
    browser = requests.Session()
    form = browser.get(server.url + "/signin", timeout=10)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)

    answer = browser.post(
        server.url + "/signin",
        data={
            "email": admin_user.email,
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/generate/api-keys\r\nSet-Cookie: planted=1",
        },
        allow_redirects=False,
        timeout=10,
    )

    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "return address holds line breaks" in answer.text
    assert "Set-Cookie" not in answer.headers
    page = browser.get(server.url + "/generate/api-keys", allow_redirects=False, timeout=10)
    assert page.status_code == 302  # still signed out
