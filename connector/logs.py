"""Structured logs: one JSON object per line on stderr, for the service's own lines, gunicorn's,
and one per request. Never a key value, password, session or secret: request lines hold the path
without its query string, and no header but the User-Agent."""

from __future__ import annotations

import logging.config
from typing import Any

JSON_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "%(levelname)s %(name)s %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger"},
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
        # gunicorn's own lines, in the same shape; its access log is replaced by ours.
        "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        # Its "Context impl" lines would come with every readiness check.
        "alembic": {"level": "WARNING"},
    },
}


def configure() -> None:
    logging.config.dictConfig(LOGGING)
