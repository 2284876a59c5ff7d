"""Every error a caller may see, in one tree. Each class has its HTTP ``status`` and its stable
``code``; each surface maps the tree to its own shape in one place (the JSON API in
``api/errors.py``, the bridges in their routes, the CLI in ``cli.py``), matching on classes,
never on codes. The ``message`` says what happened and what to do; it and ``details`` never hold
a key value (anything key-shaped is redacted, :func:`connector.keys.redact`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from . import keys
from .clock import format_time


def shortened(text: str, limit: int) -> str:
    """Text from a request or a library, in a message: at most ``limit`` characters of it, so
    that the message, advice included, stays short enough for every platform to show it whole
    (Zapier shows 250 characters)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def excerpt(text: str, limit: int = 40) -> str:
    """A name or ID from a request, quoted in a message (at most ``limit`` characters of it)."""
    return repr(shortened(text, limit))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return keys.redact(value)
    if isinstance(value, dict):
        return {name: _redacted(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


class BridgeError(Exception):
    status = 500
    code = "internal_error"
    # Seconds a client should wait before trying again (a Retry-After header), when it helps.
    retry_after: int | None = None

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        # Messages quote what requests sent (IDs, paths, parameter names): never a key value.
        message = keys.redact(message)
        super().__init__(message)
        self.message = message
        self.details = _redacted(details) if details else {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Renders fail in another process: the error crosses back pickled, details included.
        return (type(self), (self.message,), self.__dict__)

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


# --- 400: the request itself is wrong --------------------------------------------------------


class BadRequest(BridgeError):
    status = 400
    code = "bad_request"


class MalformedJson(BadRequest):
    code = "malformed_json"


class InvalidEncoding(BadRequest):
    code = "invalid_encoding"


class InvalidCharacters(BadRequest):
    """NUL or a lone UTF-16 surrogate, which no database here can store."""

    code = "invalid_characters"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


class DataNotObject(BadRequest):
    code = "data_not_object"


class InvalidBase64Html(BadRequest):
    code = "invalid_base64_html"


class TemplateDataInvalidJson(BadRequest):
    code = "template_data_invalid_json"


class TemplateDataNotObject(BadRequest):
    code = "template_data_not_object"


class TemplateDataNamesClash(BadRequest):
    """Name-value data that names a value and, with dots, something inside it: ``order`` and
    ``order.number``."""

    code = "template_data_names_clash"


class InvalidLimit(BadRequest):
    code = "invalid_limit"


class EventNotOffered(BadRequest):
    """A platform's trigger was asked to subscribe to an event it does not offer."""

    code = "event_not_offered"


class CsrfInvalid(BadRequest):
    """A form of the API keys page came without its CSRF token, or with a stale one."""

    code = "csrf_invalid"


class InvalidSignInForm(BadRequest):
    """A sign-in post whose return address holds line breaks or other control characters."""

    code = "invalid_sign_in_form"


class InvalidKeyForm(BadRequest):
    code = "invalid_key_form"


class InvalidGrace(BadRequest):
    code = "invalid_grace"


class InvalidPolicyForm(BadRequest):
    code = "invalid_policy_form"


# Refused by gunicorn's HTTP parser before the app (answered in this shape by refusals.py).


class MalformedRequestLine(BadRequest):
    code = "malformed_request_line"


class MalformedHeader(BadRequest):
    code = "malformed_header"


class MalformedChunkedBody(BadRequest):
    code = "malformed_chunked_body"


class MalformedProxyLine(BadRequest):
    code = "malformed_proxy_line"


class UnsupportedTransferCoding(BadRequest):
    # RFC 9112 suggests 501 for a coding the server does not know; but the coding is the
    # client's choice and only the client can change it, so it is the client's error.
    code = "unsupported_transfer_coding"


class RequestLineTooLong(BridgeError):
    status = 414
    code = "request_line_too_long"


class ExpectationFailed(BridgeError):
    status = 417
    code = "expectation_failed"


class HeadersTooLarge(BridgeError):
    status = 431
    code = "headers_too_large"


# --- 401: the API key was refused ------------------------------------------------------------


class AuthenticationFailed(BridgeError):
    """A request whose API key was refused; the subclass says why. ``repeat`` is set when this
    is a client's automatic repeat of a refusal (n8n's), which counts as the same attempt."""

    status = 401
    repeat = False


class ApiKeyMissing(AuthenticationFailed):
    code = "api_key_missing"


class ApiKeyInQuery(AuthenticationFailed):
    code = "api_key_in_query"


class ApiKeyMalformed(AuthenticationFailed):
    """``details["problem"]`` says what is wrong with its shape."""

    code = "api_key_malformed"


class ApiKeyChecksumMismatch(AuthenticationFailed):
    code = "api_key_checksum_mismatch"


class ApiKeyUnknown(AuthenticationFailed):
    code = "api_key_unknown"


class SignedOut(BridgeError):
    """A web page's session ended (not an API key: the page signs in again)."""

    status = 401
    code = "signed_out"


class ApiKeyRetired(AuthenticationFailed):
    """A value of a key that was rolled or deleted; ``details`` name the key and the time."""

    when_field = ""

    @property
    def key_name(self) -> str:
        return str(self.details["key_name"])

    @property
    def when(self) -> str:
        """When it happened, for people: 2026-11-20 10:03 UTC."""
        return format_time(datetime.fromisoformat(self.details[self.when_field]))


class ApiKeyRolled(ApiKeyRetired):
    code = "api_key_rolled"
    when_field = "rolled_at"


class ApiKeyDeleted(ApiKeyRetired):
    code = "api_key_deleted"
    when_field = "deleted_at"


class SignatureRefused(BridgeError):
    """A request signed by a third party (GitHub's secret scanning) whose signature could not
    be checked or did not match. Not an API key refusal: nothing counts it as one."""

    status = 401
    code = "signature_refused"


class SecretScanningNotConfigured(SignatureRefused):
    code = "secret_scanning_not_configured"


class SignatureMissing(SignatureRefused):
    code = "signature_missing"


class SignatureKeyUnknown(SignatureRefused):
    code = "signature_key_unknown"


class SignatureInvalid(SignatureRefused):
    code = "signature_invalid"


# --- 403 -------------------------------------------------------------------------------------


class PermissionDenied(BridgeError):
    status = 403
    code = "permission_denied"


class ApiKeyNotAdmin(PermissionDenied):
    code = "api_key_not_admin"


class ApiKeyInGracePeriod(PermissionDenied):
    """A rolled value still in its grace period does ordinary work only: a leaked admin value
    must not mint itself new keys."""

    code = "api_key_in_grace_period"


class AdminRequired(PermissionDenied):
    code = "admin_required"


class DownloadLinkInvalid(PermissionDenied):
    code = "download_link_invalid"


# --- 404 -------------------------------------------------------------------------------------


class NotFound(BridgeError):
    status = 404
    code = "not_found"


class AccountNotFound(NotFound):
    code = "account_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class TemplateNotFound(NotFound):
    """``details["template_id"]`` names it."""

    code = "template_not_found"


class DocumentNotFound(NotFound):
    code = "document_not_found"


class HookNotFound(NotFound):
    code = "hook_not_found"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"


class AuditEntryNotFound(NotFound):
    code = "audit_entry_not_found"


class OperationNotFound(NotFound):
    """A platform bridge has no operation by that name."""

    code = "operation_not_found"


# --- 409: in conflict with what is stored -----------------------------------------------------


class Conflict(BridgeError):
    status = 409
    code = "conflict"


class EmailTaken(Conflict):
    code = "email_taken"


class ApiKeyNameTaken(Conflict):
    code = "api_key_name_taken"


class ApiKeyAlreadyDeleted(Conflict):
    code = "api_key_already_deleted"


class ApiKeyRollConflict(Conflict):
    code = "api_key_roll_conflict"


class HookLimitReached(Conflict):
    code = "hook_limit_reached"


class DeliveryNotFailed(Conflict):
    code = "delivery_not_failed"


# --- 410: it existed, and is gone --------------------------------------------------------------


class Gone(BridgeError):
    status = 410
    code = "gone"


class DownloadLinkExpired(Gone):
    code = "download_link_expired"


class DocumentExpired(Gone):
    code = "document_expired"


class PayloadTooLarge(BridgeError):
    status = 413
    code = "payload_too_large"


# --- 422: well-formed, but it cannot be done -----------------------------------------------------


class ValidationFailed(BridgeError):
    """``details["fields"]`` lists the fields at fault, when there are some."""

    status = 422
    code = "validation_failed"


class TemplateSyntaxError(ValidationFailed):
    code = "template_syntax_error"


class TemplateRenderError(ValidationFailed):
    code = "template_render_error"


class MissingVariable(ValidationFailed):
    code = "template_variable_missing"


class RenderLimitExceeded(ValidationFailed):
    """``details["limit"]`` says which: ``time``, ``memory``, or a limit inside Liquid."""

    code = "render_limit_exceeded"


class PdfConversionFailed(ValidationFailed):
    code = "pdf_conversion_failed"


class EngineUnavailable(ValidationFailed):
    """The PDF engine asked for is not installed on this deployment; the message says what to
    install, ``details["engine"]`` names it."""

    code = "engine_unavailable"


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"


class HookTargetRefused(ValidationFailed):
    code = "hook_target_refused"


class HookDisabled(ValidationFailed):
    code = "hook_disabled"


class LeakedValueGraceRefused(ValidationFailed):
    """A roll with a grace period would keep a value reported leaked working."""

    code = "leaked_value_grace_refused"


# --- 429: over a limit, retry later -------------------------------------------------------------


class TooManyRequests(BridgeError):
    """Over an abuse limit; ``details["retry_after"]`` is the whole seconds to wait."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = int(self.details["retry_after"])


class RateLimited(TooManyRequests):
    code = "rate_limited"


class FailedAuthAddressLimited(TooManyRequests):
    code = "failed_auth_address_limited"


class FailedAuthKeyLimited(TooManyRequests):
    code = "failed_auth_key_limited"


class SignInLimited(TooManyRequests):
    code = "sign_in_limited"


class SignInAddressLimited(TooManyRequests):
    code = "sign_in_address_limited"


class SignInEmailLimited(TooManyRequests):
    code = "sign_in_email_limited"


class RenderBusy(BridgeError):
    # 429 rather than 503: Zapier retries a 429 after its Retry-After by itself (ThrottledError),
    # and n8n says "too many requests"; this is load being shed by design, not an outage.
    status = 429
    code = "render_busy"
    retry_after = 5


# --- 5xx: ours, or a service we depend on ------------------------------------------------------


class UpstreamError(BridgeError):
    """The upstream renderer (BRIDGE_RENDER_UPSTREAM_URL) did not give a PDF."""

    status = 502
    code = "upstream_error"


class UpstreamKeyRefused(UpstreamError):
    code = "upstream_key_refused"


class UpstreamUnavailable(UpstreamError):
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class StorageUnavailable(BridgeError):
    status = 503
    code = "storage_unavailable"
    retry_after = 5


class TransactionConflict(StorageUnavailable):
    """PostgreSQL undid the transaction (a deadlock or serialization failure): retry it."""

    code = "transaction_conflict"


class SecretScanningKeysUnavailable(BridgeError):
    """BRIDGE_GITHUB_SECRET_SCANNING_KEYS names a file that cannot be read as GitHub's public
    keys: the operator's to fix; GitHub sends the matches again later."""

    status = 503
    code = "secret_scanning_keys_unavailable"
    retry_after = 60


class RenderUnavailable(BridgeError):
    """No render process could take the render (shutting down, or one failed to start)."""

    status = 503
    code = "render_unavailable"
    retry_after = 5


# --- not answers: the service cannot start ------------------------------------------------------


class ConfigError(Exception):
    """A setting has a bad value; the service refuses to start and prints the message."""


class SchemaOutdated(Exception):
    """The database schema is missing or older than this version of the code."""
