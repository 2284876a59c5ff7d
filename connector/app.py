"""``create_app``: the one place that assembles the core API and the platform bridges."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import redirect, request
from flask_openapi3 import Info, OpenAPI
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Response

from . import __version__, keys, refusals
from .api import register_api
from .api.errors import ErrorResponse, validation_error_response
from .api.health import blueprint as health
from .api.security import SECURITY_SCHEMES
from .clock import Clock
from .config import Settings, load_settings
from .observability import observe_requests
from .platforms import API, Platform
from .services import EXTENSION, Services, services
from .web import blueprint as web
from .web.sessions import SignedCookieSessions


def platforms() -> tuple[Platform, ...]:
    """Every platform this service speaks to: the core API's own webhooks and the bridges. The
    one place the connector meets the bridges, for the app and the delivery worker alike."""
    from n8n_bridge import PLATFORM as n8n
    from zapier_bridge import PLATFORM as zapier

    return (API, zapier, n8n)


class BridgeApp(OpenAPI):
    def handle_http_exception(self, e: HTTPException) -> Any:
        """Werkzeug's routing redirects (a missing trailing slash added) name the host the
        request's Host header gave, which any client chooses: they go to the same path under
        ``BRIDGE_PUBLIC_URL`` instead."""
        if isinstance(e, RequestRedirect):
            return _public_redirect(e.new_url, e.code)
        return super().handle_http_exception(e)


def _public_redirect(url: str, status: int) -> Response:
    """A redirect to ``url``'s path and query under the public URL, whatever host it named."""
    moved = urlsplit(url)
    path = moved.path.removeprefix(request.script_root)
    public = urlsplit(str(services().settings.public_url).rstrip("/"))
    query = keys.redact(moved.query)  # the Location is an answer: no key value in it
    target = urlunsplit((public.scheme, public.netloc, public.path + path, query, ""))
    return redirect(target, status)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    render_slots_dir: Path | None = None,
) -> BridgeApp:
    settings = settings or load_settings()
    assert settings.public_url is not None  # filled by load_settings
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
    # Routes match a path as sent: Werkzeug would answer one with "//" by an HTML 308 to the
    # path with the slashes merged, its Location built from the Host header. Such a path is a
    # JSON 404 instead, like any other that names nothing.
    app.url_map.merge_slashes = False
    secret_key, previous_secret_key = settings.secret_keys()
    app.config.update(
        SECRET_KEY=secret_key,
        # Sessions signed before a rotation of the key stay valid.
        SECRET_KEY_FALLBACKS=[previous_secret_key] if previous_secret_key else [],
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
    served = platforms()
    app.extensions[EXTENSION] = Services.build(
        settings, clock, platforms=served, render_slots_dir=render_slots_dir
    )

    refusals.install(app, settings.max_body_bytes)
    register_api(app)
    app.register_blueprint(web)
    app.register_blueprint(health)
    for platform in served:
        if platform.blueprint is not None:
            app.register_api(platform.blueprint)
    observe_requests(app)
    return app
