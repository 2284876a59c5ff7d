"""A test client signed in as a user of the web pages, and the CSRF token of a page."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from connector.accounts import UserInfo

from ..conftest import PASSWORD

_CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/signin") -> str:
    """The token of the form on ``path``, as a browser would read it from the page."""
    match = _CSRF_TOKEN.search(client.get(path).text)
    assert match is not None, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def sign_in(app) -> Callable[[UserInfo], FlaskClient]:
    def signed_in(user: UserInfo) -> FlaskClient:
        client = app.test_client()
        response = client.post(
            "/signin",
            data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_token(client)},
        )
        assert response.status_code == 302, response.text
        return client

    return signed_in
