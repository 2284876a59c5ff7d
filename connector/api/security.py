"""Key authentication for every blueprint whose routes act for an account: the core ``/v1`` API
and the Zapier and n8n bridges. One hook, so every surface refuses keys identically."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from flask_openapi3 import APIBlueprint, Tag

from ..audit import Actor, Via
from ..auth import Principal, grace_warning, key_in_query
from ..errors import (
    ApiKeyInGracePeriod,
    ApiKeyNotAdmin,
    AuthenticationFailed,
    TooManyRequests,
)
from ..refusals import require_json_body
from ..services import services
from .errors import KEY_ROUTE_ERRORS

API_KEY_HEADER = "X-Api-Key"
SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
}
SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]


def _authenticate() -> None:
    refusal = key_in_query(request.args) if request.query_string else None
    if refusal is not None:
        raise refusal
    svc = services()
    limits, authenticator, metrics = svc.api_limits, svc.authenticator, svc.metrics
    address = request.remote_addr or "unknown"
    presented = request.headers.get(API_KEY_HEADER)
    user_agent = request.headers.get("User-Agent", "")
    path = request.path
    # Many integrations share an address (Zapier's, n8n's): one flooding it with a bad key must
    # not stop the others whose keys work, so a key known to work skips the refusal limits.
    if not authenticator.vouches_for(presented):
        try:
            limits.check_refusals(address, presented)
        except TooManyRequests:
            # n8n's repeat of a refusal is the same attempt as the one the limit let through.
            if not authenticator.expects_repeat(presented, user_agent=user_agent, path=path):
                metrics.authenticated("limited")
                authenticator.note_limited(presented, user_agent=user_agent, path=path)
                raise
    try:
        principal = authenticator.authenticate(presented, user_agent=user_agent, path=path)
    except AuthenticationFailed as failed:
        metrics.authenticated(failed.code)
        if not failed.repeat:
            limits.refused(address, presented)
        raise
    g.principal = principal
    metrics.authenticated("accepted")
    limits.accepted(principal)


def _warn_grace_period(response: Response) -> Response:
    principal: Principal | None = g.get("principal")
    if principal is not None:
        response.headers.update(grace_warning(principal))
    return response


def key_protected_blueprint(
    name: str, import_name: str, url_prefix: str, tag: str, description: str | None = None
) -> APIBlueprint:
    """An API blueprint whose every route requires a valid API key, documented as such."""
    blueprint = APIBlueprint(
        name,
        import_name,
        url_prefix=url_prefix,
        abp_tags=[Tag(name=tag, description=description)],
        abp_security=SECURITY,
        abp_responses=KEY_ROUTE_ERRORS,
    )
    blueprint.before_request(_authenticate)
    blueprint.before_request(require_json_body)  # after authentication: a 401 comes first
    blueprint.after_request(_warn_grace_period)
    return blueprint


def current_principal() -> Principal:
    return g.principal


def request_actor() -> Actor:
    """Who the audit log says made this request: its key, by hint (never the value)."""
    return Actor(
        current_principal().key_hint,
        Via.API,
        request.remote_addr,
        request.headers.get("User-Agent"),
    )


SUBSCRIBE = "subscribe to events"


def require_current_value(action: str) -> Principal:
    """The request's principal, unless it used a rolled value: one in its grace period does
    ordinary work only, so that a leaked value cannot mint keys or subscribe to events that
    would outlive it. ``action`` completes "Use the key's new value to …"."""
    principal = current_principal()
    if principal.grace_until is not None:
        raise ApiKeyInGracePeriod(
            f"This value of the API key {principal.key_name!r} was rolled and works only for "
            f"ordinary requests until its grace period ends. Use the key's new value to {action}.",
            details={"key_id": principal.key_id, "key_name": principal.key_name},
        )
    return principal


def require_admin(*, to_change: bool = False) -> Principal:
    """The request's principal, when its key may read (or, ``to_change``, create, roll or
    delete) API keys."""
    principal = require_current_value("manage API keys") if to_change else current_principal()
    if not principal.is_admin:
        raise ApiKeyNotAdmin(
            f"The API key {principal.key_name!r} has the standard permission; managing API keys "
            "needs a key with the admin permission. Ask an admin to create one on the API keys "
            "page.",
        )
    return principal
