"""Key authentication for every blueprint whose routes act for an account: the core ``/v1`` API
now, the Zapier and n8n bridges later. One hook, so every surface refuses keys identically."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Response, g, request
from flask_openapi3 import APIBlueprint, Tag
from werkzeug.exceptions import BadRequest

from ..auth import Principal, grace_warning, key_in_query
from ..errors import AuthenticationFailed, MalformedJson, PermissionDenied, TooManyRequests
from ..errors import BadRequest as BadRequestError
from ..services import services
from .errors import KEY_ROUTE_ERRORS

API_KEY_HEADER = "X-Api-Key"
_UNSTORABLE = re.compile(
    rb"\x00|\\u0000"
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
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
    # Straight from the WSGI environ: on the cheapest requests, Flask's proxies and header
    # lookups cost as much as the work.
    environ = request.environ
    address = request.remote_addr or "unknown"
    presented = environ.get("HTTP_X_API_KEY")
    user_agent = environ.get("HTTP_USER_AGENT", "")
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
    _require_valid_json()


def _require_valid_json() -> None:
    """A body sent as JSON that does not parse is a 400 that says where, not a 422. Text that
    no database can store (NUL, lone UTF-16 surrogates) is refused here, on every backend."""
    body = request.get_data(cache=True) if request.is_json else b""
    if not body:
        return
    _require_utf8(body)
    if _UNSTORABLE.search(body):
        raise BadRequestError(
            "The body holds characters that cannot be stored (NUL or a lone surrogate). Remove "
            "them and send it again.",
            code="invalid_characters",
        )
    try:
        request.get_json()
    except RecursionError:
        raise MalformedJson("The JSON body is nested too deeply. Send a flatter object.") from None
    except BadRequest:
        try:
            json.loads(body)
        except ValueError as error:
            where = ""
            if isinstance(error, json.JSONDecodeError):
                where = f" at line {error.lineno}, column {error.colno} ({error.msg})"
            raise MalformedJson(
                f"The request body is not valid JSON{where}. Send a JSON object.",
            ) from None
        raise


def _require_utf8(body: bytes) -> None:
    """JSON is UTF-8 (RFC 8259). Python's parser would also take UTF-16 and UTF-32, and lone
    surrogates written as raw bytes (CESU-8), which no database can store."""
    encoding = json.detect_encoding(body)
    if encoding not in ("utf-8", "utf-8-sig"):
        raise BadRequestError(
            f"The body is {encoding.upper()} text; send JSON encoded as UTF-8.",
            code="invalid_encoding",
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequestError(
            f"The body is not valid UTF-8 (byte {error.start} is {body[error.start]:#04x}); send "
            "JSON encoded as UTF-8.",
            code="invalid_encoding",
        ) from None


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
    blueprint.after_request(_warn_grace_period)
    return blueprint


def current_principal() -> Principal:
    return g.principal


def require_admin() -> Principal:
    principal = current_principal()
    if not principal.is_admin:
        raise PermissionDenied(
            f"The API key {principal.key_name!r} has the standard permission; managing API keys "
            "needs a key with the admin permission. Ask an admin to create one on the API keys "
            "page.",
            code="api_key_not_admin",
        )
    return principal
