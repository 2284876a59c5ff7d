"""Bad input at volume: thousands of generated requests against a live service, and not one
5xx, stack trace or non-JSON error on the API routes; stored data survives all of it.

    python -m benchmarks.bad_input                        # SQLite, 12,000 requests
    python -m benchmarks.bad_input --requests 20000 --seed 7 --keep /tmp/bad-input
    python -m benchmarks.bad_input --database-url postgresql://postgres@127.0.0.1:5432

Two generators share the traffic, both against ``serve`` on 127.0.0.1 (webhook delivery off,
so no generated target URL is ever called):

* schemathesis (its ``st run`` CLI, in a subprocess) reads ``/openapi.json`` and runs its
  coverage, fuzzing and stateful phases with the server-error and conformance checks;
* hypothesis draws raw HTTP requests, sent over plain sockets, for what schemathesis does not
  send: odd and duplicated headers, non-ASCII header bytes, bodies over the size limit (which
  must be answered 413), deeply nested JSON, invalid UTF-8, NUL characters, lone surrogates,
  wrong Content-Types, odd paths and methods, the web pages, download links, health routes,
  and malformed HTTP that the server's parser refuses before the app sees it.

Every answer is judged: a 5xx, no answer, a stack trace, or (on /v1, /zapier, /n8n and
/render) an error that is not JSON with ``error.code`` and ``error.message`` is a finding.
Afterwards ``/readyz`` must answer 200, a bystander account nobody sent traffic for must be
exactly as it was, the fuzzing account's protected key, template and document must be intact,
and everything the fuzzing account holds must read back through the API. Prints the answers
by status and each finding with a reproduction; exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import random
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psycopg
import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from benchmarks.live import (
    HOST,
    REPOSITORY,
    bridge_env,
    bridge_services,
    free_port,
    running,
    serve_command,
    stop_cleanly_on_sigterm,
)
from connector.accounts import NewUser, Role
from connector.api_keys import Permission
from connector.clients import Client
from connector.documents import NewDocument
from connector.events import EventType
from connector.paging import PageQuery
from connector.refusals import PARSER_REFUSALS
from connector.rendering import Format
from connector.services import Services
from connector.templates import TemplateFields
from connector.webhooks.subscriptions import NewHook

DEFAULT_REQUESTS = 12_000
SCHEMATHESIS_SHARE = 0.5
API_PREFIXES = ("/v1", "/zapier", "/n8n", "/render")
MAX_BODY_BYTES = 1_000_000  # the service's default BRIDGE_MAX_BODY_BYTES
PASSWORD = "correct horse battery staple"
# Abuse limits (429) would hide the code paths behind them. The PDF queue is deep enough that
# a few renders at once never meet the "render busy" 503: that is capacity, not bad input.
SERVER_ENV = {
    "BRIDGE_RATE_LIMIT_PER_KEY": "100000000/minute",
    "BRIDGE_FAILED_AUTH_LIMIT_PER_KEY_VALUE": "100000000/minute",
    "BRIDGE_FAILED_AUTH_LIMIT_PER_ADDRESS": "100000000/minute",
    "BRIDGE_ALLOW_PRIVATE_HOOK_TARGETS": "1",
    "BRIDGE_RENDER_QUEUE": "64",
}
SCHEMATHESIS_CHECKS = (
    "not_a_server_error,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance,negative_data_rejection,missing_required_header,ignored_auth,"
    "use_after_free,ensure_resource_availability"
)
# The schemathesis subprocess learns the ids no generated PUT, DELETE or roll may touch here.
PROTECTED_ENV = "BAD_INPUT_PROTECTED_IDS"
DECOY_ID = "protected_by_bad_input"
HTTP_PARSER_REFUSALS = {refusal.code for _, refusal, _ in PARSER_REFUSALS}
TRACEBACK = re.compile(rb"Traceback \(most recent call last\)|File \"/[^\"]+\.py\", line \d+")


# --- the service under test --------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """What one account holds before the run."""

    id: str
    key: str  # an admin key's value
    key_id: str
    template_id: str
    document_id: str
    file_token: str


@dataclass(frozen=True)
class Seeded:
    fuzz: Account  # all generated traffic is for it; its key, template and document protected
    scratch_key_id: str  # may be rolled or deleted by generated requests
    scratch_template_id: str  # may be replaced or deleted
    liquid_template_id: str  # replaced with odd Liquid and rendered, never deleted
    hook_id: str
    delivery_id: str
    user_email: str  # an admin of the fuzz account, for the web pages
    bystander: Account  # another account, never sent to: must come through exactly as it was

    @property
    def protected(self) -> tuple[str, ...]:
        return (self.fuzz.key_id, self.fuzz.template_id, self.liquid_template_id)


@dataclass
class Service:
    url: str
    port: int
    log: Path
    database_url: str
    data_dir: Path
    seeded: Seeded
    session_cookie: str = ""  # the fuzz admin's signed-in web session
    csrf_token: str = ""

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"level": "RAW", "message": line})
        return lines


def _seed_account(services: Services, name: str, email: str | None = None) -> Account:
    account = services.accounts.create(name)
    key = services.keys.create(account.id, f"{name} admin", Permission.ADMIN)
    template = services.templates.create(
        account.id,
        TemplateFields(
            name="Invoice",
            body="<h1>Invoice {{ number }}</h1><p>{{ customer.name }} owes {{ total }}</p>",
            text_body="Invoice {{ number }}: {{ customer.name }} owes {{ total }}",
        ),
    )
    data = {"number": 7, "customer": {"name": "Ada"}, "total": "€ 12"}
    document = services.documents.create(
        account.id, NewDocument(template_id=template.id, format=Format.TXT, data=data), Client.OTHER
    )
    if email is not None:
        user = NewUser(email=email, password=PASSWORD, role=Role.ADMIN)
        services.accounts.add_user(account.id, user)
    token = (document.file_url or "").rsplit("/", 1)[-1]
    return Account(account.id, key.value, key.id, template.id, document.id, token)


def seed(services: Services) -> Seeded:
    """The accounts, keys, templates, documents, hook and delivery the run starts from."""
    email = "fuzz-admin@example.com"
    fuzz = _seed_account(services, "Bad Input Ltd", email)
    scratch_key = services.keys.create(fuzz.id, "scratch", Permission.STANDARD)
    hook = services.hooks.create(
        fuzz.id,
        fuzz.key_id,
        NewHook(target_url="http://127.0.0.1:9/hook", events=[EventType.TEMPLATE_CREATED]),
        "api",
    )
    # Created after the hook: their events make a delivery to retry.
    scratch = services.templates.create(fuzz.id, TemplateFields(name="Scratch", body="x"))
    liquid = services.templates.create(fuzz.id, TemplateFields(name="Liquid", body="{{ a }}"))
    delivery = services.hooks.deliveries(fuzz.id, hook.id, PageQuery()).data[0]
    return Seeded(
        fuzz=fuzz,
        scratch_key_id=scratch_key.id,
        scratch_template_id=scratch.id,
        liquid_template_id=liquid.id,
        hook_id=hook.id,
        delivery_id=delivery.id,
        user_email=email,
        bystander=_seed_account(services, "Bystander Ltd"),
    )


def snapshot(services: Services, account_id: str) -> dict[str, Any]:
    """Everything an account holds, as plain data, to compare before and after."""
    templates = services.templates.list(account_id, PageQuery(limit=100)).data
    documents = services.documents.list(account_id, PageQuery(limit=100), None).data
    keys = services.keys.list(account_id, include_deleted=True)
    return {
        "keys": [key.model_dump(mode="json") for key in keys],
        "templates": [
            services.templates.get(account_id, t.id).model_dump(mode="json") for t in templates
        ],
        "documents": [d.model_dump(mode="json") for d in documents],
        "files": [services.documents.file(account_id, d.id).content.hex() for d in documents],
        "hooks": [h.model_dump(mode="json") for h in services.hooks.list(account_id)],
    }


@contextmanager
def throwaway_database(server_url: str, data_dir: Path) -> Iterator[str]:
    """``sqlite`` (a file in ``data_dir``), or a database ``bad_input_<pid>`` created on the
    PostgreSQL server at ``server_url`` and dropped at the end."""
    if server_url == "sqlite":
        yield f"sqlite:///{data_dir / 'bridge.db'}"
        return
    server = make_url(server_url)
    if server.get_backend_name() != "postgresql":
        raise SystemExit("--database-url: use sqlite or a postgresql:// server URL")
    name = f"bad_input_{os.getpid()}"
    admin = server.set(drivername="postgresql", database="postgres")

    def administer(statement: str) -> None:
        with psycopg.connect(admin.render_as_string(hide_password=False)) as connection:
            connection.autocommit = True
            connection.execute(sql.SQL(statement).format(sql.Identifier(name)))

    administer("DROP DATABASE IF EXISTS {} WITH (FORCE)")
    administer("CREATE DATABASE {}")
    try:
        database = server.set(drivername="postgresql+psycopg", database=name)
        yield database.render_as_string(hide_password=False)
    finally:
        administer("DROP DATABASE IF EXISTS {} WITH (FORCE)")


@contextmanager
def live_service(
    work_dir: Path, database: str = "sqlite", *, workers: int = 2, threads: int = 8
) -> Iterator[Service]:
    """``templateto-bridge serve`` on a fresh database holding :func:`seed`'s rows, webhook
    delivery off, abuse limits out of the way; a web session signed in as the fuzz admin."""
    data_dir = work_dir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)  # a kept work directory's last run
    data_dir.mkdir(parents=True)
    with throwaway_database(database, data_dir) as database_url:
        with bridge_services(database_url, data_dir, allow_private_hook_targets=True) as services:
            seeded = seed(services)
            settings = services.settings
        port = free_port()
        command = serve_command(port, workers, threads, deliver=False)
        env = bridge_env(settings, port, SERVER_ENV)
        log = work_dir / "server.log"
        with running(command, port=port, env=env, log=log) as server:
            service = Service(server.url, port, log, database_url, data_dir, seeded)
            _sign_in(service)
            yield service


def _sign_in(service: Service) -> None:
    browser = requests.Session()
    form = browser.get(service.url + "/signin", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None, "no CSRF token on /signin"
    credentials = {"email": service.seeded.user_email, "password": PASSWORD}
    browser.post(service.url + "/signin", data={**credentials, "csrf_token": token[1]}, timeout=10)
    page = browser.get(service.url + "/generate/api-keys", timeout=10).text
    page_token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert page_token is not None, "not signed in on the API keys page"
    service.session_cookie = browser.cookies.get("bridge_session") or ""
    service.csrf_token = page_token[1]


# --- exchanges and their judgement -------------------------------------------------------------


@dataclass
class Exchange:
    """One request sent and what came back (status 0: no answer)."""

    source: str  # "schemathesis", or the raw generator's category
    route: str  # the operation or route aimed at, e.g. "POST /v1/templates"
    method: str
    target: str
    request_headers: list[tuple[str, str]]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    expect: int | None = None
    raw_head: bytes = b""  # malformed HTTP: the head as sent
    note: str = ""  # why there was no answer

    @property
    def path(self) -> str:
        return urlsplit(self.target).path if "://" in self.target else self.target.split("?")[0]

    @property
    def on_api_route(self) -> bool:
        return any(self.path == p or self.path.startswith(p + "/") for p in API_PREFIXES)


def error_shape_problem(exchange: Exchange) -> str | None:
    """Why an error answer is not ``{"error": {"code": "...", "message": "..."}}``, if it is
    not."""
    content_type = exchange.response_headers.get("content-type", "")
    if not content_type.startswith("application/json"):
        return f"Content-Type {content_type or 'none'}"
    if exchange.method == "HEAD":
        return None
    try:
        body = json.loads(exchange.response_body)
    except ValueError:
        return "a body that is not JSON"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "no error object"
    for name in ("code", "message"):
        if not isinstance(error.get(name), str) or not error[name].strip():
            return f"no error.{name}"
    return None


def refused_by_http_parser(exchange: Exchange) -> bool:
    """Refused as malformed HTTP before the app saw it, as ``connector.refusals`` answers:
    such a request's body is never looked at, so its size cannot be what it is refused for."""
    try:
        code = json.loads(exchange.response_body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code in HTTP_PARSER_REFUSALS


def problems(exchange: Exchange) -> list[str]:
    """What is wrong with an answer; empty when nothing is."""
    found = []
    if exchange.status == 0:
        found.append("no answer")
    if exchange.status >= 500:
        found.append("5xx")
    if TRACEBACK.search(exchange.response_body):
        found.append("stack trace")
    if exchange.on_api_route and exchange.status >= 400 and error_shape_problem(exchange):
        found.append("non-JSON error")
    if (
        exchange.expect is not None
        and exchange.status not in (0, exchange.expect)
        and not refused_by_http_parser(exchange)
    ):
        found.append(f"not {exchange.expect}")
    return found


@dataclass
class Finding:
    kinds: set[str]
    where: str  # the route, or "HTTP parser"
    status: int
    detail: str  # the error code, the parser's reason, or why there was no answer
    example: Exchange
    count: int = 0

    @property
    def title(self) -> str:
        answer = self.status or "no answer"
        return f"{', '.join(sorted(self.kinds))}: {self.where} → {answer} {self.detail}"


@dataclass
class Tally:
    """Answers counted by status and source; findings grouped by what they have in common."""

    statuses: collections.Counter[tuple[str, int]] = field(default_factory=collections.Counter)
    findings: dict[tuple[str, int, str], Finding] = field(default_factory=dict)
    # Every exchange with a problem, bodies cut to 2,000 bytes: for tests to judge one by one.
    problem_exchanges: list[Exchange] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def sources(self) -> list[str]:
        return sorted({source for source, _ in self.statuses})

    def add(self, exchange: Exchange) -> None:
        self.statuses[(exchange.source, exchange.status)] += 1
        found = problems(exchange)
        if not found:
            return
        self.problem_exchanges.append(
            replace(
                exchange,
                request_body=exchange.request_body[:2000],
                response_body=exchange.response_body[:2000],
            )
        )
        where, detail = _grouping(exchange)
        finding = self.findings.setdefault(
            (where, exchange.status, detail),
            Finding(set(), where, exchange.status, detail, exchange),
        )
        finding.kinds.update(found)
        finding.count += 1
        if _size(exchange) < _size(finding.example):  # the smallest is the easiest to replay
            finding.example = exchange


def _size(exchange: Exchange) -> int:
    headers = sum(len(name) + len(value) for name, value in exchange.request_headers)
    return len(exchange.target) + len(exchange.request_body) + len(exchange.raw_head) + headers


def _grouping(exchange: Exchange) -> tuple[str, str]:
    if exchange.status == 0:  # nothing says why: one finding per way it ended, any route
        return "any route", exchange.note.split(":")[0]
    chunked = ("Transfer-Encoding", "chunked") in exchange.request_headers
    if chunked and exchange.expect == 413 and exchange.status < 500:
        return "any route, a chunked body over the limit", ""
    try:
        return exchange.route, str(json.loads(exchange.response_body)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        content_type = exchange.response_headers.get("content-type", "no Content-Type")
        return exchange.route, content_type.split(";")[0]


# --- schemathesis ------------------------------------------------------------------------------


@dataclass
class SchemathesisRun:
    checks: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    failures: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    failure_examples: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # schemathesis's own (not the service's)
    phases: collections.Counter[str] = field(default_factory=collections.Counter)
    sent: int = 0
    output: str = ""
    returncode: int = 0


def schemathesis_config(seeded: Seeded) -> str:
    """Real ids for path parameters most of the time, so generated requests get past the 404s
    into the code that reads bodies and queries; generated ones the rest of the time."""
    dictionaries = {
        # Never a protected id where a PUT, DELETE or roll could take it: the hook below would
        # send it to the decoy, and schemathesis would see a resource vanish.
        "templates": [seeded.scratch_template_id],
        "render_templates": [seeded.fuzz.template_id, seeded.liquid_template_id],
        "keys": [seeded.scratch_key_id],
        "documents": [seeded.fuzz.document_id],
        "hooks": [seeded.hook_id],
        "deliveries": [seeded.delivery_id],
        "operations": ["new_template", "new_document", "old_value_used", "find_template"],
    }
    parameters = {
        "path.template_id": ("templates", 0.7),
        "query.template_id": ("templates", 0.5),
        "path.templateId": ("render_templates", 0.8),
        "path.key_id": ("keys", 0.7),
        "path.document_id": ("documents", 0.7),
        "path.hook_id": ("hooks", 0.7),
        "path.delivery_id": ("deliveries", 0.7),
        "path.key": ("operations", 0.8),
    }
    lines = ["[output.sanitization]", "enabled = false", ""]
    for name, values in dictionaries.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for key, (dictionary, probability) in parameters.items():
        lines.append(f'"{key}" = {{ dictionary = "{dictionary}", probability = {probability} }}')
    return "\n".join(lines) + "\n"


def schemathesis_main() -> None:
    """``st`` with one hook: a generated PUT, DELETE or roll never reaches a protected id (the
    key every request authenticates with, the templates the renders use), so the run keeps
    its footing; whatever it creates itself is fair game."""
    import schemathesis
    from schemathesis.cli import schemathesis as cli

    protected = set(filter(None, os.environ.get(PROTECTED_ENV, "").split(",")))

    @schemathesis.hook
    def before_call(context: Any, case: Any, kwargs: Any) -> None:
        destructive = case.method.upper() in {"PUT", "DELETE", "PATCH"}
        if (destructive or case.path.endswith("/roll")) and isinstance(case.path_parameters, dict):
            for name, value in case.path_parameters.items():
                if value in protected:
                    case.path_parameters[name] = DECOY_ID

    cli(sys.argv[1:], prog_name="st")


def run_schemathesis(
    service: Service,
    work_dir: Path,
    add: Callable[[Exchange], None],
    *,
    max_examples: int,
    phases: str = "coverage,fuzzing,stateful",
    # One worker: as fast here (the server is the bottleneck), and on Python 3.11 schemathesis's
    # workers can trip over each other in the ast module ("AST constructor recursion depth
    # mismatch"), dropping an operation's coverage phase.
    workers: int = 1,
    seed: int = 0,
    timeout: float = 1200,
) -> SchemathesisRun:
    config = work_dir / "schemathesis.toml"
    config.write_text(schemathesis_config(service.seeded))
    report = work_dir / "schemathesis.ndjson"
    report.unlink(missing_ok=True)
    command = [
        sys.executable, "-c", "from benchmarks.bad_input import schemathesis_main as m; m()",
        "--config-file", str(config),
        "run", f"{service.url}/openapi.json",
        "--header", f"X-Api-Key: {service.seeded.fuzz.key}",
        "--phases", phases,
        "--checks", SCHEMATHESIS_CHECKS,
        "--max-examples", str(max_examples),
        "--workers", str(workers),
        "--seed", str(seed),
        "--continue-on-failure",
        "--suppress-health-check", "all",
        "--request-timeout", "60",
        "--report", "ndjson", "--report-ndjson-path", str(report),
        "--no-color",
    ]  # fmt: skip
    env = {**os.environ, PROTECTED_ENV: ",".join(service.seeded.protected), "COLUMNS": "120"}
    done = subprocess.run(
        command, env=env, cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout
    )
    (work_dir / "schemathesis.out").write_text(done.stdout + done.stderr)
    result = SchemathesisRun(output=done.stdout + done.stderr, returncode=done.returncode)
    if report.exists():
        read_schemathesis_report(report, result, add)
    else:
        result.errors.append(f"no report; st exited {done.returncode}: {result.output[-2000:]}")
    return result


def _decoded(content: Any) -> bytes:
    if isinstance(content, dict) and "$base64" in content:
        return base64.b64decode(content["$base64"])
    return content.encode() if isinstance(content, str) else b""


def read_schemathesis_report(
    path: Path, result: SchemathesisRun, add: Callable[[Exchange], None]
) -> None:
    """Every request schemathesis sent (to ``add``), and its checks' verdicts (to ``result``),
    from its NDJSON event stream."""
    with path.open() as events:
        for line in events:
            event = json.loads(line)
            if "NonFatalError" in event or "FatalError" in event:
                error = event.get("NonFatalError") or event.get("FatalError")
                result.errors.append(json.dumps(error)[:1500])
            finished = event.get("ScenarioFinished")
            if not finished:
                continue
            recorder = finished.get("recorder") or {}
            label = recorder.get("label", "")
            for interaction in (recorder.get("interactions") or {}).values():
                result.sent += 1
                result.phases[finished.get("phase", "")] += 1
                add(_exchange_of(label, interaction))
            for outcomes in (recorder.get("checks") or {}).values():
                for outcome in outcomes:
                    result.checks[(outcome["name"], outcome["status"])] += 1
                    failure = (outcome.get("failure_info") or {}).get("failure")
                    if outcome["status"] == "failure" and failure:
                        key = (outcome["name"], failure.get("title", ""))
                        result.failures[key] += 1
                        message = (failure.get("message") or "").strip().splitlines() or [""]
                        result.failure_examples.setdefault(
                            key, f"{failure.get('operation', label)}: {message[0][:160]}"
                        )


def _exchange_of(label: str, interaction: Mapping[str, Any]) -> Exchange:
    request, response = interaction["request"], interaction.get("response") or {}
    return Exchange(
        source="schemathesis",
        route=label,
        method=request["method"],
        target=request["uri"],
        request_headers=[(n, v) for n, vs in request.get("headers", {}).items() for v in vs],
        request_body=_decoded(request.get("body")),
        status=response.get("status_code", 0),
        response_headers={n.lower(): ", ".join(v) for n, v in response.get("headers", {}).items()},
        response_body=_decoded(response.get("content")),
        note="" if response else "no response (network error or timeout)",
    )


# --- raw requests: what they are, how they go over the wire ------------------------------------


@dataclass(frozen=True)
class RawRequest:
    category: str
    route: str
    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    chunked: bool = False
    expect: int | None = None
    raw_head: bytes | None = None  # malformed HTTP: sent as is instead of the built head

    def wire(self, port: int) -> tuple[bytes, bytes]:
        if self.raw_head is not None:
            return self.raw_head, self.body
        names = {name.lower() for name, _ in self.headers}
        lines = [self.method + b" " + self.target + b" HTTP/1.1"]
        if b"host" not in names:
            lines.append(f"Host: {HOST}:{port}".encode())
        lines.append(b"Connection: close")
        lines += [name + b": " + value for name, value in self.headers]
        body = self.body
        if self.chunked:
            lines.append(b"Transfer-Encoding: chunked")
            chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
            body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        elif body or self.method in (b"POST", b"PUT", b"PATCH"):
            lines.append(b"Content-Length: %d" % len(body))
        return b"\r\n".join(lines) + b"\r\n\r\n", body


def send(port: int, request: RawRequest, timeout: float = 60.0) -> Exchange:
    """Send over a fresh connection; stop sending the body as soon as the server answers (a
    413 comes before the body is read), then read the answer to the end."""
    head, body = request.wire(port)
    received, note = bytearray(), ""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as connection:
            try:
                connection.sendall(head)
                view = memoryview(body)
                for start in range(0, len(body), 65536):
                    if select.select([connection], [], [], 0)[0]:
                        break
                    connection.sendall(view[start : start + 65536])
            except OSError:
                pass  # the server stopped reading: its answer may be waiting all the same
            while chunk := connection.recv(65536):
                received += chunk
    except TimeoutError:
        note = f"no answer within {timeout:g} s"
    except OSError as error:
        note = f"{type(error).__name__}: {error}"
    status, headers, response_body = parse_response(bytes(received))
    if not status and not note:
        note = "connection closed without an answer"
    return Exchange(
        source=request.category,
        route=request.route,
        method=request.method.decode("latin-1"),
        target=request.target.decode("latin-1"),
        request_headers=[(n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers]
        + ([("Transfer-Encoding", "chunked")] if request.chunked else []),
        request_body=request.body,
        status=status,
        response_headers=headers,
        response_body=response_body,
        expect=request.expect,
        raw_head=request.raw_head or b"",
        note=note if not status else "",
    )


def parse_response(data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of the final answer (after any 100s)."""
    while True:
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        match = re.match(rb"HTTP/\d\.\d (\d{3})", lines[0])
        if match is None:
            return 0, {}, data
        if not match[1].startswith(b"1") or not body:
            break
        data = body
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return int(match[1]), headers, body


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return bytes(out)


# --- raw requests: values ----------------------------------------------------------------------

# Header values keep to what HTTP can carry (tab, visible ASCII, bytes 0x80-0xff); control
# characters, which the HTTP parser refuses, are the malformed-HTTP generator's business.
_TO_HEADER = bytes(b if b == 9 or 32 <= b < 127 or b >= 128 else ord("?") for b in range(256))
header_bytes = st.binary(max_size=200).map(lambda b: b.translate(_TO_HEADER).strip())
header_text = st.text(max_size=60).map(lambda t: t.encode().translate(_TO_HEADER).strip())
ODD_TEXTS = [
    "", " ", "\u200b", "\ufeff", "e\u0301" * 30, "\u202etxt.exe", "🧾📄" * 20,
    "Łódź € \U0001d518\U0001d52b\U0001d526", "a\u0000b", "\x1b[31mred", "<script>alert(1)</script>",
    "{{ 7 | times: 7 }}", "' OR 1=1 --", "../../etc/passwd", "%00%ff", "\r\nX-Injected: 1",
]  # fmt: skip
odd_text = (
    st.text(max_size=40)
    | st.text(st.characters(codec="utf-8"), max_size=40)
    | st.sampled_from(ODD_TEXTS)
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63, max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | odd_text,
    _containers,
    max_leaves=12,
)
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
    "{% for i in (1..10) %}{% break %}{% continue %}{% endfor %}{% cycle 'a', 'b' %}",
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


# Template data typed as JSON text (Zapier's advanced input, n8n's JSON field).
DATA_TEXTS = [
    "{not json", "[]", '"x"', "null", '{"a": NaN}', '{"a": 1e999}', '{"a": "\\ud800"}',
    '{"a": "\\u0000"}', '{"a": ' + "9" * 5000 + "}", "[" * 100_000,
    '{"a": ' + "[" * 990 + "]" * 990 + "}", '{"a": 1, "a": 2}', "\ufeff{}",
    '{"customer": {"name": "Ada"}, "total": "€ 12"}',
]  # fmt: skip


def field_value(name: str, seeded: Seeded) -> st.SearchStrategy[Any]:
    """Plausible values for a body field, with odd ones of any type mixed in."""
    templates = [seeded.fuzz.template_id, seeded.liquid_template_id, seeded.bystander.template_id]
    urls = ["http://127.0.0.1:9/hook", "http://127.0.0.1:9/" + "a" * 3000, "ftp://127.0.0.1/",
            "http://[::1]:9/", "http://user:pw@127.0.0.1:9/", "javascript:alert(1)",
            "http://127.0.0.1:99999/", "http://ex ample/", "http://\u00e9.test/", ""]  # fmt: skip
    events = ["template.created", "document.created", "nope", ""]
    plausible: dict[str, st.SearchStrategy[Any]] = {
        "name": odd_text.filter(bool) | st.text(min_size=190, max_size=260),
        "body": st.sampled_from(LIQUID_BODIES) | odd_text,
        "text_body": st.sampled_from(LIQUID_BODIES) | odd_text | st.none(),
        "permission": st.sampled_from(["standard", "admin", "ADMIN", "root", ""]),
        "grace_seconds": st.sampled_from([0, 3600, -1, 10**12, 1.5, "3600", None]),
        "template_id": st.sampled_from([*templates, "tpl_missing", ""]),
        "template": st.sampled_from([*templates, ""]),
        "format": st.sampled_from(["pdf", "txt", "PDF", "docx", "", None]),
        "document_type": st.sampled_from(["pdf", "txt", "html", ""]),
        "data": st.dictionaries(odd_text, json_values, max_size=6) | st.sampled_from(DATA_TEXTS),
        "target_url": st.sampled_from(urls),
        "events": st.lists(st.sampled_from(events), max_size=4),
        "event": st.sampled_from(events),
        "base64HtmlString": st.sampled_from(HTML_BASE64),
        "filename": odd_text,
    }
    return plausible.get(name, st.booleans()) | json_values


# --- raw requests: the API operations ----------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # with {parameters}
    fields: tuple[str, ...]  # the JSON body's properties
    takes_body: bool

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


# Bodies that /openapi.json does not declare (the Zapier bridge reads them by hand).
UNDECLARED_BODIES = {
    "POST /zapier/creates/create_file": (
        "template", "advanced", "data", "preserve_line_breaks", "document_type", "strict"
    ),
    "POST /zapier/hooks": ("target_url", "event"),
}  # fmt: skip


def operations(openapi: Mapping[str, Any]) -> list[Operation]:
    schemas = openapi.get("components", {}).get("schemas", {})
    found = []
    for path, methods in openapi["paths"].items():
        for method, description in methods.items():
            body = description.get("requestBody")
            fields = UNDECLARED_BODIES.get(f"{method.upper()} {path}", ())
            if body:
                body_schema = next(iter(body["content"].values())).get("schema", {})
                if "$ref" in body_schema:
                    body_schema = schemas.get(body_schema["$ref"].rsplit("/", 1)[-1], {})
                fields = tuple(body_schema.get("properties", {}))
            found.append(Operation(method.upper(), path, fields, bool(body or fields)))
    return found


ODD_IDS = ["0", "-1", "tpl_missing", "a" * 300, "%00", "%ff%fe", "..", "%2e%2e%2f", "🧾", "null"]


def path_ids(seeded: Seeded, operation: Operation) -> dict[str, st.SearchStrategy[str]]:
    """Ids for each path parameter: real ones mostly (never a protected one where the request
    would change or delete it), other accounts', and odd ones."""
    destructive = operation.method in {"PUT", "DELETE"} or operation.path.endswith("/roll")
    templates = [seeded.scratch_template_id, seeded.bystander.template_id]
    keys = [seeded.scratch_key_id, seeded.bystander.key_id]
    if not destructive:
        templates += [seeded.fuzz.template_id, seeded.liquid_template_id]
        keys.append(seeded.fuzz.key_id)
    real = {
        "template_id": templates,
        "templateId": [seeded.fuzz.template_id, seeded.liquid_template_id,
                       seeded.scratch_template_id, seeded.bystander.template_id],
        "key_id": keys,
        "document_id": [seeded.fuzz.document_id, seeded.bystander.document_id],
        "hook_id": [seeded.hook_id],
        "delivery_id": [seeded.delivery_id],
        "key": ["new_template", "new_document", "templates", "find_template", "find_document"],
    }  # fmt: skip
    generated = st.text(min_size=1, max_size=30).map(lambda t: quote(t, safe=""))
    return {
        name: st.sampled_from(real.get(name, ["x"])) | st.sampled_from(ODD_IDS) | generated
        for name in re.findall(r"\{(\w+)\}", operation.path)
    }


@st.composite
def fill_path(draw: st.DrawFn, seeded: Seeded, operation: Operation) -> str:
    path = operation.path
    for name, ids in path_ids(seeded, operation).items():
        path = path.replace("{" + name + "}", quote(draw(ids), safe="%"))
    return path


QUERY_NAMES = ["limit", "offset", "cursor", "type", "template_id", "include_deleted", "strict",
               "name", "page", "next", "api_key", "apikey", "q", "format", "limit[]", "🧾",
               ""]  # fmt: skip
QUERY_VALUES = [
    "", "0", "-1", "1", "100", "101", "10001", "1e3", "1.5", "NaN", "true", "yes", "null", "[]",
    "١٢", "9" * 400, "%zz", "%", "+", "%00", "%ff%fe", "template.created", "====", "a" * 3000,
    "tt_live_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    base64.urlsafe_b64encode(b"2026-01-01T00:00:00|tpl_x").decode(),
    base64.urlsafe_b64encode(b"not a date|x").decode(),
]  # fmt: skip


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    names = st.sampled_from(QUERY_NAMES) | header_text.map(lambda b: b.decode("latin-1"))
    values = st.sampled_from(QUERY_VALUES).map(lambda v: quote(v, safe="%+")) | st.text(
        max_size=30
    ).map(lambda t: quote(t, safe=""))
    pairs = draw(st.lists(st.tuples(names, values), max_size=6))
    return "?" + "&".join(f"{quote(n, safe='%[]')}={v}" for n, v in pairs) if pairs else ""


def api_key_headers(seeded: Seeded) -> st.SearchStrategy[list[tuple[bytes, bytes]]]:
    """The valid key most of the time; otherwise none, empty, duplicated, garbage, non-ASCII,
    huge, padded, another account's mangled."""
    valid = seeded.fuzz.key.encode()
    names = st.sampled_from([b"x-api-key", b"X-API-KEY", b"X_Api_Key"])
    garbage = header_bytes | header_text
    return st.one_of(
        [st.just([(b"X-Api-Key", valid)])] * 4
        + [
            st.just([]),
            st.just([(b"X-Api-Key", b"")]),
            st.builds(lambda n: [(n, valid)], names),
            st.just([(b"X-Api-Key", valid), (b"X-Api-Key", valid)]),
            st.builds(lambda g: [(b"X-Api-Key", valid), (b"X-Api-Key", g)], garbage),
            st.builds(lambda g: [(b"X-Api-Key", g), (b"X-Api-Key", valid)], garbage),
            st.builds(lambda g: [(b"X-Api-Key", g)], garbage),
            st.builds(lambda g: [(b"X-Api-Key", b"tt_live_" + g)], garbage),
            st.builds(lambda g: [(b"X-Api-Key", valid + g)], header_text),
            st.just([(b"X-Api-Key", b"  " + valid + b"\t ")]),
            st.just([(b"X-Api-Key", b"Bearer " + valid)]),
            st.just([(b"X-Api-Key", seeded.bystander.key.encode()[:-1] + b"!")]),
            st.builds(
                lambda size, c: [(b"X-Api-Key", c * size)],
                st.integers(100, 8000),
                st.sampled_from([b"a", b"\xe9", b"~"]),
            ),
        ]
    )


EXTRA_HEADER_NAMES = [
    b"User-Agent", b"X-Request-Id", b"Accept", b"Accept-Encoding", b"Accept-Language",
    b"Accept-Charset", b"Content-Type", b"Content-Encoding", b"X-Forwarded-For",
    b"X-Forwarded-Proto", b"X-Forwarded-Host", b"Forwarded", b"X-Real-IP", b"Cookie",
    b"Authorization", b"Origin", b"Referer", b"If-None-Match", b"If-Modified-Since", b"Range",
    b"Expect", b"Upgrade", b"Via", b"TE", b"X-HTTP-Method-Override", b"X-CSRF-Token", b"Host",
    b"Idempotency-Key", b"Max-Forwards",
]  # fmt: skip
EXTRA_HEADER_VALUES = [b"Zapier", b"n8n", b"100-continue", b"h2c", b"bytes=0-1,5-", b"*/*",
                       b"application/json", b"gzip", b"bridge_session=x.y.z"]  # fmt: skip
token_names = st.text(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    min_size=1,
    max_size=40,
).map(str.encode)
extra_headers = st.lists(
    st.tuples(
        st.sampled_from(EXTRA_HEADER_NAMES) | token_names,
        header_bytes
        | header_text
        | st.sampled_from(EXTRA_HEADER_VALUES)
        | st.integers(1000, 7000).map(lambda n: b"v" * n),
    ),
    max_size=5,
)
CONTENT_TYPES = [
    value.encode("latin-1")
    for value in [
        "application/json", "application/json; charset=utf-8", "application/json; charset=utf-16",
        "application/json; charset=latin-1", "application/json; charset=bogus",
        "application/json;;;", "APPLICATION/JSON", "application/vnd.api+json",
        "application/merge-patch+json", "text/json", "text/plain", "text/html",
        "application/xml", "application/x-www-form-urlencoded", "multipart/form-data",
        "multipart/form-data; boundary=zz", "application/octet-stream", "*/*",
        "application/json, text/html", "application/json; boundary=" + "b" * 2000, "\xe9/\xff",
    ]
]  # fmt: skip
BODY_KINDS = ["plausible", "wrong_types", "not_object", "unicode", "nested", "invalid_utf8",
              "nul", "surrogate", "numbers", "syntax", "encodings", "huge", "huge_chunked",
              "huge_padded", "huge_padded_chunked", "empty"]  # fmt: skip
INVALID_UTF8 = [b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xf0\x28\x8c\xbc", b"\xc0\xaf",
                b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]  # fmt: skip
NUL_FORMS = [b'"a\\u0000b"', b'"a\x00b"', b'"\\u0000"', b"\x00", b'"ok"\x00']
SURROGATE_FORMS = [b'"\\ud800"', b'"\\udfff"', b'"\\ud800x"', b'"\\udc00\\ud800"', b'"\\uD83D"',
                   b'"a\\ud83d\\ude00b"', b'"\\ud800\\u0041"']  # fmt: skip
NUMBERS = [b"1" + b"0" * 5000, b"-0", b"1e999", b"-1e999", b"NaN", b"Infinity", b"-Infinity",
           b"0x10", b"1_000", b"01", b"1." + b"1" * 10000, b"9" * 4301]  # fmt: skip
SYNTAX = [b"{", b"}", b'{"a":1,}', b"{'a': 1}", b'{"a":1}{"b":2}', b'{"a":1} trailing',
          b"/* c */ {}", b'{"a":1,"a":2}', b"\xef\xbb\xbf{}", b"null", b"[]", b'"str"', b" ",
          b"{]", b'{"a": "\\x41"}', b'{"a": "\\u12"}', b'{"a": "\t"}']  # fmt: skip
NESTING = [(b"[", b"]"), (b'{"a":', b"}"), (b'{"data":[', b"]}")]


def _json_bytes(value: Any, ascii_only: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def bad_bodies(draw: st.DrawFn, seeded: Seeded, operation: Operation) -> tuple[bytes, str]:
    """A body for ``operation`` of one of :data:`BODY_KINDS`, and which kind."""
    fields = operation.fields or ("data",)
    kind = draw(st.sampled_from(BODY_KINDS))
    name = draw(st.sampled_from(fields)).encode()
    ascii_only = draw(st.booleans())
    if kind == "plausible":
        names = draw(st.lists(st.sampled_from(fields), unique=True, min_size=1))
        body = _json_bytes({n: draw(field_value(n, seeded)) for n in names}, ascii_only)
    elif kind == "wrong_types":
        keys = st.sampled_from(fields) | odd_text
        body = _json_bytes(draw(st.dictionaries(keys, json_values, max_size=6)), ascii_only)
    elif kind == "not_object":
        body = _json_bytes(draw(json_values.filter(lambda v: not isinstance(v, dict))))
    elif kind == "unicode":
        text_values = st.text(st.characters(codec="utf-8"), min_size=1, max_size=80)
        body = _json_bytes({n: draw(text_values) for n in fields}, ascii_only)
    elif kind == "nested":
        depth = draw(st.sampled_from([50, 500, 990, 1000, 5000, 100_000, 400_000]))
        opener, closer = draw(st.sampled_from(NESTING))
        body = opener * depth + b"1" + (closer * depth if draw(st.booleans()) else b"")
    elif kind == "invalid_utf8":
        body = b'{"' + name + b'": "a' + draw(st.sampled_from(INVALID_UTF8)) + b'b"}'
    elif kind == "nul":
        body = b'{"' + name + b'": ' + draw(st.sampled_from(NUL_FORMS)) + b"}"
    elif kind == "surrogate":
        key = draw(st.sampled_from([name, b"\\ud800"]))
        body = b'{"' + key + b'": ' + draw(st.sampled_from(SURROGATE_FORMS)) + b"}"
    elif kind == "numbers":
        body = b'{"' + name + b'": ' + draw(st.sampled_from(NUMBERS)) + b"}"
    elif kind == "syntax":
        body = draw(st.sampled_from(SYNTAX))
    elif kind == "encodings":
        codec = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]))
        body = json.dumps({n: "Łódź €" for n in fields}, ensure_ascii=False).encode(
            codec, "replace"
        )
    elif kind in ("huge", "huge_chunked"):
        size = draw(st.integers(MAX_BODY_BYTES + 1, MAX_BODY_BYTES + 300_000))
        filler = draw(st.sampled_from([b"a", b"\x00", b"\xff", b"[", b" "]))
        body = b'{"' + name + b'": "' + filler * size + b'"}'
    elif kind in ("huge_padded", "huge_padded_chunked"):  # a fine object, then blank space
        names = draw(st.lists(st.sampled_from(fields), unique=True, min_size=1))
        body = _json_bytes({n: draw(field_value(n, seeded)) for n in names})
        body += b" " * draw(st.integers(MAX_BODY_BYTES + 1 - len(body), MAX_BODY_BYTES + 300_000))
    else:
        body = b""
    return body, kind


# --- raw requests: the generators --------------------------------------------------------------

ODD_METHODS = ["GET", "HEAD", "OPTIONS", "PATCH", "TRACE", "PROPFIND", "DELETE", "PUT", "POST",
               "SEARCH", "M-SEARCH"]  # fmt: skip
ODD_SEGMENTS = ["", "..", "%2e%2e", "%00", "%ff", "%c0%af", ";jsessionid=1", "🧾", "a" * 2000,
                "%25", "%2F", "x/y/z"]  # fmt: skip


@st.composite
def api_requests(
    draw: st.DrawFn, seeded: Seeded, ops: Sequence[Operation], category: str
) -> RawRequest:
    """An API request whose headers (``headers``), body (``bodies``) or method, path and query
    (``paths``) are odd, the rest plausible."""
    operation = draw(st.sampled_from(ops))
    method, path, query = operation.method, draw(fill_path(seeded, operation)), ""
    key = [(b"X-Api-Key", seeded.fuzz.key.encode())]
    headers = draw(api_key_headers(seeded)) if category == "headers" else key
    body, expect, chunked = b"", None, False
    if category == "headers":
        headers = headers + draw(extra_headers)
        if operation.takes_body:
            fields = operation.fields or ("data",)
            body = _json_bytes({n: draw(field_value(n, seeded)) for n in fields[:3]})
            headers.append((b"Content-Type", b"application/json"))
    elif category == "bodies":
        body, kind = draw(bad_bodies(seeded, operation))
        chunked = kind.endswith("_chunked")
        json_type = draw(st.integers(0, 3)) > 0
        content_type = b"application/json" if json_type else draw(st.sampled_from(CONTENT_TYPES))
        # Over the limit: refused at once with a declared length; chunked, once the body is
        # read, which every authenticated JSON request's to a route that exists is.
        plain_path = "%" not in path and ".." not in path
        if kind.startswith("huge") and (not chunked or (json_type and plain_path)):
            expect = 413
        headers = [*headers, (b"Content-Type", content_type)]
    else:
        method = draw(st.sampled_from([method] * 4 + ODD_METHODS))
        path = draw(
            st.sampled_from([path, path, path.replace("/", "//"), path.upper(), path + "/"])
            | st.sampled_from(ODD_SEGMENTS).map(lambda s: f"{path}/{quote(s, safe='%;=/.')}")
            | st.text(max_size=20).map(lambda t: f"{path}/{quote(t, safe='')}")
        )
        query = draw(query_strings())
        if draw(st.integers(0, 4)) == 0:
            headers, body = [*headers, (b"Content-Type", b"application/json")], b"{}"
    target = (path + query).encode("utf-8", "surrogatepass")
    return RawRequest(
        category, operation.route, method.encode(), target, tuple(headers), body, chunked, expect
    )


WEB_ROUTES = ["/signin", "/signout", "/generate/api-keys", "/", "/files/{token}", "/healthz",
              "/readyz", "/metrics", "/openapi.json", "/openapi", "/openapi/swagger",
              "/static/web/{asset}", "/generate/api-keys/{key_id}/roll",
              "/generate/api-keys/{key_id}/delete", "/nowhere"]  # fmt: skip
WEB_FIELDS = ["name", "permission", "grace", "email", "password", "next"]


@st.composite
def web_requests(draw: st.DrawFn, service: Service) -> RawRequest:
    """The routes outside the API description: sign-in, the API keys page, download links,
    health and metrics; with and without a session and a CSRF token; odd forms."""
    seeded = service.seeded
    route = draw(st.sampled_from(WEB_ROUTES))
    token = seeded.fuzz.file_token
    tokens = [token, token[:-2], token + "x", token.replace(".", ""), seeded.bystander.file_token,
              "a.b.c", "a" * 2000, "%00", "..%2f..%2fdata", "🧾", ""]  # fmt: skip
    assets = ["app.js", "../../secret_key", "%2e%2e/%2e%2e/x", "a" * 300]
    key_ids = [seeded.scratch_key_id, seeded.bystander.key_id, "key_x", "%00"]
    path = (
        route.replace("{token}", quote(draw(st.sampled_from(tokens)), safe="%"))
        .replace("{asset}", draw(st.sampled_from(assets)))
        .replace("{key_id}", draw(st.sampled_from(key_ids)))
    )
    method = draw(st.sampled_from(["GET", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"]))
    cookie = service.session_cookie.encode()
    cookies = {
        "session": [(b"Cookie", b"bridge_session=" + cookie)],
        "none": [],
        "garbage": [(b"Cookie", b"bridge_session=" + draw(header_bytes).replace(b";", b""))],
        "tampered": [(b"Cookie", b"bridge_session=" + cookie[:-3] + b"AAA")],
    }
    headers = list(
        cookies[draw(st.sampled_from(["session", "session", "none", "garbage", "tampered"]))]
    )
    csrf = draw(st.sampled_from([service.csrf_token, service.csrf_token, "", "x.y.z"]) | odd_text)
    if draw(st.booleans()):
        headers.append((b"Accept", b"application/json"))
    if draw(st.integers(0, 3)) == 0:
        headers.append(
            (b"X-CSRF-Token", csrf.encode("utf-8", "surrogatepass").translate(_TO_HEADER))
        )
        csrf = ""
    values = odd_text | st.sampled_from(
        ["0", "3600", "604800", "standard", "admin", "//evil", "/generate/api-keys",
         seeded.user_email, PASSWORD]
    )  # fmt: skip
    fields = {n: draw(values) for n in draw(st.lists(st.sampled_from(WEB_FIELDS), unique=True))}
    if csrf:
        fields["csrf_token"] = csrf
    body = b""
    encoding = draw(st.sampled_from(["form", "form", "multipart", "raw", "json", "huge", "none"]))
    expect = None
    if method in ("POST", "PUT") and encoding != "none":
        if encoding == "huge":  # a declared length over the limit
            size = draw(st.integers(MAX_BODY_BYTES + 1, MAX_BODY_BYTES + 300_000))
            body, expect = b"name=" + b"a" * size, 413
            headers.append((b"Content-Type", b"application/x-www-form-urlencoded"))
        elif encoding == "form":
            pairs = (f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in fields.items())
            body = "&".join(pairs).encode()
            headers.append((b"Content-Type", b"application/x-www-form-urlencoded"))
        elif encoding == "multipart":
            boundary = b"bI%d" % draw(st.integers(0, 10**6))
            body = b"".join(
                b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                % (boundary, k.encode(), v.encode("utf-8", "surrogatepass"))
                for k, v in fields.items()
            ) + (b"--" + boundary + b"--\r\n" if draw(st.booleans()) else b"")
            declared = boundary if draw(st.integers(0, 4)) else b"other"
            headers.append((b"Content-Type", b"multipart/form-data; boundary=" + declared))
        elif encoding == "raw":
            body = draw(st.binary(max_size=300))
            headers.append((b"Content-Type", draw(st.sampled_from(CONTENT_TYPES))))
        else:
            body = _json_bytes(fields, False)
            headers.append((b"Content-Type", b"application/json"))
    query = draw(query_strings()) if draw(st.booleans()) else ""
    headers += [h for h in draw(extra_headers) if h[0].lower() != b"cookie"]
    target = (path + query).encode("utf-8", "surrogatepass")
    return RawRequest(
        "web", f"{method} {route}", method.encode(), target, tuple(headers), body, expect=expect
    )


MALFORMED = {
    "method": [b"get", b"G@T", b"GET\x00", b"", b"\xc3\xa9", b"GET GET", b"A" * 300],
    "version": [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9", b"HTTPS/1.1", b"http/1.1", b"",
                b"HTTP/1.1 x"],
    "target": [b"/\xff\xfe", " é".encode(), b"/" + b"a" * 5000, b"\x00", b"\x7f", b"#frag"],
    "header": [b"X Api-Key: v", b"X-Api-Key : v", b"(x): v", b": v", b"\xe9t\xe9: v",
               b"X-\x00: v", b"A" * 9000 + b": v", b"no colon", b"X-Odd: a\x00b",
               b"X-Odd: a\x01b", b"X-Odd: \x7f", b"X-Odd: a\rb", b"X-Odd: \x0b",
               b"X-Folded: a\r\n  continued", b"X-Big: " + b"b" * 9000,
               b"Content-Type: a/b\r\nContent-Type: c/d"],
    "framing": [b"Content-Length: -1", b"Content-Length: abc", b"Content-Length: +2",
                b"Content-Length: 2\r\nContent-Length: 3", b"Content-Length: 0x2",
                b"Content-Length: 99999999999999999999999", b"Transfer-Encoding: gzip",
                b"Transfer-Encoding: chunked, gzip", b"Transfer-Encoding: identity",
                b"Transfer-Encoding: xchunked", b"Transfer-Encoding: chunked\r\nContent-Length: 2",
                b"Expect: n8n"],
}  # fmt: skip


@st.composite
def malformed_http(draw: st.DrawFn, service: Service, ops: Sequence[Operation]) -> RawRequest:
    """HTTP the server's parser has to refuse (odd request lines, header names and values,
    framing), aimed at API routes."""
    operation = draw(st.sampled_from(ops))
    path = draw(fill_path(service.seeded, operation)).encode()
    method, version = operation.method.encode(), b"HTTP/1.1"
    lines = [
        f"Host: {HOST}:{service.port}".encode(),
        b"X-Api-Key: " + service.seeded.fuzz.key.encode(),
    ]
    kind = draw(st.sampled_from([*MALFORMED, "header_count"]))
    if kind == "method":
        method = draw(st.sampled_from(MALFORMED[kind]))
    elif kind == "version":
        version = draw(st.sampled_from(MALFORMED[kind]))
    elif kind == "target":
        path += draw(st.sampled_from(MALFORMED[kind]))
    elif kind == "header_count":
        lines += [b"X-H%d: v" % i for i in range(draw(st.integers(101, 300)))]
    else:
        lines.append(draw(st.sampled_from(MALFORMED[kind])))
    body = b"2\r\n{}\r\n0\r\n\r\n" if b"Transfer-Encoding" in lines[-1] else b""
    body = b"{}" if b"Content-Length: 2" in lines[-1] else body
    head = b"%s %s %s\r\n%s\r\nConnection: close\r\n\r\n" % (
        method,
        path,
        version,
        b"\r\n".join(lines),
    )
    return RawRequest("malformed HTTP", operation.route, method, path, (), body, raw_head=head)


RAW_MIX = (("headers", 25), ("bodies", 35), ("paths", 20), ("web", 15), ("malformed HTTP", 5))


def raw_request_strategy(
    service: Service, ops: Sequence[Operation]
) -> st.SearchStrategy[RawRequest]:
    weighted: list[st.SearchStrategy[RawRequest]] = []
    for category, weight in RAW_MIX:
        if category == "web":
            strategy = web_requests(service)
        elif category == "malformed HTTP":
            strategy = malformed_http(service, ops)
        else:
            chosen = [op for op in ops if op.takes_body] if category == "bodies" else list(ops)
            strategy = api_requests(service.seeded, chosen, category)
        weighted += [strategy] * weight
    return st.one_of(weighted)


def draw_requests(
    strategy: st.SearchStrategy[RawRequest], count: int, seed: int
) -> list[RawRequest]:
    """``count`` requests drawn by hypothesis; the same seed draws the same requests."""
    drawn: list[RawRequest] = []
    for round_ in range(100):  # hypothesis may stop a round early; a new seed goes on
        if len(drawn) >= count:
            break

        @hypothesis_seed(seed * 1000 + round_)
        @settings(
            max_examples=count - len(drawn),
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def collect(request: RawRequest) -> None:
            drawn.append(request)

        collect()
    return drawn[:count]


def run_raw(
    service: Service,
    count: int,
    add: Callable[[Exchange], None],
    *,
    seed: int = 0,
    concurrency: int = 6,
    batch: int = 500,
    progress: Callable[[str], None] = lambda _: None,
) -> None:
    """Draw ``count`` raw requests, a batch at a time (huge bodies stay few in memory), send
    them ``concurrency`` at once, and pass every exchange to ``add``."""
    ops = operations(requests.get(service.url + "/openapi.json", timeout=10).json())
    strategy = raw_request_strategy(service, ops)
    sent = 0
    with ThreadPoolExecutor(concurrency) as pool:
        try:
            for number in range(0, count, batch):
                drawn = draw_requests(strategy, min(batch, count - number), seed + number)
                random.Random(seed + number).shuffle(drawn)
                for exchange in pool.map(lambda r: send(service.port, r), drawn):
                    add(exchange)
                sent += len(drawn)
                progress(f"raw requests: {sent:,} of {count:,} sent")
        except BaseException:  # interrupted: send no more of the batch
            pool.shutdown(wait=False, cancel_futures=True)
            raise


# --- after the run: healthy, nothing lost ------------------------------------------------------


@dataclass
class Integrity:
    problems: list[str] = field(default_factory=list)
    read_back: int = 0  # requests made to read the fuzzing account back


def _get(service: Service, path: str, key: str) -> requests.Response:
    return requests.get(service.url + path, headers={"X-Api-Key": key}, timeout=30)


def check_integrity(service: Service, bystander_before: Mapping[str, Any]) -> Integrity:
    """/readyz answers 200; the bystander account is exactly as it was; both accounts' key,
    template and document work; SQLite finds its file sound; the fuzz account reads back."""
    seeded, result = service.seeded, Integrity()
    ready = requests.get(service.url + "/readyz", timeout=10)
    if ready.status_code != 200:
        result.problems.append(f"/readyz answered {ready.status_code}: {ready.text[:300]}")
    with bridge_services(
        service.database_url, service.data_dir, allow_private_hook_targets=True
    ) as services:
        if (after := snapshot(services, seeded.bystander.id)) != bystander_before:
            difference = _first_difference(bystander_before, after)
            result.problems.append(f"the bystander account changed: {difference}")
        protected = services.templates.get(seeded.fuzz.id, seeded.fuzz.template_id)
        if "{{ customer.name }}" not in protected.body or protected.name != "Invoice":
            result.problems.append(f"the protected template changed: {protected!r}")
        if service.database_url.startswith("sqlite"):
            with services.db.engine.connect() as connection:
                verdict = connection.execute(text("PRAGMA integrity_check")).scalar()
            if verdict != "ok":
                result.problems.append(f"SQLite integrity_check: {verdict}")
    for who, account in (("fuzz", seeded.fuzz), ("bystander", seeded.bystander)):
        me = _get(service, "/v1/me", account.key)
        if me.status_code != 200 or me.json().get("key_id") != account.key_id:
            result.problems.append(
                f"the {who} key no longer works: {me.status_code} {me.text[:200]}"
            )
        template = _get(service, f"/v1/templates/{account.template_id}", account.key)
        if template.status_code != 200:
            result.problems.append(f"the {who} template is gone: {template.status_code}")
        download = requests.get(f"{service.url}/files/{account.file_token}", timeout=30)
        if download.status_code != 200 or b"Ada" not in download.content:
            result.problems.append(
                f"the {who} document no longer downloads: {download.status_code}"
            )
        result.read_back += 3
    _read_everything_back(service, result)
    return result


def _read_everything_back(service: Service, result: Integrity) -> None:
    """Every list of the fuzz account pages through and every template in it reads: what
    thousands of odd requests left behind is whole."""
    key = service.seeded.fuzz.key
    for listing in ("/v1/templates", "/v1/documents", "/v1/events"):
        cursor: str | None = ""
        while cursor is not None:
            after = f"&cursor={quote(cursor)}" if cursor else ""
            page = _get(service, f"{listing}?limit=100{after}", key)
            result.read_back += 1
            if page.status_code != 200:
                result.problems.append(
                    f"GET {listing} answered {page.status_code}: {page.text[:200]}"
                )
                break
            for item in page.json()["data"] if listing == "/v1/templates" else []:
                one = _get(service, f"/v1/templates/{item['id']}", key)
                result.read_back += 1
                if one.status_code != 200 or "body" not in one.json():
                    result.problems.append(
                        f"template {item['id']} does not read: {one.status_code}"
                    )
            cursor = page.json().get("next_cursor")
    for path in ("/v1/hooks", "/v1/api-keys?include_deleted=true", "/n8n/hooks", "/zapier/me"):
        answer = _get(service, path, key)
        result.read_back += 1
        if answer.status_code != 200:
            result.problems.append(f"GET {path} answered {answer.status_code}: {answer.text[:200]}")


def _first_difference(before: Any, after: Any, where: str = "") -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                return _first_difference(before.get(name), after.get(name), f"{where}.{name}")
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (one, other) in enumerate(zip(before, after, strict=True)):
            if one != other:
                return _first_difference(one, other, f"{where}[{index}]")
    return f"{where or 'value'}: {str(before)[:120]} -> {str(after)[:120]}"


def server_errors_logged(lines: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Log lines that say the server failed: ERROR and worse, tracebacks, 5xx request lines."""
    return [
        line
        for line in lines
        if str(line.get("level")) in {"ERROR", "CRITICAL"}
        or "Traceback" in json.dumps(line)
        or (line.get("message") == "request" and int(line.get("status", 0)) >= 500)
    ]


# --- the run and its report --------------------------------------------------------------------


@dataclass
class Result:
    tally: Tally
    schemathesis: SchemathesisRun
    integrity: Integrity
    logged_errors: list[Mapping[str, Any]]
    log_lines: list[dict[str, Any]]
    seconds: float
    base_url: str

    @property
    def failed(self) -> bool:
        return bool(self.tally.findings or self.integrity.problems or self.logged_errors)

    def report(self) -> str:
        st_run = self.schemathesis
        phases = ", ".join(f"{n} {c:,}" for n, c in st_run.phases.most_common())
        out = ["## Answers by status", "", status_table(self.tally), "",
               f"{self.tally.total:,} requests in {self.seconds:.0f} s (schemathesis: {phases}); "
               f"{self.integrity.read_back:,} more to check what is stored.", "",
               checks_table(st_run), ""]  # fmt: skip
        if st_run.failures:
            out += ["| schemathesis failure | times | first |", "|---|---:|---|"]
            for (check, title), count in st_run.failures.most_common():
                first = st_run.failure_examples[(check, title)].replace("|", "\\|")
                out.append(f"| {check}: {title} | {count:,} | {first} |")
            out.append("")
        for error in st_run.errors:
            out.append(f"- schemathesis's own error (not the service's): {error[:600]}")
        out += ["", "## Findings", ""]
        if not self.failed:
            out.append("None: no 5xx, no stack trace, no unanswered request, every API error "
                       "JSON with error.code and error.message, stored data intact.")  # fmt: skip
        ordered = sorted(
            self.tally.findings.values(),
            key=lambda f: (f.where.startswith("HTTP parser"), -f.count),
        )
        out += [describe(finding, self.log_lines, self.base_url) for finding in ordered]
        out += [f"- integrity: {problem}" for problem in self.integrity.problems]
        logged: dict[str, list[Mapping[str, Any]]] = {}
        for line in self.logged_errors:  # one entry per message and path, with its count
            logged.setdefault(f"{line.get('message')} {line.get('path', '')}", []).append(line)
        for lines in logged.values():
            out.append(f"- server log ({len(lines)}x): {json.dumps(lines[0])[:3000]}")
        return "\n".join(out)


def status_table(tally: Tally) -> str:
    sources = tally.sources
    rows = [
        "| status | " + " | ".join(sources) + " | total |",
        "|---|" + "---:|" * (len(sources) + 1),
    ]
    for status in sorted({status for _, status in tally.statuses}):
        counts = [tally.statuses[(source, status)] for source in sources]
        label = "no answer" if status == 0 else str(status)
        rows.append(
            f"| {label} | " + " | ".join(f"{c:,}" for c in counts) + f" | {sum(counts):,} |"
        )
    totals = [sum(c for (s, _), c in tally.statuses.items() if s == source) for source in sources]
    rows.append("| all | " + " | ".join(f"{t:,}" for t in totals) + f" | {sum(totals):,} |")
    return "\n".join(rows)


def checks_table(run: SchemathesisRun) -> str:
    rows = ["| schemathesis check | passed | failed |", "|---|---:|---:|"]
    for name in sorted({name for name, _ in run.checks}):
        passed, failed = run.checks[(name, "success")], run.checks[(name, "failure")]
        rows.append(f"| {name} | {passed:,} | {failed:,} |")
    return "\n".join(rows)


def _shown(data: bytes | str, limit: int = 300) -> str:
    raw = data.encode("latin-1", "replace") if isinstance(data, str) else data
    more = f" … ({len(raw):,} bytes)" if len(raw) > limit else ""
    return repr(raw[:limit]) + more


def describe(finding: Finding, log_lines: Sequence[Mapping[str, Any]], base_url: str) -> str:
    example = finding.example
    out = [f"### {finding.title} ({finding.count:,}x)"]
    if example.raw_head:
        out.append(
            f"request, as sent: {_shown(example.raw_head, 400)} body {_shown(example.request_body)}"
        )
    else:
        out.append(f"request: {example.method} {example.target[:400]}")
        out += [f"  {name}: {_shown(value, 160)}" for name, value in example.request_headers]
        if example.request_body:
            out.append(f"  body: {_shown(example.request_body, 400)}")
        out.append(f"  replay: {curl(example, base_url)[:1200]}")
    if example.status:
        content_type = example.response_headers.get("content-type", "no Content-Type")
        out.append(f"answer: {example.status} {content_type} {_shown(example.response_body, 400)}")
    else:
        out.append(f"answer: none ({example.note})")
    request_id = example.response_headers.get("x-request-id")
    out += [f"  log: {json.dumps(line)[:3000]}" for line in log_lines
            if request_id and line.get("request_id") == request_id][:4]  # fmt: skip
    return "\n".join(out) + "\n"


def curl(exchange: Exchange, base_url: str) -> str:
    """A shell command that replays an exchange (huge bodies: from body.bin)."""
    target = exchange.target if "://" in exchange.target else base_url + exchange.target
    parts = ["curl", "-sS", "-i", "-X", exchange.method, repr(target)]
    for name, value in exchange.request_headers:
        parts += ["-H", "$" + repr(f"{name}: {value}")]
    if len(exchange.request_body) > 2000:
        parts += ["--data-binary", "@body.bin"]
    elif exchange.request_body:
        parts += ["--data-binary", "$" + repr(exchange.request_body)[1:]]
    return " ".join(parts)


def run(
    work_dir: Path,
    *,
    total: int,
    database: str = "sqlite",
    seed: int = 0,
    schemathesis_share: float = SCHEMATHESIS_SHARE,
    schemathesis_phases: str = "coverage,fuzzing,stateful",
    schemathesis_examples: int | None = None,
    schemathesis_workers: int = 1,
    raw_concurrency: int = 6,
    progress: Callable[[str], None] = lambda _: None,
) -> Result:
    """A service; schemathesis; raw requests up to ``total``; then the checks that it is
    healthy and nothing stored was lost."""
    started = time.monotonic()
    tally = Tally()
    with live_service(work_dir, database) as service:
        with bridge_services(
            service.database_url, service.data_dir, allow_private_hook_targets=True
        ) as services:
            bystander_before = snapshot(services, service.seeded.bystander.id)
        operation_count = len(
            operations(requests.get(service.url + "/openapi.json", timeout=10).json())
        )
        # The coverage phase sends about 1,000 whatever the examples; fuzzing and stateful
        # testing about 40 per example asked for (all operations together).
        estimate = round((total * schemathesis_share - 1000) / 40)
        examples = schemathesis_examples or max(3, estimate)
        progress(f"schemathesis: {operation_count} operations, up to {examples} examples each")
        schemathesis = run_schemathesis(
            service,
            work_dir,
            tally.add,
            max_examples=examples,
            phases=schemathesis_phases,
            workers=schemathesis_workers,
            seed=seed,
        )
        progress(f"schemathesis sent {schemathesis.sent:,} in {time.monotonic() - started:.0f} s")
        raw_count = max(total - schemathesis.sent, round(total * (1 - schemathesis_share) / 2))
        run_raw(
            service, raw_count, tally.add, seed=seed, concurrency=raw_concurrency, progress=progress
        )
        progress(
            f"{tally.total:,} sent in {time.monotonic() - started:.0f} s; checking what is stored"
        )
        integrity = check_integrity(service, bystander_before)
        log_lines = service.log_lines()
    seconds = time.monotonic() - started
    return Result(
        tally, schemathesis, integrity, server_errors_logged(log_lines), log_lines, seconds,
        service.url,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="in all")
    parser.add_argument(
        "--database-url",
        default="sqlite",
        help="sqlite, or a PostgreSQL server (postgresql://postgres@127.0.0.1:5432) to create "
        "a throwaway database on",
    )
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs and reports here")
    arguments = parser.parse_args()
    stop_cleanly_on_sigterm()
    seed = arguments.seed if arguments.seed is not None else random.randrange(2**31)
    print(f"seed {seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bad-input-") as temporary:
        work_dir = arguments.keep or Path(temporary)
        work_dir.mkdir(parents=True, exist_ok=True)
        result = run(
            work_dir,
            total=arguments.requests,
            database=arguments.database_url,
            seed=seed,
            progress=lambda message: print(message, flush=True),
        )
    print(result.report())
    if result.tally.total < arguments.requests:
        print(f"\nonly {result.tally.total:,} of {arguments.requests:,} requests were sent")
        sys.exit(1)
    sys.exit(1 if result.failed else 0)


if __name__ == "__main__":
    main()
