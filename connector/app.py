"""``create_app``: the one place that assembles the core API and the platform bridges."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from flask import request
from flask_openapi3 import Info, OpenAPI
from gunicorn.http.errors import ParseException
from werkzeug.middleware.proxy_fix import ProxyFix

from . import __version__
from .api import register_api
from .api.errors import ErrorResponse, validation_error_response
from .api.health import blueprint as health
from .api.security import SECURITY_SCHEMES
from .clock import Clock
from .config import Settings, load_settings
from .errors import BadRequest, PayloadTooLarge
from .http_refusals import MALFORMED_CHUNKED_BODY
from .observability import observe_requests
from .services import EXTENSION, Services
from .web import blueprint as web
from .web.sessions import SignedCookieSessions

DRAIN_OVERSIZED_UP_TO = 16 * 1024 * 1024


def _discard(stream: Any, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(length, 65_536))
        if not chunk:
            return
        length -= len(chunk)


def bridge_commands() -> list[click.Command]:
    """The bridges' commands for the ``export`` group of the CLI."""
    from n8n_bridge.export import export_command as n8n
    from zapier_bridge.export import export_command as zapier

    return [zapier, n8n]


class BridgeApp(OpenAPI):
    """Flask asks of every hook and view, on every request, whether it is a coroutine function
    (``inspect`` work that cost more than some hooks themselves): ask once per function."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sync_functions: set[Callable[..., Any]] = set()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if func in self._sync_functions:
            return func
        runnable = super().ensure_sync(func)
        if runnable is func:
            self._sync_functions.add(func)
        return runnable


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    render_slots_dir: Path | None = None,
) -> BridgeApp:
    settings = settings or load_settings()
    app = BridgeApp(
        __name__,
        info=Info(
            title="TemplateTo Bridge",
            version=__version__,
            description="API keys, documents and events for TemplateTo's Zapier and n8n users. "
            "Authenticate with your API key in the X-Api-Key header.",
        ),
        security_schemes=SECURITY_SCHEMES,
        # A string, as the documented responses' keys are: with 422, flask-openapi3 would
        # document its own shape of validation errors over ours (api.errors.KEY_ROUTE_ERRORS).
        validation_error_status="422",
        validation_error_model=ErrorResponse,
        validation_error_callback=validation_error_response,
    )
    app.config.update(
        SECRET_KEY=settings.secret_key.get_secret_value(),
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        # The web pages' session: a signed cookie, out of scripts' reach, not sent cross-site.
        SESSION_COOKIE_NAME="bridge_session",
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.scheme == "https",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # A CSRF token lasts as long as the session that holds it.
        WTF_CSRF_TIME_LIMIT=None,
    )
    if settings.proxy_hops:
        # Behind reverse proxies, the client's address (for abuse limits and logs) is theirs.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )
    app.session_interface = SignedCookieSessions()
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the models' field order
    app.extensions[EXTENSION] = Services.build(settings, clock, render_slots_dir)

    @app.before_request
    def refuse_oversized_body() -> None:
        # Werkzeug enforces the limit when the body is read; checking the declared length first
        # answers 413 even on routes that never read the body, before any other work.
        declared, environ = request.content_length, request.environ
        if declared is not None and declared > settings.max_body_bytes:
            if declared <= DRAIN_OVERSIZED_UP_TO:
                # Read and drop it: a connection closed with a body unread may be reset before
                # the client reads the 413, and a client that pools connections (Zapier's,
                # n8n's) then fails its next request too.
                _discard(environ["wsgi.input"], declared)
            raise PayloadTooLarge(
                f"The request body is {declared} bytes; this service accepts at most "
                f"{settings.max_body_bytes}."
            )
        if declared is None and "HTTP_TRANSFER_ENCODING" in environ:
            # A chunked body declares no length: read it here, up to one byte over the limit,
            # so that a longer one is refused rather than cut short and used.
            try:
                body = environ["wsgi.input"].read(settings.max_body_bytes + 1)
            except ParseException as error:
                raise MALFORMED_CHUNKED_BODY.error(str(error)) from error
            if len(body) > settings.max_body_bytes:
                _discard(environ["wsgi.input"], DRAIN_OVERSIZED_UP_TO)
                raise PayloadTooLarge(
                    f"The request body is over the {settings.max_body_bytes} bytes this "
                    "service accepts."
                )
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))

    @app.before_request
    def refuse_nul_characters() -> None:
        # PostgreSQL cannot store NUL in text; refusing it at the door keeps every route alike.
        if "\x00" in request.path or (
            request.query_string
            and any(
                "\x00" in name or "\x00" in value for name, value in request.args.items(multi=True)
            )
        ):
            raise BadRequest(
                "The address holds a NUL character. Remove it and send the request again.",
                code="invalid_characters",
            )

    register_api(app)
    app.register_blueprint(web)
    app.register_blueprint(health)
    observe_requests(app)
    # The one place the connector meets the bridges.
    from n8n_bridge import blueprint as n8n
    from zapier_bridge import blueprint as zapier

    app.register_api(zapier)
    app.register_api(n8n)
    return app
