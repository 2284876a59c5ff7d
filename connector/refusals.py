"""Bad input, refused before any route runs, in the API's JSON error shape.

Werkzeug and gunicorn refuse most of it themselves; this module holds only what they leave out:

- gunicorn's HTTP parser answers a malformed request line or header, an oversized one or an
  unknown transfer coding with an HTML page (and some with a 500): ``JsonRefusingWorker``
  answers them in our shape, with a request id, as the 4xx they are.
- Werkzeug refuses a body over ``MAX_CONTENT_LENGTH`` only when a route reads it:
  ``refuse_oversized_body`` answers 413 from the declared length before anything else, even on
  routes that never read a body, and reads the body first so that a client that pools
  connections keeps its connection; a chunked body (no declared length) is read up to the limit.
- ``refuse_nul_characters``: NUL in the path or the query, which PostgreSQL cannot store.
- ``require_json_body`` (on the routes that act for a key, after authentication): JSON is UTF-8
  (Python would take UTF-16 too), holds no NUL or lone surrogate, and a syntax error is a
  ``400 malformed_json`` with its line and column, not Werkzeug's bare 400.
"""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import datetime
from http import HTTPStatus
from typing import Any

from flask import Flask, request
from gunicorn import util
from gunicorn.http import errors as http
from gunicorn.http.errors import ParseException
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.exceptions import BadRequest as WerkzeugBadRequest

from .errors import (
    BridgeError,
    ExpectationFailed,
    HeadersTooLarge,
    InvalidCharacters,
    InvalidEncoding,
    MalformedChunkedBody,
    MalformedHeader,
    MalformedJson,
    MalformedProxyLine,
    MalformedRequestLine,
    PayloadTooLarge,
    PermissionDenied,
    RequestLineTooLong,
    UnsupportedTransferCoding,
)
from .logs import ENVIRON_KEY
from .observability import REQUEST_ID_HEADER, new_request_id

log = logging.getLogger(__name__)
DRAIN_OVERSIZED_UP_TO = 16 * 1024 * 1024
_UNSTORABLE = re.compile(
    rb"\x00|\\u0000"
    rb"|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def install(app: Flask, max_body_bytes: int) -> None:
    """Refuse oversized bodies and NUL characters on every route of ``app``."""
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.before_request(refuse_oversized_body)
    app.before_request(refuse_nul_characters)


def refuse_oversized_body() -> None:
    limit, declared, environ = request.max_content_length, request.content_length, request.environ
    assert limit is not None  # install() sets it
    if declared is not None and declared > limit:
        if declared <= DRAIN_OVERSIZED_UP_TO:
            # Read and drop it: a connection closed with a body unread may be reset before the
            # client reads the 413, and a client that pools connections (Zapier's, n8n's) then
            # fails its next request too.
            _discard(environ["wsgi.input"], declared)
        raise PayloadTooLarge(
            f"The request body is {declared} bytes; this service accepts at most {limit}."
        )
    if declared is None and "HTTP_TRANSFER_ENCODING" in environ:
        # A chunked body declares no length: read it here, up to one byte over the limit, so
        # that a longer one is refused rather than cut short and used.
        try:
            body = environ["wsgi.input"].read(limit + 1)
        except ParseException as error:  # read here, so not refused by gunicorn's worker
            raise MalformedChunkedBody(_CHUNKED_BODY_MESSAGE.format(detail=error)) from error
        if len(body) > limit:
            _discard(environ["wsgi.input"], DRAIN_OVERSIZED_UP_TO)
            raise PayloadTooLarge(
                f"The request body is over the {limit} bytes this service accepts."
            )
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))


def _discard(stream: Any, length: int) -> None:
    while length > 0:
        chunk = stream.read(min(length, 65_536))
        if not chunk:
            return
        length -= len(chunk)


def refuse_nul_characters() -> None:
    if "\x00" in request.path or (
        request.query_string
        and any("\x00" in name or "\x00" in value for name, value in request.args.items(multi=True))
    ):
        raise InvalidCharacters(
            "The address holds a NUL character. Remove it and send the request again."
        )


def require_json_body() -> None:
    body = request.get_data(cache=True) if request.is_json else b""
    if not body:
        return
    _require_utf8(body)
    if _UNSTORABLE.search(body):
        raise InvalidCharacters(
            "The body holds characters that cannot be stored (NUL or a lone surrogate). Remove "
            "them and send it again."
        )
    try:
        request.get_json()
    except RecursionError:
        raise MalformedJson("The JSON body is nested too deeply. Send a flatter object.") from None
    except WerkzeugBadRequest:
        try:
            json.loads(body)
        except ValueError as error:
            where = ""
            if isinstance(error, json.JSONDecodeError):
                where = f" at line {error.lineno}, column {error.colno} ({error.msg})"
            raise MalformedJson(
                f"The request body is not valid JSON{where}. Send a JSON object."
            ) from None
        raise


def _require_utf8(body: bytes) -> None:
    encoding = json.detect_encoding(body)
    if encoding not in ("utf-8", "utf-8-sig"):
        raise InvalidEncoding(f"The body is {encoding.upper()} text; send JSON encoded as UTF-8.")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        # Also lone surrogates written as raw bytes (CESU-8), which no database can store.
        raise InvalidEncoding(
            f"The body is not valid UTF-8 (byte {error.start} is {body[error.start]:#04x}); send "
            "JSON encoded as UTF-8."
        ) from None


# --- what gunicorn's parser refuses ----------------------------------------------------------

# These subclass the request-header errors, but are the app's fault: gunicorn answers them 500.
_APP_ERRORS = (http.InvalidResponseHeader, http.InvalidResponseHeaderName)
_CHUNKED_BODY_MESSAGE = (
    "The chunked request body is not valid ({detail}). Send it with a Content-Length instead, "
    "or chunked as HTTP/1.1 defines."
)
# "{detail}" is the parser's reason, which names the offending part.
PARSER_REFUSALS: tuple[tuple[tuple[type[Exception], ...], type[BridgeError], str], ...] = (
    (
        (
            http.InvalidRequestLine,
            http.InvalidRequestMethod,
            http.InvalidHTTPVersion,
            http.InvalidH2CPreface,
        ),
        MalformedRequestLine,
        "The request line is not valid HTTP/1.1 ({detail}). Send `METHOD /path HTTP/1.1`, with "
        "the method in capitals and the path percent-encoded.",
    ),
    (
        (
            http.InvalidHeader,
            http.InvalidHeaderName,
            http.ObsoleteFolding,
            http.InvalidSchemeHeaders,
        ),
        MalformedHeader,
        "A request header is not valid HTTP ({detail}). Header names are letters, digits and "
        "dashes; values hold no control characters and no line folding; Host, Content-Length "
        "and Content-Type appear at most once.",
    ),
    (
        (http.InvalidChunkSize, http.ChunkMissingTerminator, http.InvalidChunkExtension),
        MalformedChunkedBody,
        _CHUNKED_BODY_MESSAGE,
    ),
    (
        (http.InvalidProxyLine, http.InvalidProxyHeader),
        MalformedProxyLine,
        "The PROXY protocol line is not valid ({detail}). Check the proxy in front of the service.",
    ),
    (
        (http.UnsupportedTransferCoding,),
        UnsupportedTransferCoding,
        "The request's Transfer-Encoding is not supported ({detail}). Send the body with a "
        "Content-Length, or with `Transfer-Encoding: chunked`.",
    ),
    (
        (http.LimitRequestLine,),
        RequestLineTooLong,
        "The request line is too long ({detail}). Send long values in the request body, not in "
        "the address.",
    ),
    (
        (http.LimitRequestHeaders,),
        HeadersTooLarge,
        "The request's headers are too many or too large ({detail}). Send at most 100 headers "
        "of at most 8,190 bytes each.",
    ),
    (
        (http.ExpectationFailed,),
        ExpectationFailed,
        "The Expect header cannot be met ({detail}). Remove it: only `Expect: 100-continue` is "
        "understood.",
    ),
    (
        (http.ForbiddenProxyRequest,),
        PermissionDenied,
        "PROXY protocol lines are not accepted from this address ({detail}).",
    ),
)


def parser_refusal(error: Exception) -> BridgeError | None:
    """Our answer to an error of gunicorn's HTTP parser; None for any other error."""
    if isinstance(error, _APP_ERRORS):
        return None
    for kinds, refusal, message in PARSER_REFUSALS:
        if isinstance(error, kinds):
            return refusal(message.format(detail=error))
    return None


class JsonRefusingWorker(ThreadWorker):
    """gunicorn's threaded worker, answering the requests its parser refuses with JSON."""

    def handle_error(self, req: Any, client: Any, addr: Any, exc: Exception) -> None:
        refused = parser_refusal(exc)
        if refused is None:
            super().handle_error(req, client, addr, exc)
            return
        started = datetime.now()
        request_id = new_request_id()
        # The parser's reason may quote the request line, query string and all: it goes to the
        # client who sent it, never to the log.
        log.warning(
            "refused malformed HTTP",
            extra={"code": refused.code, "error": type(exc).__name__, "request_id": request_id},
        )
        body = json.dumps(refused.to_dict(), separators=(",", ":")).encode()
        status = HTTPStatus(refused.status)
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
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
            self._log_access(req, client, addr, status, request_id, len(body), started)

    def _log_access(
        self,
        req: Any,
        client: Any,
        addr: Any,
        status: HTTPStatus,
        request_id: str,
        length: int,
        started: datetime,
    ) -> None:
        address = addr or ("", -1)  # a unix socket has none
        environ = default_environ(req, client, self.cfg)
        environ.update(PATH_INFO=req.path, REMOTE_ADDR=address[0], REMOTE_PORT=str(address[1]))
        environ[ENVIRON_KEY] = {"request_id": request_id, "route": None, "key_id": None}
        response = Response(req, client, self.cfg)
        response.status = f"{status.value} {status.phrase}"
        response.response_length = length
        self.log.access(response, req, environ, datetime.now() - started)
