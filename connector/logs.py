"""Structured logs: one JSON object per line on stderr, for the service's own lines, gunicorn's,
and one per request. Never a key value, password, session or secret: request lines hold the path
without its query string, and no header but the User-Agent; anything key-shaped left in a line
(a key pasted into a path, a library quoting a request) is redacted as the line is written."""

from __future__ import annotations

import logging.config
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger
from pythonjsonlogger.json import JsonFormatter

from . import keys
from .clients import classify

# Where the app leaves what the access log adds: {"request_id", "route", "key_id"} (and when
# the request started, for its metrics).
ENVIRON_KEY = "bridge.request"


class RedactingJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, with every key-shaped run in the line redacted: what
    replaces it is letters and brackets, so the line stays valid JSON."""

    def jsonify_log_record(self, log_data: Any) -> str:
        return keys.redact(super().jsonify_log_record(log_data))


JSON_FORMATTER = {
    "()": RedactingJsonFormatter,
    "fmt": "%(levelname)s %(name)s %(process)d %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger", "process": "pid"},
    "timestamp": "time",  # ISO 8601, UTC
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": JSON_FORMATTER},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"handlers": ["stderr"], "level": "INFO"},
    "loggers": {
        # gunicorn's own lines and its access log (one line per request), in the same shape.
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # Its "Context impl" lines would come with every readiness check.
        "alembic": {"level": "WARNING"},
    },
}


def configure() -> None:
    logging.config.dictConfig(LOGGING)


class JsonAccessLogger(Logger):
    """gunicorn's access log as one JSON line per request: the path without its query string,
    no header but what the User-Agent says of the client, and what the app left in the environ
    (request id, route, key id)."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        seen = environ.get(ENVIRON_KEY) or {}
        self.access_log.info(
            "request",
            extra={
                "request_id": seen.get("request_id"),
                "method": environ.get("REQUEST_METHOD"),
                "path": environ.get("PATH_INFO"),
                "route": seen.get("route"),
                # gunicorn's own refusals (malformed HTTP) carry only the status line.
                "status": getattr(resp, "status_code", None) or _status_of(resp),
                "duration_ms": round(request_time.total_seconds() * 1000, 1),
                "client": classify(environ.get("HTTP_USER_AGENT")).value,
                "remote_addr": environ.get("REMOTE_ADDR"),
                "key_id": seen.get("key_id"),
            },
        )


def _status_of(resp: Any) -> int | None:
    code = str(getattr(resp, "status", "")).split(" ", 1)[0]
    return int(code) if code.isdigit() else None
