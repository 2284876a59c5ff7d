"""The web pages' session: Flask's signed cookie, read only when a request carries one."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class SignedCookieSessions(SecureCookieSessionInterface):
    """Flask builds the cookie's signer on every request, even one without the cookie; API
    requests never carry it, so they start with an empty session and skip that work."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)
