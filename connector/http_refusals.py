"""Requests that gunicorn's HTTP parser refuses before the app sees them (a malformed request
line or header, a line or headers too long, an unknown transfer coding) answered in the API's
JSON error shape, with a request id, instead of gunicorn's HTML page: a client's bad HTTP is
always a 4xx, never a 5xx."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.http import errors as http
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker

from .errors import BridgeError
from .logs import ENVIRON_KEY
from .observability import REQUEST_ID_HEADER, new_request_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refusal:
    status: HTTPStatus
    code: str
    # "{detail}" is the parser's reason, which names the offending part.
    message: str

    def error(self, detail: str) -> BridgeError:
        error = BridgeError(self.message.format(detail=detail), code=self.code)
        error.status = self.status.value
        return error


# Named, as the app raises it too, when it reads a chunked body (app.py).
MALFORMED_CHUNKED_BODY = Refusal(
    HTTPStatus.BAD_REQUEST,
    "malformed_chunked_body",
    "The chunked request body is not valid ({detail}). Send it with a Content-Length instead, "
    "or chunked as HTTP/1.1 defines.",
)

# These subclass the request-header errors, but are the app's fault: gunicorn answers them 500.
_APP_ERRORS = (http.InvalidResponseHeader, http.InvalidResponseHeaderName)

REFUSALS: tuple[tuple[type[Exception] | tuple[type[Exception], ...], Refusal], ...] = (
    (
        (
            http.InvalidRequestLine,
            http.InvalidRequestMethod,
            http.InvalidHTTPVersion,
            http.InvalidH2CPreface,
        ),
        Refusal(
            HTTPStatus.BAD_REQUEST,
            "malformed_request_line",
            "The request line is not valid HTTP/1.1 ({detail}). Send `METHOD /path HTTP/1.1`, with "
            "the method in capitals and the path percent-encoded.",
        ),
    ),
    (
        (
            http.InvalidHeader,
            http.InvalidHeaderName,
            http.ObsoleteFolding,
            http.InvalidSchemeHeaders,
        ),
        Refusal(
            HTTPStatus.BAD_REQUEST,
            "malformed_header",
            "A request header is not valid HTTP ({detail}). Header names are letters, digits "
            "and dashes; values hold no control characters and no line folding; Host, "
            "Content-Length and Content-Type appear at most once.",
        ),
    ),
    (
        (http.InvalidChunkSize, http.ChunkMissingTerminator, http.InvalidChunkExtension),
        MALFORMED_CHUNKED_BODY,
    ),
    (
        (http.InvalidProxyLine, http.InvalidProxyHeader),
        Refusal(
            HTTPStatus.BAD_REQUEST,
            "malformed_proxy_line",
            "The PROXY protocol line is not valid ({detail}). Check the proxy in front of the "
            "service.",
        ),
    ),
    (
        # RFC 9112 suggests 501 for a coding the server does not know; but the coding is the
        # client's choice and only the client can change it, so it is the client's error.
        http.UnsupportedTransferCoding,
        Refusal(
            HTTPStatus.BAD_REQUEST,
            "unsupported_transfer_coding",
            "The request's Transfer-Encoding is not supported ({detail}). Send the body with a "
            "Content-Length, or with `Transfer-Encoding: chunked`.",
        ),
    ),
    (
        http.LimitRequestLine,
        Refusal(
            HTTPStatus.REQUEST_URI_TOO_LONG,
            "request_line_too_long",
            "The request line is too long ({detail}). Send long values in the request body, "
            "not in the address.",
        ),
    ),
    (
        http.LimitRequestHeaders,
        Refusal(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "The request's headers are too many or too large ({detail}). Send at most 100 "
            "headers of at most 8,190 bytes each.",
        ),
    ),
    (
        http.ExpectationFailed,
        Refusal(
            HTTPStatus.EXPECTATION_FAILED,
            "expectation_failed",
            "The Expect header cannot be met ({detail}). Remove it: only "
            "`Expect: 100-continue` is understood.",
        ),
    ),
    (
        http.ForbiddenProxyRequest,
        Refusal(
            HTTPStatus.FORBIDDEN,
            "proxy_forbidden",
            "PROXY protocol lines are not accepted from this address ({detail}).",
        ),
    ),
)


def refusal_for(error: Exception) -> Refusal | None:
    """The JSON refusal for an error of gunicorn's HTTP parser; None for any other error."""
    if isinstance(error, _APP_ERRORS):
        return None
    for kinds, refusal in REFUSALS:
        if isinstance(error, kinds):
            return refusal
    return None


class JsonRefusingWorker(ThreadWorker):
    """gunicorn's threaded worker, answering the requests its parser refuses with JSON."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        refusal = refusal_for(exc)
        if refusal is None:
            super().handle_error(req, client, addr, exc)
            return
        started = datetime.now()
        request_id = new_request_id()
        # The parser's reason may quote the request line, query string and all: it goes to the
        # client who sent it, never to the log.
        log.warning(
            "refused malformed HTTP",
            extra={"code": refusal.code, "error": type(exc).__name__, "request_id": request_id},
        )
        body = json.dumps(refusal.error(str(exc)).to_dict(), separators=(",", ":")).encode()
        head = (
            f"HTTP/1.1 {refusal.status.value} {refusal.status.phrase}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{REQUEST_ID_HEADER}: {request_id}\r\n\r\n"
        )
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except OSError:
            log.debug("the client left before its refusal was sent")
        # Only header errors come with the request they refused (other errors' ``req`` is text).
        if req is None and isinstance(exc, (http.InvalidHeader, http.InvalidHeaderName)):
            req = exc.req
        if req is not None:
            self._log_access(req, client, addr, refusal, request_id, len(body), started)

    def _log_access(
        self,
        req: Any,
        client: Any,
        addr: Any,
        refusal: Refusal,
        request_id: str,
        length: int,
        started: datetime,
    ) -> None:
        address = addr or ("", -1)  # a unix socket has none
        environ = default_environ(req, client, self.cfg)
        environ.update(PATH_INFO=req.path, REMOTE_ADDR=address[0], REMOTE_PORT=str(address[1]))
        environ[ENVIRON_KEY] = {"request_id": request_id, "route": None, "key_id": None}
        response = Response(req, client, self.cfg)
        response.status = f"{refusal.status.value} {refusal.status.phrase}"
        response.response_length = length
        self.log.access(response, req, environ, datetime.now() - started)
