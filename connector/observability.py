"""Per request: an id (echoed in ``X-Request-Id``), the metrics, and one JSON log line."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from .clients import classify
from .services import services

REQUEST_ID_HEADER = "X-Request-Id"
# A caller's own id is kept when it is plain (a proxy's or a client's trace id), else replaced.
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
log = logging.getLogger("bridge.request")


def _start() -> None:
    g.started = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _PLAIN_ID.match(given) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    metrics = services().metrics
    metrics.requests.labels(route, request.method, str(response.status_code)).inc()
    metrics.latency.labels(route, request.method).observe(elapsed)
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers[REQUEST_ID_HEADER] = request_id
    principal = g.get("principal")
    log.info(
        "request",
        extra={
            "request_id": request_id,
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 1),
            "client": classify(request.headers.get("User-Agent")).value,
            "remote_addr": request.remote_addr,
            "key_id": principal.key_id if principal is not None else None,
        },
    )
    return response


def observe_requests(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
