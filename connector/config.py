"""Settings from ``BRIDGE_*`` environment variables, loaded and validated once at start.

Nothing else in the service reads ``os.environ``: a bad value stops the service at start with a
message naming the variable, instead of failing on the first request that needs it.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path

import limits
from pydantic import (
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigError
from .rendering.engines import DEFAULT_CHROMIUM, Engine
from .storage import owner_only

SECRET_KEY_FILE = "secret_key"
# Settings that no longer exist, and what replaced them: a start that ignored them would be silent.
_RETIRED = {
    "BRIDGE_PDF_CONCURRENCY": "BRIDGE_RENDER_CONCURRENCY (renders at once per machine)",
    "BRIDGE_PDF_QUEUE": "BRIDGE_RENDER_QUEUE (renders waiting per machine)",
}
_SUPPORTED_DATABASES = ("sqlite", "postgresql")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class Settings(BaseSettings):
    """The service's configuration. Build it with :func:`load_settings`, which fills defaults
    that depend on the data directory."""

    model_config = SettingsConfigDict(env_prefix="BRIDGE_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path("var"),
        description="Where the SQLite file, the generated secret key and stored documents live.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; default: SQLite under "
        "the data directory. postgresql:// URLs use psycopg 3.",
    )
    runtime_dir: Path | None = Field(
        default=None,
        description="Where this machine's processes of one deployment share the revocations "
        "of keys (mode 700); default: run/ in the data directory.",
    )
    revocation_poll_seconds: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="How often a serving process also reads the database's revocation counter "
        "(a safety net).",
    )
    public_url: HttpUrl | None = Field(
        default=None,
        description="The address users and platforms reach us at; default: the host and port "
        "`serve` listens on (a wildcard host such as 0.0.0.0 by this machine's loopback).",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Signs sessions and URLs; generated and kept in the data directory when unset.",
    )
    secret_key_previous: SecretStr | None = Field(
        default=None,
        description="The secret key before the last rotation: what it encrypted and signed "
        "(signing secrets, sessions, download links) is still read.",
    )
    document_ttl_seconds: int = Field(
        default=86_400,
        ge=60,
        le=90 * 86_400,
        description="How long a document's file and its download link last (default 24 h).",
    )
    render_upstream_url: HttpUrl | None = Field(
        default=None,
        description="A TemplateTo-compatible API to convert HTML to PDF; default: in process.",
    )
    render_upstream_key: SecretStr | None = Field(
        default=None, description="This service's API key at the upstream renderer."
    )
    allow_private_hook_targets: bool = Field(
        default=False,
        description="Let webhooks go to loopback and private addresses: development and tests "
        "only.",
    )
    delivery_lease_seconds: int = Field(
        default=300,
        ge=1,
        le=3_600,
        description="How long a worker holds a delivery; a dead worker's are taken over after.",
    )
    redis_url: str = Field(
        default="",
        description="redis://… to share abuse-limit counters between processes and machines; "
        "default: counted in each process's memory.",
    )
    rate_limit_per_key: str = Field(
        default="1200/minute",
        description="Requests one API key may make (all its values together), e.g. 1200/minute.",
    )
    failed_auth_limit_per_address: str = Field(
        default="600/5 minutes",
        description="Refused API key requests from one client address before it gets 429s.",
    )
    failed_auth_limit_per_key_value: str = Field(
        default="60/minute",
        description="Refused requests with one API key value (rolled, deleted, unknown) before "
        "it gets 429s.",
    )
    proxy_hops: int = Field(
        default=0,
        ge=0,
        le=5,
        description="Reverse proxies in front that set X-Forwarded-For: the client address "
        "is taken from them. 0: the connection's address.",
    )
    render_concurrency: int = Field(
        default_factory=lambda: max(2, len(os.sched_getaffinity(0))),
        ge=1,
        le=256,
        description="Renders running at once on this machine (every web worker together); "
        "default: the cores this process may use, at least 2. One account may use half of them "
        "(rounded down, at least one).",
    )
    render_queue: int = Field(
        default=4,
        ge=0,
        le=256,
        description="Renders waiting for a free slot on this machine (up to 10 s each); any "
        "more get 429 render_busy at once. One account may hold half of them.",
    )
    render_txt_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Wall-clock and CPU limit of a TXT render (and of checking a template).",
    )
    render_pdf_seconds: float = Field(
        default=20.0, gt=0, le=600, description="Wall-clock and CPU limit of a PDF render."
    )
    render_memory_mb: int = Field(
        default=512,
        ge=128,
        le=65_536,
        description="Address space of each render process (RLIMIT_AS), in MB; also how much "
        "a Chromium render may grow its browser's resident memory.",
    )
    pdf_engine: Engine = Field(
        default=Engine.XHTML2PDF,
        description="The PDF engine of templates and requests that name none: xhtml2pdf, "
        "weasyprint (an extra) or chromium (needs Chromium).",
    )
    chromium_path: Path = Field(
        default=DEFAULT_CHROMIUM, description="The Chromium the chromium engine drives."
    )
    delivery_concurrency: int = Field(
        default=16, ge=1, le=256, description="Webhook POSTs in flight at once, per worker."
    )
    keepalive_seconds: int = Field(
        default=75,
        ge=1,
        le=3_600,
        description="How long an idle kept-alive connection stays open. Longer than any client's "
        "or load balancer's in front (Zapier's, a load balancer's 60 s): the server never closes "
        "a connection just as a client sends on it.",
    )
    max_body_bytes: int = Field(
        default=1_000_000,
        gt=0,
        le=100_000_000,
        description="Largest request body accepted (413 above).",
    )

    def secret_keys(self) -> tuple[str, str | None]:
        """The secret key, and the one before it during a rotation."""
        previous = self.secret_key_previous
        return self.secret_key.get_secret_value(), previous.get_secret_value() if previous else None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as error:
            raise ValueError(f"not a database URL ({error})") from None
        if url.get_backend_name() not in _SUPPORTED_DATABASES:
            raise ValueError("use a sqlite:/// or postgresql:// URL")
        if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return url.render_as_string(hide_password=False)

    @field_validator(
        "rate_limit_per_key", "failed_auth_limit_per_address", "failed_auth_limit_per_key_value"
    )
    @classmethod
    def _a_rate(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError("write a rate such as 1200/minute or 60/5 minutes") from None
        return value

    @field_validator("secret_key", "secret_key_previous")
    @classmethod
    def _long_enough(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and value.get_secret_value() and len(value.get_secret_value()) < 32:
            if info.field_name == "secret_key":
                raise ValueError(
                    "use at least 32 characters, or leave it unset to have one generated"
                )
            raise ValueError("use at least 32 characters: the secret key before the new one")
        return value

    @model_validator(mode="after")
    def _upstream_needs_a_key(self) -> Settings:
        if (self.render_upstream_url is None) != (self.render_upstream_key is None):
            raise ValueError(
                "BRIDGE_RENDER_UPSTREAM_URL and BRIDGE_RENDER_UPSTREAM_KEY go together: "
                "set both, or neither"
            )
        return self


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        if problem["loc"]:
            name = "BRIDGE_" + "_".join(str(part) for part in problem["loc"]).upper()
            lines.append(f"{name}: {problem['msg']}")
        else:
            lines.append(str(problem["msg"]).removeprefix("Value error, "))
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _stored_secret_key(data_dir: Path) -> str:
    path = data_dir / SECRET_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    # Created with owner-only permissions from the start, never world-readable for a moment.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key


def served_url(host: str, port: int) -> HttpUrl:
    """The address of a server listening on ``host:port``: a wildcard address (0.0.0.0, ::) is
    reached on this machine through its loopback."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name
        return HttpUrl(f"http://{host}:{port}")
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = str(address) if address.version == 4 else f"[{address}]"
    return HttpUrl(f"http://{shown}:{port}")


def _refuse_missing_sqlite(database_url: str, named_by: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database).resolve()
    if not path.exists():
        raise ConfigError(
            f"No database at {path}. {named_by}, or run `templateto-bridge init` to create "
            "one there."
        )


def load_settings(
    *,
    listen: tuple[str, int] = (DEFAULT_HOST, DEFAULT_PORT),
    require_database: bool = False,
    **overrides: object,
) -> Settings:
    """Read the environment (``overrides`` win), create the data directory, and fill the
    defaults that depend on it and on where ``serve`` listens (``listen``: host and port).
    With ``require_database``, a SQLite database that does not exist is refused before anything
    is created. Raises :class:`ConfigError` with a readable message."""
    retired = [f"{name}: replaced by {new}" for name, new in _RETIRED.items() if name in os.environ]
    if retired:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(retired))
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None

    data_dir = settings.data_dir.expanduser().resolve()
    database_url = settings.database_url or f"sqlite:///{data_dir / 'bridge.db'}"
    if require_database:
        _refuse_missing_sqlite(
            database_url,
            "Check BRIDGE_DATABASE_URL"
            if settings.database_url
            else "Set BRIDGE_DATA_DIR to the directory that holds bridge.db (the default, "
            "./var, is relative to the current directory)",
        )
    try:
        # The service's user alone reads it: it holds the database, the secret key, documents.
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        owner_only(data_dir)
        owner_only(data_dir / SECRET_KEY_FILE)
        secret_key = settings.secret_key.get_secret_value() or _stored_secret_key(data_dir)
    except OSError as error:
        raise ConfigError(
            f"BRIDGE_DATA_DIR: cannot use {data_dir} ({error.strerror}); "
            "point it at a writable directory"
        ) from None
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": database_url,
            "runtime_dir": (settings.runtime_dir or data_dir / "run").expanduser().resolve(),
            "public_url": settings.public_url or served_url(*listen),
            "secret_key": SecretStr(secret_key),
        }
    )
