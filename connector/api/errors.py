"""Every error of the core JSON API as ``{"error": {"code", "message", "details"?}}``: never an
HTML page, never a stack trace. Registered once on the app."""

from __future__ import annotations

import logging
from typing import Any, cast

from flask import Flask, Response, current_app, jsonify, request
from flask_openapi3.types import ResponseDict
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.exc import DataError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..errors import (
    BridgeError,
    InvalidCharacters,
    StorageUnavailable,
    TransactionConflict,
    ValidationFailed,
)

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. validation_failed.")
    message: str = Field(description="What happened and what to do about it, for a person.")
    details: dict[str, Any] | None = Field(
        None, description="More about some errors, e.g. the fields that failed validation."
    )


class ErrorResponse(BaseModel):
    """The body of every error answer of the API."""

    error: ErrorDetail


# What any route that acts for an account may answer, whatever it does: in /openapi.json.
KEY_ROUTE_ERRORS: ResponseDict = {
    "400": ErrorResponse,  # malformed JSON, characters that cannot be stored
    "401": ErrorResponse,
    "413": ErrorResponse,
    "422": ErrorResponse,
    "429": ErrorResponse,
    "503": ErrorResponse,  # the database is unreachable
}


# PostgreSQL's deadlock and serialization failures: nothing was written, a retry succeeds.
_COLLISIONS = {"40P01", "40001"}

_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood. Check its syntax."),
    404: (
        "not_found",
        "There is nothing at this address. Check the URL and method; the API is described "
        "at /openapi.json.",
    ),
    405: ("method_not_allowed", "This address does not accept the {method} method."),
    413: (
        "payload_too_large",
        "The request body is larger than the {limit} bytes this service accepts.",
    ),
}


def error_response(error: BridgeError) -> Response:
    response = jsonify(error.to_dict())
    response.status_code = error.status
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def validation_error_response(error: ValidationError) -> Response:
    """The 422 for a request that failed its pydantic model, with one entry per field."""
    fields = []
    for problem in error.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in problem["loc"])
        if not location and problem["type"] in {"model_type", "dict_type"}:
            message = "Send a JSON object as the body, with Content-Type: application/json."
        else:
            message = problem["msg"]
        fields.append({"field": location or "body", "message": message})
    summary = "; ".join(f"{field['field']}: {field['message']}" for field in fields)
    return error_response(
        ValidationFailed(f"The request is not valid: {summary}", details={"fields": fields})
    )


def _http_error(error: HTTPException) -> Response:
    # flask-openapi3 aborts with a ready response for validation errors; keep it.
    if error.response is not None:
        return cast(Response, error.response)
    status = error.code or 500
    code, template = _HTTP_ERRORS.get(
        status, (error.name.lower().replace(" ", "_"), error.description or error.name)
    )
    message = template.format(method=request.method, limit=current_app.config["MAX_CONTENT_LENGTH"])
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _unexpected_error(error: Exception) -> Response:
    if isinstance(error, OperationalError):
        if getattr(error.orig, "sqlstate", None) in _COLLISIONS:
            log.warning("transaction collided: %s", type(error.orig).__name__)
            return error_response(
                TransactionConflict(
                    "This request collided with another change made at the same moment, and was "
                    "undone. Retry it.",
                )
            )
        # Connection refused, server gone, SQLite locked past its timeout: all pass by themselves.
        log.warning("database unavailable: %s", type(error.orig).__name__)
        return error_response(
            StorageUnavailable(
                "The service cannot reach its database right now. Retry in a few seconds."
            )
        )
    if isinstance(error, DataError | UnicodeEncodeError):
        # Text the database cannot store: NUL characters, lone UTF-16 surrogates.
        return error_response(
            InvalidCharacters(
                "The request holds characters that cannot be stored (such as NUL or a lone "
                "surrogate). Remove them and send it again.",
            )
        )
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(
        BridgeError("Something went wrong on our side. It has been logged; please retry.")
    )


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(BridgeError, error_response)
    app.register_error_handler(ValidationError, validation_error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
