"""A real n8n 2.8.4, headless on 127.0.0.1 for the tests, with one community node package loaded.

The package is installed the way n8n installs community packages: linked into
``<home>/.n8n/nodes/node_modules/<package name>`` (or already there, installed by npm as a user
would: then it is used as it is). n8n then reads the package's ``"n8n"`` section in
package.json (so a wrong path there fails here, as it would for a user), and node types are named
``<package name>.<node name>`` (see :func:`node_type`), exactly as in a user's workflows; credential
types keep their bare ``name``.

Headless commands (``import:*``, ``execute``) cover actions; triggers, the credential test and
lists loaded from the service need the server (:meth:`N8n.running`), driven over the editor's
own REST API as the instance owner. Nothing leaves 127.0.0.1: every feature that would call
n8n's or npm's servers is switched off, and every endpoint n8n could still be told to call points
at a closed local port.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ..helpers import free_port

__all__ = [
    "NODE_MODULES",
    "Execution",
    "N8n",
    "N8nError",
    "N8nServer",
    "migrated_database",
    "node_items",
    "node_subtitle",
    "node_type",
    "parse_flatted",
]

RUNTIME = Path(__file__).with_name("runtime")
NODE_MODULES = RUNTIME / "node_modules"

# Fixed, so that a database copied between homes stays readable (n8n encrypts credentials with it).
ENCRYPTION_KEY = "templateto-bridge-n8n-tests"
OWNER = {
    "email": "owner@example.com",
    "firstName": "Test",
    "lastName": "Owner",
    "password": "Tests-Passw0rd",
}
# n8n binds its auth cookie to this header: every request of a session must send the same value.
BROWSER_ID = "templateto-bridge-tests"
# Nothing listens on the discard port: whatever n8n might still try to reach fails at once, locally.
NOWHERE = "http://127.0.0.1:9/"

COMMAND_TIMEOUT = 90.0
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
HTTP_TIMEOUT = 30.0
READY_LINE = "Editor is now accessible via"
TERMINAL_STATUSES = {"success", "error", "crashed", "canceled"}
_PACKAGE_NAME = re.compile(r"^(@[^/]+/)?n8n-nodes-[^/]+$")


class N8nError(AssertionError):
    """n8n did not do what a test needed; the message carries what n8n said."""


def node_type(package_dir: Path, name: str) -> str:
    """The type of node ``name`` from the package in ``package_dir``, as workflows name it."""
    return f"{_package_name(package_dir)}.{name}"


def node_items(execution: Mapping[str, Any], node: str, *, output: int = 0) -> list[dict]:
    """The JSON of the items ``node`` sent to ``output`` in its first run of ``execution``.

    Works on :attr:`Execution.data` and on the dicts from :meth:`N8nServer.executions` alike.
    """
    [run, *_] = execution["data"]["resultData"]["runData"][node]
    return [item["json"] for item in run["data"]["main"][output]]


@dataclass(frozen=True)
class Execution:
    """One ``n8n execute --rawOutput`` run.

    ``data`` is the run n8n printed (``{"data": {"resultData": {"runData", "error"}}, "status"}``),
    printed on failure too, or None when n8n printed none.
    """

    ok: bool
    data: Any
    stdout: str
    stderr: str

    @property
    def error(self) -> dict | None:
        """What stopped the run: ``message`` (n8n's fixed text), ``description``, ``httpCode``."""
        if not self.data:
            return None
        return self.data["data"]["resultData"].get("error")

    def items(self, node: str, *, output: int = 0) -> list[dict]:
        """The JSON of the items ``node`` sent on."""
        return node_items(self.data, node, output=output)

    @property
    def report(self) -> str:
        """What happened, for assertion messages: ``assert run.ok, run.report``."""
        lines = [f"n8n execute {'succeeded' if self.ok else 'failed'}"]
        if self.error:
            lines.append(f"error: {self.error.get('message')!r}")
            lines.append(f"description: {self.error.get('description')!r}")
        lines.append(_tail(self.stdout + self.stderr))
        return "\n".join(lines)


def parse_flatted(text: str) -> Any:
    """Decode the ``flatted`` format n8n stores execution data in (``GET /rest/executions/{id}``).

    Flatted is a JSON array: item 0 is the value; inside objects and arrays every string is the
    index of the item holding the real value, so shared and circular references survive.
    """
    table = json.loads(text)
    revived: dict[int, Any] = {}

    def value(index: int) -> Any:
        if index in revived:
            return revived[index]
        raw = table[index]
        if isinstance(raw, list):
            items: list[Any] = []
            revived[index] = items
            items.extend(member(each) for each in raw)
            return items
        if isinstance(raw, dict):
            mapping: dict[str, Any] = {}
            revived[index] = mapping
            mapping.update((key, member(each)) for key, each in raw.items())
            return mapping
        return raw

    def member(raw: Any) -> Any:
        return value(int(raw)) if isinstance(raw, str) else raw

    return value(0)


# The subtitle the editor shows under a node on the canvas, by n8n's own expression engine: the
# node file's class (named as the file, as n8n requires) with the given parameters.
_SUBTITLE_JS = """
const { Workflow } = require('n8n-workflow');
const [file, parameters] = JSON.parse(process.argv[1]);
const name = require('path').basename(file).split('.')[0];
const type = new (require(file)[name])();
const node = { id: 'n', name, type: name, typeVersion: 1, position: [0, 0], parameters };
const nodeTypes = {
  getByName: () => type, getByNameAndVersion: () => type, getKnownTypes: () => ({}),
};
const workflow = new Workflow({ nodes: [node], connections: {}, active: false, nodeTypes });
const subtitle = workflow.expression.getSimpleParameterValue(
  node, type.description.subtitle, 'internal', {},
);
process.stdout.write(JSON.stringify(subtitle === undefined ? null : subtitle));
"""


def node_subtitle(node_file: Path, parameters: dict, node_modules: Path = NODE_MODULES) -> Any:
    """What the editor shows under the node in ``node_file`` with these parameters."""
    completed = subprocess.run(
        ["node", "-e", _SUBTITLE_JS, json.dumps([str(node_file.resolve()), parameters])],
        env={**os.environ, "NODE_PATH": str(node_modules)},
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    if completed.returncode != 0:
        raise N8nError(f"evaluating the subtitle of {node_file} failed:\n{completed.stderr}")
    return json.loads(completed.stdout)


def migrated_database(directory: Path, node_modules: Path = NODE_MODULES) -> Path:
    """An n8n database with every migration applied, to start each home from.

    Migrating a new home costs its first command ~1.5 s; tests copy this one instead.
    """
    home = directory / "home"
    _run_cli(node_modules, _environment(home), ["list:workflow"], COMMAND_TIMEOUT)
    target = directory / "database.sqlite"
    _copy_database(home / ".n8n" / "database.sqlite", target)
    return target


class N8n:
    """One n8n user folder with a community node package loaded.

    Imports are queued and run in one ``import:credentials`` and one ``import:workflow`` command
    just before n8n next needs them (an execute, a server start, a REST call, even while the
    server runs): each n8n command costs ~2.5 s, however much it imports.
    """

    def __init__(
        self,
        home: Path,
        package_dir: Path,
        *,
        node_modules: Path = NODE_MODULES,
        database: Path | None = None,
    ) -> None:
        """``package_dir`` holds package.json and dist/; ``database``: :func:`migrated_database`."""
        self.home = home
        self.package_dir = package_dir
        self.node_modules = node_modules
        self.port: int | None = None
        self._pending_credentials: list[dict] = []
        self._pending_workflows: list[dict] = []
        self._server: N8nServer | None = None
        self._starts = itertools.count(1)
        name = _package_name(package_dir)
        if not _PACKAGE_NAME.match(name):
            raise ValueError(f"n8n loads community packages named n8n-nodes-*, not {name!r}")
        link = home / ".n8n" / "nodes" / "node_modules" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link != package_dir and not link.is_symlink():
            link.symlink_to(package_dir.resolve(), target_is_directory=True)
        if database is not None and not (home / ".n8n" / "database.sqlite").exists():
            _copy_database(database, home / ".n8n" / "database.sqlite")

    def environment(self, port: int | None = None) -> dict[str, str]:
        """The environment n8n runs in; ``port`` for the server (and its webhook URLs)."""
        return _environment(self.home, port or self.port)

    def cli(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """Run ``n8n <args>`` on this home; raise :class:`N8nError` with its output if it fails."""
        self._import_pending()
        return _run_cli(self.node_modules, self.environment(), list(args), timeout)

    def import_credential(self, credential: dict) -> None:
        """Queue ``{"id", "name", "type", "data": {...}}``: plaintext data, n8n encrypts it."""
        self._pending_credentials.append(credential)

    def import_workflow(self, workflow: dict) -> None:
        """Queue a whole workflow (with its ``"id"``); it is imported inactive."""
        self._pending_workflows.append(workflow)

    def execute(self, workflow_id: str, *, timeout: float = COMMAND_TIMEOUT) -> Execution:
        """Run the workflow once, headless, from its manual trigger (~2.5 s + the run)."""
        self._import_pending()
        completed = _run_cli(
            self.node_modules,
            self.environment(),
            ["execute", f"--id={workflow_id}", "--rawOutput"],
            timeout,
            check=False,
        )
        return Execution(
            ok=completed.returncode == 0,
            data=_printed_run(completed.stdout),
            stdout=completed.stdout,
            stderr=completed.stderr,
        )

    @contextmanager
    def running(self, *, timeout: float = START_TIMEOUT) -> Iterator[N8nServer]:
        """``n8n start`` on 127.0.0.1, logged in as the owner; stopped on exit.

        Yields once n8n has activated the active workflows (~5 s). Enter again later to restart on
        the same home: the port stays the same, so webhook URLs n8n registered stay valid.
        """
        if self._server is not None:
            raise RuntimeError("this n8n is already running")
        self._import_pending()
        if self.port is None:
            self.port = free_port()
        log_path = self.home / f"n8n-start-{next(self._starts)}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [str(self.node_modules / ".bin" / "n8n"), "start"],
                env=self.environment(self.port),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = N8nServer(self, f"http://127.0.0.1:{self.port}", process, log_path)
        self._server = server
        try:
            server._wait_until_ready(timeout)
            server._log_in()
            yield server
        finally:
            self._server = None
            server._stop()

    def _import_pending(self) -> None:
        for command, pending in (
            ("import:credentials", self._pending_credentials),
            ("import:workflow", self._pending_workflows),
        ):
            if not pending:
                continue
            batch = list(pending)
            pending.clear()
            path = self.home / f"{command.replace(':', '-')}-{time.monotonic_ns()}.json"
            path.write_text(json.dumps(batch))
            _run_cli(self.node_modules, self.environment(), [command, f"--input={path}"], 60)


class N8nServer:
    """A started n8n: its REST API as the owner, plus the editor's actions tests need."""

    def __init__(self, n8n: N8n, url: str, process: subprocess.Popen, log_path: Path) -> None:
        self.n8n = n8n
        self.url = url
        self.webhook_url = f"{url}/"
        self.process = process
        self.log_path = log_path
        self.session = requests.Session()
        self.session.headers["browser-id"] = BROWSER_ID

    def log(self) -> str:
        """Everything n8n printed since this start."""
        return self.log_path.read_text(errors="replace")

    def rest(self, method: str, path: str, json: Any = None) -> requests.Response:
        """Call the editor's API as the owner; ``path`` is under /rest, e.g. ``/workflows/abc``."""
        self.n8n._import_pending()
        return self.session.request(
            method, f"{self.url}/rest{path}", json=json, timeout=HTTP_TIMEOUT
        )

    def test_credential(self, credential: dict) -> dict:
        """The editor's "Test" button for an imported credential: ``{"status", "message"}``."""
        response = self.rest("POST", "/credentials/test", {"credentials": credential})
        return self._data(response)

    def search_list(
        self,
        node_type: str,
        property_name: str,
        method_name: str,
        credentials: dict,
        current_parameters: dict,
        filter: str = "",
        pagination_token: str | None = None,
    ) -> dict:
        """A resource locator's list as the editor asks for it (typing ``filter``, scrolling on
        with ``pagination_token``): ``{"results": [{"name", "value"}], "paginationToken"}``."""
        payload: dict[str, Any] = {
            "nodeTypeAndVersion": {"name": node_type, "version": 1},
            "path": f"parameters.{property_name}",
            "methodName": method_name,
            "currentNodeParameters": current_parameters,
            "credentials": _node_credentials(credentials),
            "filter": filter,
        }
        if pagination_token is not None:
            payload["paginationToken"] = pagination_token
        return self._data(
            self.rest("POST", "/dynamic-node-parameters/resource-locator-results", payload)
        )

    def node_types(self) -> dict[str, dict]:
        """Every node type the editor offers (the AI agents' tool versions included), by name:
        the description n8n loaded, with its codex."""
        response = self.session.get(f"{self.url}/types/nodes.json", timeout=HTTP_TIMEOUT)
        if response.status_code != 200:
            raise N8nError(f"/types/nodes.json answered {response.status_code}")
        return {description["name"]: description for description in response.json()}

    def activation_error(self, workflow_id: str) -> str | None:
        """What the editor shows for a workflow n8n could not activate (None when it could)."""
        return self._data(self.rest("GET", f"/active-workflows/error/{workflow_id}"))

    def activate(self, workflow_id: str) -> None:
        """Publish the workflow's current version as the editor's toggle does: triggers register."""
        workflow = self._data(self.rest("GET", f"/workflows/{workflow_id}"))
        self._data(
            self.rest(
                "POST",
                f"/workflows/{workflow_id}/activate",
                {"versionId": workflow["versionId"]},
            )
        )

    def deactivate(self, workflow_id: str) -> None:
        """Unpublish the workflow; triggers remove their webhooks."""
        self._data(self.rest("POST", f"/workflows/{workflow_id}/deactivate", {}))

    def executions(self, workflow_id: str, *, count: int = 0, timeout: float = 20.0) -> list[dict]:
        """The workflow's finished executions with their data, newest first.

        Waits until there are at least ``count`` (webhook runs finish after n8n has answered).
        Each is ``GET /rest/executions/{id}`` with ``data`` decoded (see :func:`node_items`).
        """
        deadline = time.monotonic() + timeout
        while True:
            listed = self._data(
                self.rest(
                    "GET",
                    "/executions?limit=100&filter="
                    + requests.utils.quote(json.dumps({"workflowId": workflow_id})),
                )
            )["results"]
            finished = [e for e in listed if e["status"] in TERMINAL_STATUSES]
            if len(finished) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if len(finished) < count:
            raise N8nError(
                f"{len(finished)} finished executions of {workflow_id}, expected {count}:\n"
                f"{json.dumps(listed, indent=1)}\n{_tail(self.log())}"
            )
        detailed = []
        for summary in sorted(finished, key=lambda e: int(e["id"]), reverse=True):
            execution = self._data(self.rest("GET", f"/executions/{summary['id']}"))
            execution["data"] = parse_flatted(execution["data"])
            detailed.append(execution)
        return detailed

    def _data(self, response: requests.Response) -> Any:
        if response.status_code != 200:
            raise N8nError(
                f"{response.request.method} {response.url} answered {response.status_code}: "
                f"{response.text[:2000]}\n{_tail(self.log())}"
            )
        return response.json()["data"]

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log():
            if self.process.poll() is not None:
                raise N8nError(f"n8n start exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise N8nError(f"n8n did not start within {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.1)

    def _log_in(self) -> None:
        # The owner exists from the first start of a home on; before that only setup works.
        login = {"emailOrLdapLoginId": OWNER["email"], "password": OWNER["password"]}
        response = self.rest("POST", "/login", login)
        if response.status_code == 401:
            response = self.rest("POST", "/owner/setup", OWNER)
        self._data(response)

    def _stop(self) -> None:
        self.session.close()
        _stop_process(self.process)


def _package_name(package_dir: Path) -> str:
    return json.loads((package_dir / "package.json").read_text())["name"]


def _node_credentials(credentials: dict) -> dict:
    if {"id", "name", "type"} <= credentials.keys() and isinstance(credentials["type"], str):
        return {credentials["type"]: {"id": credentials["id"], "name": credentials["name"]}}
    return credentials


def _environment(home: Path, port: int | None = None) -> dict[str, str]:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("N8N_", "DB_", "EXECUTIONS_", "QUEUE_", "NODES_", "NODE_"))
        and key.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
        and key not in {"WEBHOOK_URL", "GENERIC_TIMEZONE"}
    }
    port = port or 5678
    return {
        **inherited,
        "N8N_USER_FOLDER": str(home),
        "N8N_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "GENERIC_TIMEZONE": "UTC",
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_HOST": "127.0.0.1",
        "N8N_PORT": str(port),
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/",
        "N8N_EDITOR_BASE_URL": f"http://127.0.0.1:{port}/",
        "N8N_SECURE_COOKIE": "false",
        # A port per process: a server and an `execute` on the same machine must not collide.
        "N8N_RUNNERS_BROKER_PORT": str(free_port()),
        "N8N_RUNNERS_BROKER_LISTEN_ADDRESS": "127.0.0.1",
        # `execute` prints its result at info level.
        "N8N_LOG_LEVEL": "info",
        "N8N_LOG_OUTPUT": "console",
        "N8N_LOG_FORMAT": "text",
        "N8N_GRACEFUL_SHUTDOWN_TIMEOUT": "10",
        # Off: everything that talks to n8n's, npm's or anyone's servers.
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_DIAGNOSTICS_POSTHOG_API_HOST": NOWHERE,
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_WHATS_NEW_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENDPOINT": NOWHERE,
        "N8N_VERSION_NOTIFICATIONS_WHATS_NEW_ENDPOINT": NOWHERE,
        "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        "N8N_TEMPLATES_HOST": NOWHERE,
        "N8N_DYNAMIC_TEMPLATES_HOST": NOWHERE,
        "N8N_DYNAMIC_BANNERS_ENABLED": "false",
        "N8N_DYNAMIC_BANNERS_ENDPOINT": NOWHERE,
        "N8N_HIRING_BANNER_ENABLED": "false",
        "N8N_AI_ENABLED": "false",
        "N8N_AI_ASSISTANT_BASE_URL": NOWHERE,
        "N8N_LICENSE_AUTO_RENEW_ENABLED": "false",
        "N8N_LICENSE_SERVER_URL": NOWHERE,
        "N8N_COMMUNITY_PACKAGES_REGISTRY": NOWHERE,
        "N8N_VERIFIED_PACKAGES_ENABLED": "false",
        "N8N_REINSTALL_MISSING_PACKAGES": "false",
        "N8N_PUBLIC_API_SWAGGERUI_DISABLED": "true",
    }


def _run_cli(
    node_modules: Path,
    env: dict[str, str],
    args: list[str],
    timeout: float,
    *,
    check: bool = True,
) -> subprocess.CompletedProcess:
    command = [str(node_modules / ".bin" / "n8n"), *args]
    # A session of its own, so a timeout also ends the task runner n8n starts as a child.
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        stdout, stderr = process.communicate()
        raise N8nError(
            f"n8n {' '.join(args)} did not finish within {timeout:.0f} s:\n{stdout}{stderr}"
        ) from None
    finally:
        _kill_group(process)
    completed = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    if check and completed.returncode != 0:
        raise N8nError(
            f"n8n {' '.join(args)} exited with {completed.returncode}:\n{stdout}{stderr}"
        )
    return completed


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    _kill_group(process)
    process.wait(timeout=STOP_TIMEOUT)


def _kill_group(process: subprocess.Popen) -> None:
    """End what is left of the session ``process`` leads (started with ``start_new_session``)."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _printed_run(stdout: str) -> Any:
    # Log lines come first; the run is the JSON object whose "{" stands alone on a line.
    decoder = json.JSONDecoder()
    for start in re.finditer(r"^\{$", stdout, re.MULTILINE):
        try:
            value, _ = decoder.raw_decode(stdout, start.start())
        except ValueError:
            continue
        if isinstance(value, dict) and "data" in value:
            return value
    return None


def _copy_database(source: Path, target: Path) -> None:
    # SQLite's backup API, not a file copy: n8n leaves recent writes in the -wal file.
    target.parent.mkdir(parents=True, exist_ok=True)
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _tail(text: str, lines: int = 80) -> str:
    return "\n".join(text.splitlines()[-lines:])
