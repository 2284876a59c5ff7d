"""One tree of errors. Each leaf carries a stable ``code`` and an HTTP status; every surface (the
core JSON API, the CLI, and later the Zapier and n8n bridges) maps them to its own shape in exactly
one place."""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """Base of every error a caller may see. ``message`` says what happened and what to do."""

    status = 500
    code = "internal_error"
    # Seconds a client should wait before trying again (a Retry-After header), when it helps.
    retry_after: int | None = None

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Renders fail in another process: the error crosses back pickled, code and details too.
        return (type(self), (self.message,), self.__dict__)

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadRequest(BridgeError):
    status = 400
    code = "bad_request"


class MalformedJson(BadRequest):
    code = "malformed_json"


class ValidationFailed(BridgeError):
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


class AuthenticationFailed(BridgeError):
    """A request whose API key was refused; ``code`` names the reason (see ``auth.Reason``).
    ``repeat`` is set when this is a client's automatic repeat of a refusal (n8n's), which
    counts as the same attempt."""

    status = 401
    repeat = False


class PermissionDenied(BridgeError):
    status = 403
    code = "permission_denied"


class NotFound(BridgeError):
    status = 404
    code = "not_found"


class MethodNotAllowed(BridgeError):
    status = 405
    code = "method_not_allowed"


class Conflict(BridgeError):
    status = 409
    code = "conflict"


class PayloadTooLarge(BridgeError):
    status = 413
    code = "payload_too_large"


class TooManyRequests(BridgeError):
    """Over an abuse limit; ``details["retry_after"]`` is the whole seconds to wait."""

    status = 429
    code = "too_many_requests"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = int(self.details["retry_after"])


class RenderBusy(BridgeError):
    # 429 rather than 503: Zapier retries a 429 after its Retry-After by itself (ThrottledError),
    # and n8n says "too many requests"; this is load being shed by design, not an outage.
    status = 429
    code = "render_busy"
    retry_after = 5


class RenderUnavailable(BridgeError):
    """No render process could take the render (shutting down, or one failed to start)."""

    status = 503
    code = "render_unavailable"
    retry_after = 5


class StorageUnavailable(BridgeError):
    status = 503
    code = "storage_unavailable"
    retry_after = 5


class ConfigError(Exception):
    """A setting has a bad value; the service refuses to start and prints the message."""


class SchemaOutdated(Exception):
    """The database schema is missing or older than this version of the code."""
