"""Bad input at volume: thousands of odd and generated requests, and not one 5xx, stack trace
or non-JSON error on the API routes; stored data survives all of it. Exit status 1 on a finding.

    python -m benchmarks.bad_input                          # SQLite, 12,000 requests
    python -m benchmarks.bad_input --database postgresql --requests 20000 --seed 7

Raw HTTP to a real server for what only its parser reads; in this process, against the app,
tables of what schemathesis does not send, then schemathesis's Python API. What is sent and how
each answer is judged: docs/benchmarks.md, "Bad input".
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import logging
import logging.handlers
import random
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis.errors import Flaky, Unsatisfiable
from sqlalchemy import text

from benchmarks import live
from connector.accounts import NewUser, Role
from connector.api_keys import Permission
from connector.app import create_app
from connector.clients import Client
from connector.config import Settings
from connector.documents import NewDocument
from connector.events import EventType
from connector.paging import PageQuery
from connector.rendering import Format
from connector.services import EXTENSION, Services
from connector.templates import TemplateFields
from connector.webhooks.subscriptions import NewHook

API_PREFIXES = ("/v1/", "/zapier/", "/n8n/", "/render/")
LIMIT = 1_000_000  # BRIDGE_MAX_BODY_BYTES's default
EMAIL, PASSWORD = "fuzz-admin@example.com", "correct horse battery staple"
DECOY_ID = "protected_by_bad_input"
TRACEBACK = re.compile(rb"Traceback \(most recent call last\)|File \"/[^\"]+\.py\", line \d+")
STATEFUL_SHARE = 0.1  # of schemathesis's requests


# --- what exists before the run ----------------------------------------------------------------
@dataclass(frozen=True)
class Account:
    id: str
    key: str  # an admin key's value
    key_id: str
    template_id: str
    document_id: str
    file_token: str


@dataclass(frozen=True)
class Seeded:
    fuzz: Account  # all traffic is for it (with its admin user's session for the web pages)
    bystander: Account  # nothing is sent for it: it must come through exactly as it was
    protected: set[str]  # the key every request authenticates with, the template renders use
    liquid: str  # a template generated requests replace with odd Liquid and render, never delete
    ids: dict[str, list[str]]  # real ones for each path parameter, another account's among them


def _account(services: Services, name: str) -> Account:
    account = services.accounts.create(name)
    key = services.keys.create(account.id, f"{name} admin", Permission.ADMIN)
    body = "<h1>Invoice {{ number }}</h1><p>{{ customer.name }} owes {{ total }}</p>"
    template = services.templates.create(account.id, TemplateFields(name="Invoice", body=body))
    data = {"number": 7, "customer": {"name": "Ada"}, "total": "€ 12"}
    new = NewDocument(template_id=template.id, format=Format.TXT, data=data)
    document = services.documents.create(account.id, new, Client.OTHER)
    token = (document.file_url or "").rsplit("/", 1)[-1]
    return Account(account.id, key.value, key.id, template.id, document.id, token)


def seed(services: Services) -> Seeded:
    """The fuzz account, its admin user, a scratch key and template (generated requests may
    roll, replace or delete them), a Liquid template, a hook with a delivery to retry; and the
    bystander account."""
    fuzz, bystander = _account(services, "Bad Input Ltd"), _account(services, "Bystander Ltd")
    services.accounts.add_user(fuzz.id, NewUser(email=EMAIL, password=PASSWORD, role=Role.ADMIN))
    scratch_key = services.keys.create(fuzz.id, "scratch")
    hook = NewHook(target_url="http://127.0.0.1:9/hook", events=[EventType.TEMPLATE_CREATED])
    hook_id = services.hooks.create(fuzz.id, fuzz.key_id, hook, "api").id
    # Created after the hook: their events make a delivery to retry.
    scratch = services.templates.create(fuzz.id, TemplateFields(name="Scratch", body="x")).id
    liquid = services.templates.create(fuzz.id, TemplateFields(name="Liquid", body="{{ a }}")).id
    ids = {
        "template_id": [scratch, liquid, bystander.template_id],
        "templateId": [fuzz.template_id, liquid],
        "key_id": [scratch_key.id, bystander.key_id],
        "document_id": [fuzz.document_id, bystander.document_id],
        "hook_id": [hook_id],
        "delivery_id": [services.hooks.deliveries(fuzz.id, hook_id, PageQuery()).data[0].id],
        "entry_id": [services.audit.list(fuzz.id, PageQuery()).data[0].id],
        "key": ["new_template", "new_document", "create_file", "find_template", "find_document"],
        # n8n's items by ID: a template or a document, of either account.
        "id": [fuzz.template_id, fuzz.document_id, bystander.document_id],
    }
    return Seeded(fuzz, bystander, {fuzz.key_id, fuzz.template_id}, liquid, ids)


def snapshot(services: Services, account_id: str) -> dict[str, list[Any]]:
    """Everything an account holds, as plain data, to compare before and after."""
    templates = services.templates.list(account_id, PageQuery(limit=100)).data
    documents = services.documents.list(account_id, PageQuery(limit=100), None).data
    return {
        "keys": [k.model_dump() for k in services.keys.list(account_id, include_deleted=True)],
        "templates": [services.templates.get(account_id, t.id).model_dump() for t in templates],
        "documents": [d.model_dump() for d in documents],
        "files": [services.documents.file(account_id, d.id).content for d in documents],
        "hooks": [h.model_dump() for h in services.hooks.list(account_id)],
    }


# --- answers and their judgement ---------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    source: str  # the table it comes from, or schemathesis's phase
    route: str  # the operation or route aimed at, e.g. "POST /v1/templates"
    request: str  # what was sent, to replay it
    status: int  # 0: no answer
    content_type: str
    body: bytes
    expect: int | None = None  # the one right status, where there is one
    expect_code: str = ""  # the one right error code, with a request id
    request_id: str = ""

    @property
    def code(self) -> str:
        with suppress(ValueError, KeyError, TypeError):
            return str(json.loads(self.body)["error"]["code"])
        return ""

    def problems(self) -> list[str]:
        """What is wrong with this answer; empty when nothing is."""
        found = ["no answer"] * (self.status == 0) + ["5xx"] * (self.status >= 500)
        if TRACEBACK.search(self.body):
            found.append("stack trace")
        if self.status >= 400 and self.route.partition(" ")[2].startswith(API_PREFIXES):
            found += [] if self.is_json_error() else ["not JSON with error.code and .message"]
        if self.expect and self.status not in (0, self.expect):
            found.append(f"not {self.expect}")
        if self.expect_code and (self.code != self.expect_code or not self.request_id):
            found.append(f"not {self.expect_code} with an X-Request-Id")
        return found

    def is_json_error(self) -> bool:
        """``{"error": {"code": "...", "message": "..."}}`` (a HEAD answer has no body)."""
        if not self.content_type.startswith("application/json"):
            return False
        with suppress(ValueError, KeyError, TypeError):
            error = json.loads(self.body)["error"]
            return all(isinstance(error[n], str) and error[n].strip() for n in ("code", "message"))
        return self.route.startswith("HEAD ")


@dataclass
class Finding:
    problems: set[str]
    example: Answer  # the first that showed it
    count: int = 0


@dataclass
class Tally:
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)  # by source and status
    findings: dict[tuple[str, int, str], Finding] = field(default_factory=dict)
    checks: set[str] = field(default_factory=set)  # schemathesis's, run on each of its answers
    check_failures: dict[str, list[Any]] = field(default_factory=dict)  # "check: title": n, first

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def add(self, answer: Answer) -> None:
        self.statuses[(answer.source, answer.status)] += 1
        if problems := answer.problems():
            # One finding per route, status and error code (or Content-Type, or why none).
            key = (answer.route, answer.status, answer.code or answer.content_type)
            finding = self.findings.setdefault(key, Finding(set(), answer))
            finding.problems.update(problems)
            finding.count += 1

    def add_check(self, result: Any, operation: str, status: int) -> None:
        failure = result.failure
        self.checks.add(result.name)
        if failure is not None:
            first = f"{operation}: {(failure.message or '').strip().partition(chr(10))[0][:160]}"
            key = f"{result.name}: {failure.title}, answered {status}"
            self.check_failures.setdefault(key, [0, first])[0] += 1


# --- raw sockets, to a real server -------------------------------------------------------------

GET = b"GET /v1/me HTTP/1.1\r\n"
# The answer each head must get: gunicorn's refusals, in the API's JSON (connector.refusals).
MALFORMED_HTTP = {
    (400, "malformed_request_line"): [
        b"get /v1/me HTTP/1.1\r\n", b"G@T /v1/me HTTP/1.1\r\n", b"GET /v1/me HTTP/2.0\r\n",
        b"GET /v1/me HTTP/0.9\r\n", b"GET /v1/me\r\n", "GET /v1/é HTTP/1.1\r\n".encode(),
        b"GET /v1/\x00 HTTP/1.1\r\n",
    ],
    (414, "request_line_too_long"): [b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n"],
    (431, "headers_too_large"): [GET + b"X-Big: " + b"b" * 9000 + b"\r\n",
                                 GET + b"X-H: v\r\n" * 101],
    (400, "malformed_header"): [
        GET + b"X-Odd: a\x00b\r\n", GET + b"X-Odd: a\x01b\r\n", GET + b"X Api-Key: v\r\n",
        GET + b"\xe9t\xe9: v\r\n", GET + b"X-Odd: a\r\n b\r\n", GET + b"Content-Length: abc\r\n",
        GET + b"Content-Type: a/b\r\nContent-Type: c/d\r\n",
        b"POST /v1/templates HTTP/1.1\r\nContent-Length: -1\r\n",
        b"POST /v1/templates HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n",
    ],
    (417, "expectation_failed"): [GET + b"Expect: n8n\r\n"],
    (400, "unsupported_transfer_coding"): [
        b"POST /v1/me HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n",
    ],
}  # fmt: skip
CHUNKED = b"POST /v1/templates HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
MALFORMED_CHUNKS = [
    b"zz\r\nabc\r\n0\r\n\r\n",
    b"3\r\nabcXY0\r\n\r\n",
    b"3;\x01\r\nabc\r\n0\r\n\r\n",
]
OVER_THE_LIMIT = [b'{"name": "' + b"a" * LIMIT + b'"}', b'{"name": "x"}' + b" " * LIMIT]


def raw_requests(key: str) -> Iterator[tuple[bytes, bytes, int, str]]:
    """(head, body, status, error code): each malformed head, then chunked bodies malformed or
    over the size limit (only a real server's parser reads chunks)."""
    ending = f"Host: 127.0.0.1\r\nX-Api-Key: {key}\r\nConnection: close\r\n\r\n".encode()
    for (status, code), heads in MALFORMED_HTTP.items():
        yield from ((head + ending, b"", status, code) for head in heads)
    for chunks in MALFORMED_CHUNKS:
        yield CHUNKED + ending, chunks, 400, "malformed_chunked_body"
    for body in OVER_THE_LIMIT:
        pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
        yield CHUNKED + ending, chunks + b"0\r\n\r\n", 413, "payload_too_large"


def send_raw(port: int, head: bytes, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are over a new connection; the answer, read by http.client."""
    with socket.create_connection((live.HOST, port), timeout=60) as connection:
        with suppress(OSError):  # the server stopped reading: its answer may be there anyway
            connection.sendall(head + body)
        answer = http.client.HTTPResponse(connection)
        try:
            answer.begin()
            return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
        except (http.client.HTTPException, OSError) as error:
            return 0, {}, repr(error).encode()


def run_raw(settings: Settings, log: Path, key: str, tally: Tally) -> list[str]:
    """Send the raw requests to a real server; what was wrong with it afterwards."""
    with live.served(settings, log, deliver=False) as server:
        port = int(server.url.rsplit(":", 1)[1])
        for head, body, status, code in raw_requests(key):
            got, headers, content = send_raw(port, head, body)
            route, shown = " ".join(head.decode("latin-1").split(" ")[:2]), f"{head[:300]!r}"
            answer = (got, headers.get("content-type", ""), content, status, code)
            request_id = headers.get("x-request-id", "")
            tally.add(Answer("raw HTTP", route, shown, *answer, request_id=request_id))
        ready = requests.get(f"{server.url}/readyz", timeout=30).status_code
    failed = re.compile(r'"level": "(ERROR|CRITICAL)"|Traceback')
    logged = [line for line in log.read_text().splitlines() if failed.search(line)]
    return [f"the server's /readyz answered {ready}"] * (ready != 200) + logged


# --- tables of what schemathesis does not send, in this process --------------------------------

ODD_BODIES = [
    *(b"[" * n + b"1" + b"]" * n * closed for n in (1000, 100_000, 400_000) for closed in (0, 1)),
    b'{"data":[' * 5000 + b"1", b'{"a":' * 990 + b"1" + b"}" * 990,
    *(b'{"name": "a' + byte + b'b"}' for byte in
      (b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xf0\x28\x8c\xbc", b"\xc0\xaf", b"\xed\xa0\x80")),
    *(b'{"name": ' + value + b"}" for value in
      (b'"a\\u0000b"', b'"a\x00b"', b'"\\ud800"', b'"\\udc00\\ud800"', b'"a\\ud83d\\ude00b"',
       b"1" + b"0" * 5000, b"1e999", b"NaN", b"Infinity", b"0x10", b"01", b"9" * 4301)),
    b"{", b'{"a":1,}', b"{'a': 1}", b'{"a":1}{"b":2}', b'{"a":1} trailing', b"/* c */ {}",
    b"\xef\xbb\xbf{}", b"null", b"[]", b'"str"', b" ", b"", b"{]", b'{"a": "\\x41"}', b"\x00",
    *(json.dumps({"name": "Łódź €"}, ensure_ascii=False).encode(codec, "replace")
      for codec in ("utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252")),
]  # fmt: skip
CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                 "application/json; charset=utf-16", "application/json; charset=bogus",
                 "application/vnd.api+json", "\xe9/\xff", ""]  # fmt: skip
ODD_METHODS = ["HEAD", "OPTIONS", "PATCH", "TRACE", "PROPFIND", "SEARCH", "PUT", "DELETE"]
ODD_SEGMENTS = ["", "..", "%2e%2e", "%00", "%ff", "%c0%af", ";jsessionid=1", "🧾", "a" * 2000,
                "%25", "%2F", "x/y/z"]  # fmt: skip
ODD_QUERIES = ["limit=1e3", "limit=-1", "limit=10001", "limit=%D9%A1", "limit=" + "9" * 400,
               "cursor=%zz", "cursor=" + base64.urlsafe_b64encode(b"not a date|x").decode(),
               "cursor=====", "offset=NaN", "type=nope&type=", "template_id=%00", "strict=2",
               "include_deleted=maybe", "api_key=tt_live_x", "limit[]=1&%F0%9F=1"]  # fmt: skip
# Template data typed as JSON text (Zapier's advanced input, n8n's JSON field).
DATA_TEXTS = [
    "{not json", "[]", '"x"', "null", '{"a": NaN}', '{"a": 1e999}', '{"a": "\\ud800"}',
    '{"a": "\\u0000"}', '{"a": ' + "9" * 5000 + "}", "[" * 100_000,
    '{"a": ' + "[" * 990 + "]" * 990 + "}", '{"a": 1, "a": 2}', "\ufeff{}",
]  # fmt: skip
URLS = ["http://127.0.0.1:9/hook", "http://127.0.0.1:9/" + "a" * 3000, "ftp://127.0.0.1/",
        "http://[::1]:9/", "http://user:pw@127.0.0.1:9/", "javascript:alert(1)",
        "http://127.0.0.1:99999/", "http://ex ample/", "http://\u00e9.test/", ""]  # fmt: skip
WEB_ROUTES = ["/signin", "/signout", "/generate/api-keys", "/", "/healthz", "/readyz", "/metrics",
              "/openapi.json", "/openapi/swagger", "/static/web/app.js", "/static/../secret_key",
              "/generate/api-keys/{key}/roll", "/generate/api-keys/{key}/delete", "/nowhere",
              "/files/{token}", "/files/{token}x", "/files/{other}", "/files/a.b.c", "/files/%00",
              "/files/..%2f..%2fdata"]  # fmt: skip
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Request:
    source: str  # the table it comes from
    route: str  # "METHOD /path/{parameter}"
    path: str  # with the ids filled in, and any query
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str = "application/json"
    expect: int | None = None
    session: str = ""  # for the web pages: "signed in", "none", "garbage" or "tampered"

    def __str__(self) -> str:
        body = "" if self.body is None else f" {self.content_type} body {self.body[:300]!r}"
        return f"{self.method} {self.path[:300]} {dict(self.headers)}{body}"


def api_requests(seeded: Seeded, routes: list[str]) -> Iterator[Request]:
    """Odd bodies, content types, methods, paths and queries for each of ``routes`` ("METHOD
    /path/{id}", every documented operation), with the fuzz account's key."""
    key = {"X-Api-Key": seeded.fuzz.key}
    for route in routes:
        method, template = route.split(" ", 1)
        path = template.format(**{name: ids[0] for name, ids in seeded.ids.items()})
        if method in {"POST", "PUT"}:
            yield from (Request("bodies", route, path, method, key, body) for body in ODD_BODIES)
            for content_type in CONTENT_TYPES:
                yield Request("bodies", route, path, method, key, b"{}", content_type)
            for body in OVER_THE_LIMIT:
                yield Request("bodies", route, path, method, key, body, expect=413)
        # The bodies of these two are not in /openapi.json: the Zapier bridge reads them itself.
        fields, event = {"template": seeded.fuzz.template_id, "advanced": True}, "document.created"
        undeclared = {
            "POST /zapier/creates/create_file": [{**fields, "data": text} for text in DATA_TEXTS],
            "POST /zapier/hooks": [{"target_url": url, "event": event} for url in URLS],
        }
        for body in undeclared.get(route, []):
            yield Request("bodies", route, path, method, key, json.dumps(body).encode())
        yield from (Request("paths", f"{odd} {template}", path, odd, key) for odd in ODD_METHODS)
        yield from (Request("paths", route, f"{path}/{odd}", method, key) for odd in ODD_SEGMENTS)
        for query in ODD_QUERIES if method == "GET" else []:
            yield Request("paths", route, f"{path}?{query}", method, key)


def key_requests(seeded: Seeded) -> Iterator[Request]:
    """API keys missing, empty, garbage, non-ASCII, huge, padded, quoted, as a bearer token,
    an unfilled placeholder, another account's mangled; on each surface."""
    valid = seeded.fuzz.key
    values = ["", "garbage", "tt_live_" + "\xe9" * 38, "a" * 8000, f"  {valid}\t ", f'"{valid}"',
              f"Bearer {valid}", "{{bundle.authData.api_key}}", seeded.bystander.key[:-1] + "!",
              valid + "x", valid.upper()]  # fmt: skip
    body = json.dumps({"name": "Key test", "body": "x"}).encode()
    render = f"POST /render/txt/{seeded.fuzz.template_id}"
    for route in ["GET /v1/me", "GET /zapier/me", "GET /n8n/me", "POST /v1/templates", render]:
        method, path = route.split(" ")
        for headers in [{}, *({"X-Api-Key": value} for value in values)]:
            yield Request("keys", route, path, method, headers, body if method == "POST" else None)


def web_requests(seeded: Seeded, csrf: str) -> Iterator[Request]:
    """The routes outside the API description: signed in or not, with a valid, missing or
    forged CSRF token, forms odd or over the size limit."""
    multipart = '--zz\r\nContent-Disposition: form-data; name="name"\r\n\r\nx'
    forms = [
        (f"csrf_token={csrf}&name={'%C5%81' * 300}&permission=root&grace=-1", FORM, {}),
        (f"csrf_token=x.y.z&email={EMAIL}&password=x&next=//evil", FORM, {}),
        (f"email={EMAIL}&password=x", FORM, {"X-CSRF-Token": csrf}),
        (multipart, "multipart/form-data; boundary=b", {}),
        (json.dumps({"csrf_token": csrf, "name": "\u0000"}), "application/json", {}),
        ("name=" + "a" * LIMIT, FORM, {}),
    ]
    ids = {"key": seeded.ids["key_id"][0], "token": seeded.fuzz.file_token}
    for route in WEB_ROUTES:
        path = route.format(**ids, other=seeded.bystander.file_token)
        for session in ("signed in", "none", "garbage", "tampered"):
            yield Request("web", f"GET {route}", path, session=session)
            for body, content_type, headers in forms:
                expect = 413 if len(body) > LIMIT else None
                post = (path, "POST", headers, body.encode(), content_type, expect, session)
                yield Request("web", f"POST {route}", *post)


def send_in_process(client: FlaskClient, tally: Tally, seeded: Seeded, routes: list[str]) -> None:
    cookie, csrf = sign_in(client)
    sessions = {"signed in": cookie, "garbage": "x.y.z", "tampered": cookie[:-3] + "AAA"}
    tables = api_requests(seeded, routes), key_requests(seeded), web_requests(seeded, csrf)
    for request in (request for table in tables for request in table):
        client.delete_cookie("bridge_session")
        if request.session in sessions:
            client.set_cookie("bridge_session", sessions[request.session])
        content_type = request.content_type if request.body is not None else None
        response = client.open(
            request.path,
            method=request.method,
            data=request.body,
            headers=dict(request.headers),
            content_type=content_type,
        )
        answer = (response.status_code, response.content_type or "", response.get_data())
        tally.add(Answer(request.source, request.route, str(request), *answer, request.expect))


def sign_in(client: FlaskClient) -> tuple[str, str]:
    """Sign the fuzz admin in: their session cookie, and the API keys page's CSRF token."""
    token = re.compile(r'name="csrf_token" value="([^"]+)"')
    form = token.search(client.get("/signin").get_data(as_text=True))
    assert form is not None, "no CSRF token on /signin"
    client.post("/signin", data={"email": EMAIL, "password": PASSWORD, "csrf_token": form[1]})
    page = token.search(client.get("/generate/api-keys").get_data(as_text=True))
    cookie = client.get_cookie("bridge_session")
    assert page is not None and cookie is not None, "not signed in on the API keys page"
    return cookie.value, page[1]


# --- schemathesis, in this process -------------------------------------------------------------

LIQUID_BODIES = [
    "{% for i in (1..1000000) %}{{ i }}{% endfor %}",
    "{% for a in (1..1000) %}{% for b in (1..1000) %}x{% endfor %}{% endfor %}",
    "{% assign s = 'xxxxxxxxxx' %}" + "{% assign s = s | append: s %}" * 40 + "{{ s | size }}",
    "{{ 2 | times: 99999999999999999999 | times: 99999999999999999999 }}",
    "{% capture c %}" * 200 + "x" + "{% endcapture %}" * 200,
    "{% if a %}" * 500 + "x" + "{% endif %}" * 500,
    "{{ a.b.c.d.e.f.g.h.i.j.k.l }}{{ a[0][1][2] }}{{ a | split: '' | join: ',' }}",
    "{% include 'secret' %}{% render 'x' %}",
    "{{ 'now' | date: '%Y-%m-%d %s %Q' }}{{ x | divided_by: 0 }}{{ x | modulo: 0 }}",
    "{{", "{% endfor %}", "{% raw %}{{ a }}", "\u0000\ud7ff\ue000\uffff",
    "<img src='http://127.0.0.1:9/x.png'><link rel=stylesheet href='file:///etc/passwd'>",
    "<div style='" + "x" * 10000 + "'>a</div>", "<table>" + "<tr><td>" * 2000 + "x",
]  # fmt: skip
HTML_BASE64 = [
    base64.b64encode("<p>Hello Łódź</p>".encode()).decode(),
    base64.b64encode(b"\xff\xfe<p>not utf-8</p>").decode(),
    base64.b64encode(b"<b>" * 3000).decode(),
    "not base64!", "", "====", "\u00e9", "PGI+\u00e9", "PGI+" + "\u0661" * 4,
]  # fmt: skip
# Body fields that take these values some of the time: (dictionary, probability).
BODY_VALUES = {"body": ("liquid", 0.3), "text_body": ("liquid", 0.3), "data": ("data", 0.3),
               "base64HtmlString": ("html", 0.5), "target_url": ("urls", 0.5)}  # fmt: skip


def schemathesis_config(seeded: Seeded) -> schemathesis.Config:
    """The API key on every request; real ids for path parameters most of the time, so that
    generated requests get past the 404s into the code that reads bodies and queries; odd
    Liquid, template data, HTML and URLs in the body fields that take them some of the time."""
    ids = seeded.ids
    values = {**ids, "liquid": LIQUID_BODIES, "data": DATA_TEXTS, "html": HTML_BASE64, "urls": URLS}
    bindings = {f"path.{name}": (name, 0.7) for name in ids}
    bindings |= {"query.template_id": ("template_id", 0.5)}
    bindings |= {f"body.{name}": binding for name, binding in BODY_VALUES.items()}
    parameters = {name: {"dictionary": d, "probability": p} for name, (d, p) in bindings.items()}
    return schemathesis.Config.from_dict({
        "headers": {"X-Api-Key": seeded.fuzz.key}, "parameters": parameters,
        "dictionaries": {name: {"values": values} for name, values in values.items()},
        # Off: 403, 404 and 409 are documented only where an operation's own answers need them,
        # and "valid" generated data may still be refused (a template that does not parse).
        "checks": {"status_code_conformance": {"enabled": False},
                   "positive_data_acceptance": {"enabled": False}},
    })  # fmt: skip


def protect(case: Any, seeded: Seeded) -> None:
    """A generated PUT, DELETE or roll never reaches a protected id, nor a DELETE the Liquid
    template, so that the run keeps its footing; what schemathesis creates is fair game."""
    kept = seeded.protected | ({seeded.liquid} if case.method.upper() == "DELETE" else set())
    if case.method.upper() in {"PUT", "DELETE"} or case.path.endswith("/roll"):
        for name, value in (case.path_parameters or {}).items():
            if value in kept:
                case.path_parameters[name] = DECOY_ID


def run_schemathesis(app: Any, seeded: Seeded, tally: Tally, count: int, seed: int) -> None:
    """About ``count`` requests: each operation's valid and invalid data (fuzzing), then
    sequences of operations linked by their answers (stateful) up to ``count``."""
    config = schemathesis_config(seeded)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)

    @schema.hook
    def after_validate(context: Any, case: Any, response: Any, results: list[Any]) -> None:
        route, source = f"{case.method} {case.path}", f"schemathesis {case.meta.phase.name.value}"
        headers = {name.lower(): values[0] for name, values in response.headers.items()}
        answer = (response.status_code, headers.get("content-type", ""), response.content)
        replay = case.as_curl_command(base_url="http://127.0.0.1:8000")
        tally.add(Answer(source, route, replay, *answer))
        for result in results:
            tally.add_check(result, route, response.status_code)

    def call(case: Any) -> None:
        protect(case, seeded)
        with suppress(schemathesis.errors.FailureGroup):  # counted by the hook above
            case.validate_response(case.call())

    stop_at = tally.total + count
    operations = [result.ok() for result in schema.get_all_operations()]
    # Invalid data needs something to make invalid: a body or a query (an id in a path may be
    # any text, and hypothesis would search for an invalid one in vain).
    modes = [(o, schemathesis.GenerationMode.POSITIVE) for o in operations]
    modes += [(o, schemathesis.GenerationMode.NEGATIVE) for o in operations if o.body or o.query]
    examples = max(1, round(count * (1 - STATEFUL_SHARE) / len(modes)))
    unhealthy = list(HealthCheck)  # generating for a live service is slow, and meant to be
    fuzzing = settings(max_examples=examples, database=None, deadline=None,
                       phases=[Phase.generate], suppress_health_check=unhealthy)  # fmt: skip
    for operation, mode in modes:
        strategy = operation.as_strategy(generation_mode=mode)
        with suppress(Unsatisfiable):
            hypothesis_seed(seed)(fuzzing(given(strategy)(call)))()

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            protect(case, seeded)

        def validate_response(self, *args: Any, **kwargs: Any) -> None:
            with suppress(schemathesis.errors.FailureGroup):  # counted by the hook above
                super().validate_response(*args, **kwargs)

    # Sequences meet the service as the last one left it, so hypothesis may find one that goes
    # another way when replayed ("flaky") and end its round: the next round goes on.
    stateful = settings(Sequences.TestCase.settings, max_examples=20, database=None)
    while tally.total < stop_at:
        with suppress(Flaky):
            Sequences.run(settings=stateful)


# --- afterwards: nothing stored lost -----------------------------------------------------------
def check_stored(
    client: FlaskClient, services: Services, seeded: Seeded, before: Mapping[str, Any]
) -> tuple[list[str], int]:
    """/readyz answers 200; both accounts' key, template and document work; all that the fuzz
    account holds reads back; the bystander account is exactly as it was, the protected
    template too; SQLite finds its file sound. The problems, and the requests it took."""
    problems: list[str] = []

    def get(path: str, key: str = "") -> Any:
        answer = client.get(path, headers={"X-Api-Key": key} if key else {})
        problems.extend([f"GET {path}: {answer.status_code}"] * (answer.status_code != 200))
        return answer

    get("/readyz")
    for account in (seeded.fuzz, seeded.bystander):
        if get("/v1/me", account.key).json.get("key_id") != account.key_id:
            problems.append(f"{account.id}'s key authenticates as another")
        get(f"/v1/templates/{account.template_id}", account.key)
        get(f"/files/{account.file_token}")
    reads = 7 + read_back(get, seeded.fuzz.key)
    after = snapshot(services, seeded.bystander.id)
    problems += [
        f"the bystander's {name} changed" for name in before if before[name] != after[name]
    ]
    if (
        "{{ customer.name }}"
        not in services.templates.get(seeded.fuzz.id, seeded.fuzz.template_id).body
    ):
        problems.append("the protected template changed")
    if services.settings.database_url.startswith("sqlite"):
        with services.db.engine.connect() as connection:
            sound = connection.execute(text("PRAGMA integrity_check")).scalar()
        problems += [] if sound == "ok" else [f"SQLite's integrity_check: {sound}"]
    return problems, reads


def read_back(get: Any, key: str) -> int:
    """Every list of the fuzz account pages through, and every template in it reads: what
    thousands of odd requests left behind is whole. Returns the requests it took."""
    reads = 0
    for listing in ("/v1/templates", "/v1/documents", "/v1/events"):
        cursor: str | None = ""
        while cursor is not None:
            page = get(f"{listing}?limit=100" + (f"&cursor={cursor}" if cursor else ""), key)
            cursor = page.json.get("next_cursor") if page.status_code == 200 else None
            items = page.json["data"] if page.status_code == 200 else []
            reads += 1 + len(items) * (listing == "/v1/templates")
            for template in items if listing == "/v1/templates" else []:
                get(f"/v1/templates/{template['id']}", key)
    for path in ("/v1/hooks", "/v1/api-keys?include_deleted=true", "/n8n/hooks", "/zapier/me"):
        get(path, key)
    return reads + 4


# --- the run and its report --------------------------------------------------------------------
def report(tally: Tally, problems: list[str], reads: int, seconds: float) -> bool:
    """Print what was sent and what was found; whether anything was."""
    sources = sorted({source for source, _ in tally.statuses})
    rows = []
    for status in sorted({status for _, status in tally.statuses}):
        counts = [tally.statuses[source, status] for source in sources]
        rows.append([status or "no answer", *counts, sum(counts)])
    rows.append(["all", *(sum(row[n] for row in rows) for n in range(1, len(sources) + 2))])
    print("## Answers by status\n")
    live.table(" | ".join(["status", *sources, "all"]), rows)
    print(
        f"\n{tally.total:,} requests in {seconds:.0f} s; {reads:,} more to check what is stored\n"
    )
    failures = sorted(tally.check_failures.items(), key=lambda item: -item[1][0])
    print(f"schemathesis's checks, on each of its answers: {', '.join(sorted(tally.checks))}\n")
    live.table("schemathesis failure | times | first", [[n, *f] for n, f in failures])
    print("\n## Findings\n")
    for finding in sorted(tally.findings.values(), key=lambda finding: -finding.count):
        example, problem = finding.example, ", ".join(sorted(finding.problems))
        print(f"### {problem}: {example.route} → {example.status} ({finding.count:,}x)")
        print(f"request: {example.request[:1500]}")
        print(f"answer: {example.content_type} {example.body[:400]!r}\n")
    print("".join(f"- {problem[:3000]}\n" for problem in problems), end="")
    if not (tally.findings or problems):
        print("None: no 5xx, no stack trace, no request unanswered, every API error JSON with "
              "error.code and error.message, every status expected, nothing stored lost, "
              "nothing logged at ERROR.")  # fmt: skip
    return bool(tally.findings or problems)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=12_000, help="in all (at least)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, help="of schemathesis's fuzzing; default: random")
    arguments = parser.parse_args()
    seed_value = random.randrange(2**31) if arguments.seed is None else arguments.seed
    print(f"seed {seed_value}", flush=True)
    live.exit_cleanly()
    started, tally = time.monotonic(), Tally()
    # What this process logs at ERROR and above: the app's unexpected errors.
    logged = logging.handlers.BufferingHandler(capacity=10**9)
    logged.setLevel(logging.ERROR)
    logging.getLogger().addHandler(logged)
    with live.workspace(arguments.database) as (work, database_url):
        limits = {name[7:].lower(): rate for name, rate in live.UNLIMITED.items()}  # no BRIDGE_
        # A deep render queue: "render busy" is the service at capacity, not bad input.
        overrides = {**limits, "allow_private_hook_targets": True, "render_queue": 64}
        with live.bridge_services(database_url, work / "data", **overrides) as services:
            seeded = seed(services)
            before = snapshot(services, seeded.bystander.id)
        problems = run_raw(services.settings, work / "server.log", seeded.fuzz.key, tally)
        app = create_app(services.settings)
        services = app.extensions[EXTENSION]
        services.renderer.start()
        try:
            client = app.test_client()
            spec = client.get("/openapi.json").json["paths"]
            routes = [f"{method.upper()} {path}" for path in spec for method in spec[path]]
            send_in_process(client, tally, seeded, routes)
            elapsed = time.monotonic() - started
            print(f"raw HTTP and tables: {tally.total:,} requests in {elapsed:.0f} s", flush=True)
            count = max(arguments.requests - tally.total, 500)
            run_schemathesis(app, seeded, tally, count, seed_value)
            stored, reads = check_stored(app.test_client(), services, seeded, before)
        finally:
            services.close()
    problems += stored + [f"logged at ERROR: {logged.format(record)}" for record in logged.buffer]
    sys.exit(1 if report(tally, problems, reads, time.monotonic() - started) else 0)


if __name__ == "__main__":
    main()
