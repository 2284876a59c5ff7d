"""``/healthz`` (the process answers), ``/readyz`` (it can serve: database, schema, delivery,
render processes and the default PDF engine, listing the engines this deployment has; "degraded"
while the limits' Redis does not answer) and ``/metrics``
(Prometheus). No key needed; they say nothing about any account."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .. import schema
from ..errors import BridgeError, SchemaOutdated
from ..services import services

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    svc = services()
    checks: dict[str, str] = {}
    try:
        with svc.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
        schema.ensure_current(svc.db.engine)
        checks["schema"] = "ok"
    except SQLAlchemyError as error:
        checks.setdefault("database", f"unreachable ({type(error).__name__})")
    except SchemaOutdated:
        checks["schema"] = "outdated: run templateto-bridge init"
    checks["delivery"] = svc.delivery.health()
    checks["rendering"] = svc.renderer.health()
    engines: dict[str, Any] = {}
    if checks["rendering"] == "ok":
        try:
            engines = svc.renderer.engines()
        except BridgeError as error:
            checks["pdf_engine"] = f"unknown ({error.code})"
        else:
            default = engines["default"]
            checks["pdf_engine"] = (
                "ok" if default in engines["available"] else f"{default} is not installed"
            )
    ready = all(value in {"ok", "separate workers"} for value in checks.values())
    status = "ready" if ready else "not ready"
    if svc.redis is not None:
        # Without Redis the limits still count, each process apart: serving goes on.
        if svc.redis.check():
            checks["redis"] = "ok"
        else:
            checks["redis"] = "unreachable: abuse limits count locally"
            status = "degraded" if ready else status
    return {"status": status, "checks": checks, "pdf_engines": engines}, 200 if ready else 503


@blueprint.get("/metrics")
def metrics() -> Response:
    # content_type, not mimetype: Flask would add a second charset to this one.
    return Response(services().metrics.exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
