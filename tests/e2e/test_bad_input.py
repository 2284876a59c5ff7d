"""Bad input at CI size: schemathesis and hypothesis-drawn raw requests against a real server
(the machinery of ``benchmarks/bad_input.py``, hundreds of requests instead of thousands). No
5xx, no stack trace, no request left unanswered, every API error JSON with ``error.code`` and
``error.message``, bodies over the limit refused with 413, nothing stored lost.

Below, the findings of docs/bad-input.md that only a raw socket can send are replayed exactly
(the others have their tests in tests/api/test_input_edges.py and tests/e2e/test_http_edges.py).
"""

from __future__ import annotations

import json
import os

import pytest

from benchmarks.bad_input import (
    RawRequest,
    Result,
    error_shape_problem,
    live_service,
    problems,
    run,
    send,
)

pytest.importorskip("schemathesis")

SEED = 20261128


def _database() -> str:
    """SQLite, or a throwaway database on the PostgreSQL server of TEST_DATABASE_URL."""
    return os.environ.get("TEST_DATABASE_URL") or "sqlite"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Result:
    return run(
        tmp_path_factory.mktemp("bad-input"),
        total=800,
        database=_database(),
        seed=SEED,
        schemathesis_phases="fuzzing,stateful",
        schemathesis_examples=4,
    )


def test_hundreds_of_generated_requests_were_sent(result: Result) -> None:
    assert result.tally.total >= 800
    assert result.schemathesis.sent >= 150, result.schemathesis.output[-3000:]
    assert not result.schemathesis.errors
    assert {"schemathesis", "headers", "bodies", "paths", "web"} <= set(result.tally.sources)


def test_bad_input_gets_an_answer_never_a_5xx_and_json_errors_on_the_api(result: Result) -> None:
    found = result.tally.problem_exchanges
    assert not found, [(problems(e), e.method, e.target, e.status) for e in found]


def test_no_server_error_is_logged(result: Result) -> None:
    assert not result.logged_errors, [json.dumps(line)[:500] for line in result.logged_errors]


def test_bodies_over_the_limit_are_refused_with_413(result: Result) -> None:
    assert result.tally.statuses[("bodies", 413)] > 0
    assert result.tally.statuses[("web", 413)] > 0


def test_the_service_stays_ready_and_nothing_stored_is_lost(result: Result) -> None:
    assert not result.integrity.problems
    assert result.integrity.read_back > 10


# --- the open findings, replayed exactly -------------------------------------------------------


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    with live_service(tmp_path_factory.mktemp("findings"), _database()) as running:
        yield running


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "Padded", "body": "x"}' + b" " * 1_100_000,
        b'{"name": "' + b"a" * 1_100_000 + b'"}',
    ],
    ids=["an object and blank space", "one long string"],
)
def test_a_chunked_body_over_the_limit_is_a_413(service, body: bytes) -> None:
    headers = ((b"X-Api-Key", service.seeded.fuzz.key.encode()),
               (b"Content-Type", b"application/json"))  # fmt: skip
    request = RawRequest("finding", "", b"POST", b"/v1/templates", headers, body, chunked=True)
    assert send(service.port, request).status == 413


# What gunicorn's HTTP parser refuses before the app sees it (finding 6), by the refusal.
REFUSAL_STATUS = {
    "malformed_request_line": 400,
    "malformed_header": 400,
    "unsupported_transfer_coding": 400,  # gunicorn's own answer was a 501
    "request_line_too_long": 414,
    "expectation_failed": 417,
    "headers_too_large": 431,
}
MALFORMED_HTTP = [
    pytest.param(head, code, id=name)
    for name, head, code in [
        ("lower-case method", b"get /v1/me HTTP/1.1\r\n", "malformed_request_line"),
        ("HTTP/2.0 request line", b"GET /v1/me HTTP/2.0\r\n", "malformed_request_line"),
        ("raw UTF-8 in the path", "GET /v1/é HTTP/1.1\r\n".encode(), "malformed_request_line"),
        ("request line over 4094 bytes", b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n",
         "request_line_too_long"),
        ("header over 8190 bytes", b"GET /v1/me HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n",
         "headers_too_large"),
        ("over 100 headers", b"GET /v1/me HTTP/1.1\r\n" + b"X-H: v\r\n" * 101,
         "headers_too_large"),
        ("NUL in a header value", b"GET /v1/me HTTP/1.1\r\nX-Odd: a\x00b\r\n", "malformed_header"),
        ("invalid header name", b"GET /v1/me HTTP/1.1\r\nX Api-Key: v\r\n", "malformed_header"),
        ("negative Content-Length", b"POST /v1/templates HTTP/1.1\r\nContent-Length: -1\r\n",
         "malformed_header"),
        ("two Content-Types", b"GET /v1/me HTTP/1.1\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n",
         "malformed_header"),
        ("obsolete line folding", b"GET /v1/me HTTP/1.1\r\nX-Odd: a\r\n b\r\n", "malformed_header"),
        ("Expect other than 100-continue", b"GET /v1/me HTTP/1.1\r\nExpect: n8n\r\n",
         "expectation_failed"),
        ("unknown transfer coding", b"POST /v1/me HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n",
         "unsupported_transfer_coding"),
    ]
]  # fmt: skip


@pytest.mark.parametrize(("head", "code"), MALFORMED_HTTP)
def test_malformed_http_gets_a_json_4xx_with_a_request_id(service, head: bytes, code: str) -> None:
    key = b"X-Api-Key: " + service.seeded.fuzz.key.encode()
    raw = head + b"Host: 127.0.0.1\r\n" + key + b"\r\nConnection: close\r\n\r\n"
    answer = send(service.port, RawRequest("finding", "", b"GET", b"/v1/me", raw_head=raw))
    assert answer.status == REFUSAL_STATUS[code]
    assert error_shape_problem(answer) is None, answer.response_body
    assert json.loads(answer.response_body)["error"]["code"] == code
    assert answer.response_headers["x-request-id"]


@pytest.mark.parametrize(
    "chunks",
    [
        pytest.param(b"zz\r\nabc\r\n0\r\n\r\n", id="a chunk size that is not hex"),
        pytest.param(b"3\r\nabcXY0\r\n\r\n", id="a chunk without its CRLF"),
        pytest.param(b"3;\x01\r\nabc\r\n0\r\n\r\n", id="a control character in an extension"),
    ],
)
def test_a_malformed_chunked_body_is_a_400_not_a_500(service, chunks: bytes) -> None:
    head = (
        b"POST /v1/templates HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: "
        + service.seeded.fuzz.key.encode()
        + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n"
    )
    request = RawRequest("finding", "", b"POST", b"/v1/templates", body=chunks, raw_head=head)
    answer = send(service.port, request)
    assert answer.status == 400
    assert json.loads(answer.response_body)["error"]["code"] == "malformed_chunked_body"
