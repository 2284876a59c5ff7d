"""Per request: an id (echoed in ``X-Request-Id``) and the metrics. The request's log line is
written by the server's access log (:class:`connector.logs.JsonAccessLogger`), from what the app
leaves in the WSGI environ: every server setting, logging included, then costs a bare app the
same."""

from __future__ import annotations

import random
import re
import time

from flask import Flask, Response, g, request

from . import keys
from .logs import ENVIRON_KEY
from .services import services

REQUEST_ID_HEADER = "X-Request-Id"
# A caller's own id is kept when it is plain (a proxy's or a client's trace id), else replaced.
_PLAIN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_request_id() -> str:
    # Not a secret, only unique: the random module is reseeded in each forked worker, and is
    # much cheaper than os.urandom here.
    return f"{random.getrandbits(96):024x}"


def _start() -> None:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request.environ[ENVIRON_KEY] = {
        # Echoed in the answer: never a key value someone pasted there.
        "request_id": given
        if _PLAIN_ID.match(given) and keys.PREFIX not in given.lower()
        else new_request_id(),
        "started": time.perf_counter(),
    }


def _finish(response: Response) -> Response:
    environ = request.environ
    seen = environ.get(ENVIRON_KEY)
    if seen is None:  # it failed before the hooks ran (opening its session, say)
        seen = environ[ENVIRON_KEY] = {"request_id": new_request_id()}
    elapsed = time.perf_counter() - seen.get("started", time.perf_counter())
    rule = request.url_rule
    route = rule.rule if rule is not None else "unmatched"
    services().metrics.request_answered(route, request.method, response.status_code, elapsed)
    response.headers[REQUEST_ID_HEADER] = seen["request_id"]
    principal = g.get("principal")
    seen["route"] = route
    seen["key_id"] = principal.key_id if principal is not None else None
    return response


def observe_requests(app: Flask) -> None:
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
