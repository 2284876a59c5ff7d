"""The ``templateto-bridge`` command: set up, serve, manage accounts, users and keys, check a
connection. Key values are printed once, when created or rolled, and never read from argv."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote

import click
import requests
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from . import __version__, schema
from . import keys as keys_format
from .accounts import NewUser, Role
from .api_keys import MAX_GRACE, ApiKeyInfo, IssuedApiKey, Permission, Rotation
from .app import platforms
from .audit import AuditAction, AuditEntryInfo
from .config import DEFAULT_HOST, DEFAULT_PORT, Settings, load_settings
from .errors import ApiKeyMissing, BridgeError, ConfigError, SchemaOutdated
from .key_policy import MAX_AGE_DAYS_LIMIT, KeyPolicyChange, KeyPolicyInfo, OnLeak
from .logs import configure as configure_logs
from .paging import PageQuery
from .platforms import API, Platform
from .scanning import Finding, Scan
from .services import Services
from .templates import TemplateFields, TemplateInfo, TemplateSummary

EXIT_FAILED = 1
EXIT_USAGE = 2
API_KEY_VARIABLE = "TEMPLATETO_API_KEY"
DEMO_ACCOUNT = "Demo Ltd"
DEMO_ADMIN = "admin@demo.example"
DEMO_FILES = Path(__file__).with_name("demo")
_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _settings(
    *,
    listen: tuple[str, int] = (DEFAULT_HOST, DEFAULT_PORT),
    require_database: bool = True,
    **overrides: object,
) -> Settings:
    """The settings; every command but ``init`` needs a database that exists."""
    try:
        return load_settings(listen=listen, require_database=require_database, **overrides)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@contextmanager
def _services(
    settings: Settings | None = None, platforms: Sequence[Platform] = (API,)
) -> Iterator[Services]:
    """Services on a current schema; errors become one readable line and a non-zero exit."""
    built = Services.build(settings or _settings(), platforms=platforms)
    try:
        schema.ensure_current(built.db.engine)
        yield built
    except SchemaOutdated as error:
        raise click.ClickException(str(error)) from None
    except OperationalError as error:
        raise click.ClickException(_unreachable(built.settings, error)) from None
    except BridgeError as error:
        raise click.ClickException(f"{error.code}: {error.message}") from None
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, p['loc'])) or 'value'}: {p['msg']}" for p in error.errors()
        )
        raise click.ClickException(problems) from None
    finally:
        built.close()


def _unreachable(settings: Settings, error: OperationalError) -> str:
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
    return f"cannot use the database at {where} ({reason}). Check BRIDGE_DATABASE_URL."


def _emit(as_json: bool, data: BaseModel | Sequence[BaseModel], text: Callable[[], str]) -> None:
    if as_json:
        payload: Any = (
            [item.model_dump(mode="json") for item in data]
            if isinstance(data, Sequence)
            else data.model_dump(mode="json")
        )
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(text())


def _describe_key(key: ApiKeyInfo) -> str:
    line = f"{key.id}  {key.name!r}  {key.permission.value}  {key.hint}  {key.status.value}"
    details = [f"created {key.created_at:%Y-%m-%d %H:%M}"]
    if key.rolled_at:
        details.append(f"rolled {key.rolled_at:%Y-%m-%d %H:%M}")
    if key.last_used_at:
        details.append(f"last used {key.last_used_at:%Y-%m-%d %H:%M}")
    if key.deleted_at:
        details.append(f"deleted {key.deleted_at:%Y-%m-%d %H:%M}")
    if key.rotate_by:
        details.append(f"rotate by {key.rotate_by:%Y-%m-%d %H:%M}")
    if key.leaked_at:
        details.append(f"leaked {key.leaked_at:%Y-%m-%d %H:%M}")
    described = f"{line}  ({', '.join(details)} UTC)"
    if key.rotation is not Rotation.OK:
        described += f"  {key.rotation.value.upper()}"
    if key.leaked_at and key.leak_url:
        described += f"\n  leak found at {key.leak_url}"
    return described


def _describe_issued(key: IssuedApiKey) -> str:
    return (
        f"{_describe_key(key)}\n\n  {key.value}\n\n"
        "Copy this value now: it is shown once and cannot be shown again."
    )


class Duration(click.ParamType):
    """Seconds, or a number with s, m, h or d: 3600, 90m, 24h, 7d; at most ``longest``."""

    name = "duration"

    def __init__(self, longest: timedelta) -> None:
        self.longest = longest

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        match = _DURATION.match(str(value).strip().lower())
        if not match:
            self.fail(
                f"{value!r}: use seconds or a number with s, m, h or d, e.g. 3600, 1h, 7d",
                param,
                ctx,
            )
        period = timedelta(seconds=int(match[1]) * _UNITS[match[2]])
        if period > self.longest:
            self.fail(f"{value!r}: at most {self.longest.days} days", param, ctx)
        return period


def _secret_from_stdin_or_prompt(prompt: str, *, confirm: bool = False) -> str:
    if sys.stdin.isatty():
        return click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return sys.stdin.readline().strip()


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def listen_options(command: Callable[..., None]) -> Callable[..., None]:
    """--host and --port: where ``serve`` listens, and what links start with by default."""
    command = click.option(
        "--port",
        default=DEFAULT_PORT,
        show_default=True,
        type=click.IntRange(1, 65535),
        help="The port `serve` listens on. Links start with http://HOST:PORT unless "
        "BRIDGE_PUBLIC_URL is set.",
    )(command)
    return click.option(
        "--host", default=DEFAULT_HOST, show_default=True, help="The address `serve` listens on."
    )(command)


@click.group()
@click.version_option(__version__)
def main() -> None:
    """TemplateTo Bridge: API keys, documents and events for Zapier and n8n."""


@main.command()
def init() -> None:
    """Create the database schema, or upgrade it to this version."""
    settings = _settings(require_database=False)
    built = Services.build(settings)
    try:
        before, after = schema.upgrade(built.db.engine, stored_secrets=built.secrets)
    except OperationalError as error:
        raise click.ClickException(_unreachable(settings, error)) from None
    finally:
        built.close()
    if before == after:
        click.echo(f"Schema is current (revision {after}).")
    else:
        click.echo(f"Schema {'created' if before is None else 'upgraded'}: revision {after}.")


@main.command()
@listen_options
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Per worker. A render running or waiting holds one; the machine runs at most "
    "BRIDGE_RENDER_CONCURRENCY + BRIDGE_RENDER_QUEUE of them.",
)
@click.option(
    "--no-delivery",
    is_flag=True,
    help="Deliver no webhooks here: separate `templateto-bridge worker` processes do.",
)
def serve(host: str, port: int, workers: int, threads: int, no_delivery: bool) -> None:
    """Serve the API with gunicorn, delivering webhooks in a background thread of each worker
    unless --no-delivery. Links it makes (download links, pages) start with BRIDGE_PUBLIC_URL,
    by default http://HOST:PORT."""
    from .serving import serve as run_server

    configure_logs()
    with _services(_settings(listen=(host, port))) as services:
        settings = services.settings
    try:
        run_server(
            settings,
            host=host,
            port=port,
            workers=workers,
            threads=threads,
            deliver=not no_delivery,
        )
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


@main.command()
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    help="POSTs in flight at once; default BRIDGE_DELIVERY_CONCURRENCY (16).",
)
def worker(concurrency: int | None) -> None:
    """Deliver webhooks until stopped (SIGTERM or Ctrl-C). Run as many as needed: on
    PostgreSQL they share the outbox without sending a delivery twice."""
    settings = _settings() if concurrency is None else _settings(delivery_concurrency=concurrency)
    configure_logs()
    with _services(settings, platforms()) as services:
        signal.signal(signal.SIGTERM, lambda *_: services.delivery.stop_soon())
        click.echo("Delivering webhooks.", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            services.delivery.run_until_stopped()


@main.command()
@listen_options
def demo(host: str, port: int) -> None:
    """Create a demo account with an admin user, an admin key and three templates, unless one
    exists, and print their ids."""
    with _services(_settings(listen=(host, port))) as services:
        public_url = services.settings.public_url
        existing = services.accounts.find_by_name(DEMO_ACCOUNT)
        if existing is not None:
            click.echo(f"Demo account {existing.name!r} ({existing.id}) already exists.")
            click.echo(
                f"  admin user {DEMO_ADMIN}; for a new password: "
                f"templateto-bridge users set-password --email {DEMO_ADMIN}"
            )
            click.echo(f"  API keys page: {public_url}generate/api-keys")
            newest_first = services.templates.list(existing.id, PageQuery()).data
            click.echo(f"  templates: {_names_and_ids(reversed(newest_first))}")
            for key in services.keys.list(existing.id):
                click.echo(f"  {_describe_key(key)}")
            click.echo(
                "Key values are shown only once. For a fresh value: "
                "templateto-bridge keys roll KEY_ID"
            )
            return
        account = services.accounts.create(DEMO_ACCOUNT)
        password = os.urandom(9).hex()
        user = services.accounts.add_user(
            account.id, NewUser(email=DEMO_ADMIN, password=password, role=Role.ADMIN)
        )
        key = services.keys.create(account.id, "Demo admin", Permission.ADMIN)
        templates = _create_demo_templates(services, account.id)
        click.echo(f"Demo account {account.name!r} ({account.id})")
        click.echo(f"  admin user {user.email}, password {password}")
        click.echo(f"  API keys page: {public_url}generate/api-keys")
        click.echo(f"  templates: {_names_and_ids(templates)}")
        click.echo(f"  admin API key {key.id}:\n\n    {key.value}\n")
        click.echo("Copy the key now: it is shown once. Render the demo invoice:")
        click.echo(
            f"  curl -H 'X-Api-Key: {key.value}' -H 'Content-Type: application/json' "
            f"-d @{DEMO_FILES / 'invoice-data.json'} -o invoice.pdf "
            f"{public_url}render/pdf/{templates[0].id}"
        )


def _names_and_ids(templates: Iterable[TemplateSummary]) -> str:
    return ", ".join(f"{template.name} {template.id}" for template in templates)


def _create_demo_templates(services: Services, account_id: str) -> list[TemplateInfo]:
    """Save the demo templates, the invoice first."""

    def read(name: str) -> str:
        return (DEMO_FILES / name).read_text(encoding="utf-8")

    return [
        services.templates.create(account_id, fields)
        for fields in (
            TemplateFields(name="Invoice", body=read("invoice.html")),
            TemplateFields(name="Certificate", body=read("certificate.html")),
            TemplateFields(name="Letter", body=read("letter.html"), text_body=read("letter.txt")),
        )
    ]


@main.group()
def accounts() -> None:
    """Accounts (workspaces)."""


@accounts.command("create")
@click.argument("name")
@json_option
def accounts_create(name: str, as_json: bool) -> None:
    """Create an account named NAME."""
    with _services() as services:
        account = services.accounts.create(name)
        _emit(as_json, account, lambda: f"{account.id}  {account.name!r}")


@accounts.command("list")
@json_option
def accounts_list(as_json: bool) -> None:
    """List every account: id and name."""
    with _services() as services:
        found = services.accounts.list()
        _emit(as_json, found, lambda: "\n".join(f"{a.id}  {a.name!r}" for a in found))


@main.group()
def users() -> None:
    """Users who sign in to the web pages."""


@users.command("create")
@click.option("--account", "account_id", required=True, help="Account id (acc_...).")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.EDITOR.value)
@json_option
def users_create(account_id: str, email: str, role: str, as_json: bool) -> None:
    """Create a user. The password is read from stdin, or asked for on a terminal."""
    password = _secret_from_stdin_or_prompt("Password", confirm=True)
    with _services() as services:
        user = services.accounts.add_user(
            account_id, NewUser(email=email, password=password, role=Role(role))
        )
        _emit(as_json, user, lambda: f"{user.id}  {user.email}  {user.role.value}")


@users.command("set-password")
@click.option("--email", required=True, help="The user's email, as they sign in with it.")
def users_set_password(email: str) -> None:
    """Give a user a new password, read from stdin or asked for on a terminal. Their web
    sessions end: they sign in again with it."""
    password = _secret_from_stdin_or_prompt("New password", confirm=True)
    with _services() as services:
        user = services.accounts.set_password(email, password)
        click.echo(f"New password set for {user.email} ({user.id}).")


@main.group()
def keys() -> None:
    """API keys: create, list, roll, delete, and failure reports."""


@keys.command("create")
@click.option("--account", "account_id", required=True, help="Account id (acc_...).")
@click.option("--name", required=True, help="A meaningful name, e.g. 'Zapier production'.")
@click.option("--permission", type=click.Choice([p.value for p in Permission]), default="standard")
@json_option
def keys_create(account_id: str, name: str, permission: str, as_json: bool) -> None:
    """Create a key and print its value, once."""
    with _services() as services:
        issued = services.keys.create(account_id, name, Permission(permission))
        _emit(as_json, issued, lambda: _describe_issued(issued))


@keys.command("list")
@click.option("--account", "account_id", required=True, help="Account id (acc_...).")
@click.option("--include-deleted", is_flag=True)
@click.option("--due", is_flag=True, help="Only keys due or overdue for rolling.")
@json_option
def keys_list(account_id: str, include_deleted: bool, due: bool, as_json: bool) -> None:
    """List an account's keys: id, name, permission, hint (never the value), status, and when
    each is to be rolled (marked DUE within 7 days, OVERDUE after)."""
    with _services() as services:
        services.accounts.get(account_id)
        found = services.keys.list(
            account_id,
            include_deleted=include_deleted,
            rotation={Rotation.DUE, Rotation.OVERDUE} if due else None,
        )
        empty = "No keys due for rolling." if due else "No keys."
        _emit(as_json, found, lambda: "\n".join(map(_describe_key, found)) or empty)


@keys.command("roll")
@click.argument("key_id")
@click.option(
    "--grace",
    default="0",
    show_default=True,
    type=Duration(MAX_GRACE),
    help="How long the old value keeps working: seconds, or e.g. 1h, 24h, 7d (at most 7d).",
)
@json_option
def keys_roll(key_id: str, grace: timedelta, as_json: bool) -> None:
    """Give KEY_ID a new value and print it, once. Integrations using the old value fail
    (after the grace period) until they are updated."""
    with _services() as services:
        issued = services.keys.roll(None, key_id, grace)
        _emit(as_json, issued, lambda: _describe_issued(issued))


@keys.command("delete")
@click.argument("key_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def keys_delete(key_id: str, yes: bool, as_json: bool) -> None:
    """Delete KEY_ID: every integration using it stops working."""
    with _services() as services:
        key = services.keys.get(None, key_id)
        if not yes:
            click.confirm(
                f"Delete {key.name!r}? Every integration using it stops working.", abort=True
            )
        deleted = services.keys.delete(None, key_id)
        _emit(as_json, deleted, lambda: _describe_key(deleted))


@keys.command("policy")
@click.option("--account", "account_id", required=True, help="Account id (acc_...).")
@click.option(
    "--max-age-days",
    type=click.IntRange(1, MAX_AGE_DAYS_LIMIT),
    help="Keys fall due for rolling this many days after their creation or last roll.",
)
@click.option("--no-max-age", is_flag=True, help="Keys have no maximum age.")
@click.option(
    "--on-leak",
    type=click.Choice([choice.value for choice in OnLeak]),
    help="What a reported leak does: notify, or also roll the key at once.",
)
@json_option
def keys_policy(
    account_id: str, max_age_days: int | None, no_max_age: bool, on_leak: str | None, as_json: bool
) -> None:
    """Show the account's key policy, or change the parts given (recorded in the audit log).
    Nothing is rolled because a key is old: due keys are listed, marked and told as events."""
    if no_max_age and max_age_days is not None:
        raise click.UsageError("Give --max-age-days or --no-max-age, not both.")
    given: dict[str, Any] = {"on_leak": on_leak} if on_leak else {}
    if max_age_days is not None or no_max_age:
        given["max_age_days"] = max_age_days
    with _services() as services:
        services.accounts.get(account_id)
        if given:
            policy = services.key_policies.change(account_id, KeyPolicyChange(**given))
        else:
            policy = services.key_policies.get(account_id)
        _emit(as_json, policy, lambda: _describe_policy(policy))


def _describe_policy(policy: KeyPolicyInfo) -> str:
    age = (
        f"due for rolling {policy.max_age_days} days after creation or last roll"
        if policy.max_age_days
        else "no maximum age"
    )
    leak = {OnLeak.NOTIFY: "notify", OnLeak.ROLL: "roll the key at once"}[policy.on_leak]
    return f"Keys: {age}. A reported leak: {leak}."


@keys.command("failures")
@click.argument("key_id")
@json_option
def keys_failures(key_id: str, as_json: bool) -> None:
    """Who still uses KEY_ID's old values (after a roll or delete)."""
    with _services() as services:
        reports = services.keys.failures(None, key_id)

        def text() -> str:
            if not reports:
                return "No uses of old values recorded."
            return "\n".join(
                f"{r.value_hint}  {r.reason}  {r.client}  {r.count}x  "
                f"first {r.first_seen_at:%Y-%m-%d %H:%M:%S}  "
                f"last {r.last_seen_at:%Y-%m-%d %H:%M:%S} UTC  {r.last_path}"
                for r in reports
            )

        _emit(as_json, reports, text)


def _describe_entry(entry: AuditEntryInfo) -> str:
    where = " ".join(
        filter(None, [entry.source_address, entry.user_agent and repr(entry.user_agent)])
    )
    detail = f"  {json.dumps(entry.detail)}" if entry.detail else ""
    return (
        f"{entry.created_at:%Y-%m-%d %H:%M:%S} UTC  {entry.action.value}  {entry.target}  "
        f"by {entry.actor} via {entry.via.value}{f' from {where}' if where else ''}{detail}"
    )


@main.command()
@click.option("--account", "account_id", required=True, help="Account id (acc_...).")
@click.option(
    "--action",
    type=click.Choice([action.value for action in AuditAction]),
    help="Only entries of this action.",
)
@click.option("--target", help="Only entries about this key or hook id, user email or key_policy.")
@click.option(
    "--limit", type=click.IntRange(1, 100), default=50, show_default=True, help="Entries to show."
)
@click.option("--cursor", help="Where the previous page ended (printed after it).")
@json_option
def audit(
    account_id: str,
    action: str | None,
    target: str | None,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """The account's audit log, newest first: who created, rolled or deleted keys, changed the
    key policy, signed in or out, or subscribed to events (and which subscriptions the service
    removed or disabled), through what and from where."""
    with _services() as services:
        services.accounts.get(account_id)
        page = services.audit.list(
            account_id,
            PageQuery(limit=limit, cursor=cursor),
            action=AuditAction(action) if action else None,
            target=target,
        )

        def text() -> str:
            lines = [_describe_entry(entry) for entry in page.data] or ["Nothing recorded."]
            if page.next_cursor:
                lines.append(f"More: --cursor {page.next_cursor}")
            return "\n".join(lines)

        _emit(as_json, page, text)


@main.group()
def export() -> None:
    """Write a platform's app: `export zapier --out DIR --base-url URL`."""


for _platform in platforms():
    if _platform.export is not None:
        export.add_command(_platform.export)


@main.group()
def documents() -> None:
    """Rendered documents."""


@documents.command("purge")
def documents_purge() -> None:
    """Delete the files of expired documents now (the service also does it every 10 minutes
    while documents are being created). Their records stay."""
    with _services() as services:
        total = 0
        while purged := services.documents.purge_expired():
            total += purged
        click.echo(f"Deleted the files of {total} expired documents.")


@main.command()
def reencrypt() -> None:
    """Encrypt every stored webhook signing secret under the current BRIDGE_SECRET_KEY: after a
    rotation, with the key before it in BRIDGE_SECRET_KEY_PREVIOUS."""
    with _services() as services:
        done, unreadable = services.hooks.reencrypt_secrets()
    click.echo(f"Re-encrypted {done} webhook signing secrets under BRIDGE_SECRET_KEY.")
    if unreadable:
        raise click.ClickException(
            f"{len(unreadable)} could not be decrypted with BRIDGE_SECRET_KEY or "
            f"BRIDGE_SECRET_KEY_PREVIOUS ({', '.join(unreadable[:5])}): set "
            "BRIDGE_SECRET_KEY_PREVIOUS to the key they were encrypted with and run this again."
        )


@main.group()
def templates() -> None:
    """Templates (Liquid, as TemplateTo uses)."""


@templates.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", "account_id", required=True, help="Account id (acc_...).")
@click.option("--name", help="Template name; default: the file name without its extension.")
@click.option(
    "--text-body",
    "text_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A Liquid text file for TXT documents; default: text derived from the HTML.",
)
@json_option
def templates_import(
    file: Path, account_id: str, name: str | None, text_file: Path | None, as_json: bool
) -> None:
    """Save the Liquid HTML in FILE as a new template. One that does not parse is refused with
    the line, column and reason."""
    try:
        body = file.read_text(encoding="utf-8")
        text_body = text_file.read_text(encoding="utf-8") if text_file else None
    except UnicodeDecodeError as error:
        raise click.ClickException(f"{error.reason}: the file is not UTF-8 text.") from None
    with _services() as services:
        services.accounts.get(account_id)
        fields = TemplateFields(name=name or file.stem, body=body, text_body=text_body)
        template = services.templates.create(account_id, fields)
        _emit(
            as_json,
            template,
            lambda: f"{template.id}  {template.name!r}  variables: {', '.join(template.variables)}",
        )


@main.command()
@click.option(
    "--url", required=True, help="The deployment's base URL, e.g. https://bridge.example.com"
)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait.")
def check(url: str, timeout: float) -> None:
    """Test a connection the way Zapier and n8n do. The key comes from TEMPLATETO_API_KEY or
    stdin, never from the command line. Exit 0 when it works; else 1 with one line: the reason
    code and message."""
    key = os.environ.get(API_KEY_VARIABLE) or _secret_from_stdin_or_prompt("API key")
    if not key:
        _fail(
            f"{ApiKeyMissing.code}: No API key given. Set {API_KEY_VARIABLE}, or pipe the key "
            "on stdin (never on the command line)."
        )
    problem = keys_format.diagnose(key)
    if problem is not None:
        _fail(f"api_key_malformed: This is not a valid TemplateTo API key: {problem.value}.")
    target = url.rstrip("/") + "/v1/me"
    try:
        response = requests.get(
            target,
            headers={"X-Api-Key": key, "User-Agent": f"templateto-bridge-check/{__version__}"},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as error:
        _fail(f"unreachable: could not reach {target} ({type(error).__name__})")
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict) and "label" in body:
        warning = response.headers.get("X-Api-Key-Warning")
        click.echo(
            f"ok: {body['label']} ({body['key_id']}, {body['key_hint']})"
            + (f" warning: {warning}" if warning else "")
        )
        return
    refusal = body.get("error") if isinstance(body, dict) else None
    if isinstance(refusal, dict) and "code" in refusal:
        _fail(f"{refusal['code']}: {refusal.get('message', '')}")
    _fail(f"unexpected_response: HTTP {response.status_code} from {target}")


@main.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--report",
    "report_url",
    metavar="URL",
    help="Also report the keys found to the service at URL as leaks of the account of the "
    f"admin key in {API_KEY_VARIABLE}: their SHA-256 and FILE:LINE, never the values.",
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for --report.")
def scan(paths: tuple[str, ...], report_url: str | None, timeout: float) -> None:
    """Find TemplateTo API keys in files and directories (PATH...), by their format and
    checksum: no network, no database. Prints FILE:LINE and each key's hint, never its value;
    exit 1 when any is found, else 0. Binary files, symbolic links and .git are skipped."""
    missing = [path for path in paths if not os.path.lexists(path)]
    if missing:
        raise click.BadParameter(f"{missing[0]!r} does not exist", param_hint="PATH")
    admin_key = os.environ.get(API_KEY_VARIABLE, "")
    if report_url is not None:
        # Decoded as a server would read it: tt%5Flive%5F… is a key in the URL too.
        if keys_format.PREFIX in unquote(report_url).lower():
            raise click.BadParameter(
                f"a URL is no place for a key: set {API_KEY_VARIABLE}", param_hint="--report"
            )
        if not admin_key:
            raise click.UsageError(
                f"--report needs an admin key in {API_KEY_VARIABLE} (never on the command line)."
            )
    found = Scan()
    findings = []
    for finding in found.run(paths):
        click.echo(f"{finding.location}: {finding.hint}")
        findings.append(finding)
    for path, reason in found.unreadable:
        click.echo(f"warning: {keys_format.redact(path)} was not scanned: {reason}", err=True)
    if report_url is not None and findings:
        _report_leaks(report_url, admin_key, findings, timeout)
    if findings:
        click.echo(
            f"{len(findings)} TemplateTo API key value(s) found in {found.files} file(s) "
            "scanned. Roll each key (the API keys page, or templateto-bridge keys roll) and "
            "remove the value from the files.",
            err=True,
        )
        sys.exit(EXIT_FAILED)


LEAKS_PER_REPORT = 1_000


def _report_leaks(url: str, admin_key: str, findings: list[Finding], timeout: float) -> None:
    """POST the findings' digests and places to ``/v1/api-keys/leaks``; print each outcome."""
    target = url.rstrip("/") + "/v1/api-keys/leaks"
    for start in range(0, len(findings), LEAKS_PER_REPORT):
        batch = findings[start : start + LEAKS_PER_REPORT]
        try:
            response = requests.post(
                target,
                json={"leaks": [{"sha256": f.digest, "location": f.location} for f in batch]},
                headers={
                    "X-Api-Key": admin_key,
                    "User-Agent": f"templateto-bridge-scan/{__version__}",
                },
                timeout=timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            _fail(f"unreachable: could not report to {target} ({type(error).__name__})")
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            refusal = body.get("error") if isinstance(body, dict) else None
            if isinstance(refusal, dict) and "code" in refusal:
                _fail(f"report refused: {refusal['code']}: {refusal.get('message', '')}")
            _fail(f"report refused: HTTP {response.status_code} from {target}")
        for result in body["data"]:
            line = f"reported {result['location']}: {result['status']}"
            if result.get("key_id"):
                line += f" (key {result['key_name']!r}, {result['key_id']})"
            if result.get("rolled"):
                line += ", rolled"
            click.echo(line)


def _fail(line: str) -> NoReturn:
    click.echo(line.replace("\n", " "))
    sys.exit(EXIT_FAILED)
