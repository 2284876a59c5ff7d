"""The service objects one process shares, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from .accounts import Accounts
from .api_keys import KeyManager
from .auth import Authenticator
from .clock import Clock
from .config import Settings
from .db import Database
from .rendering import LocalRenderer
from .templates import TemplateStore
from .usage import UsageRecorder

EXTENSION = "templateto"


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    db: Database
    usage: UsageRecorder
    authenticator: Authenticator
    keys: KeyManager
    accounts: Accounts
    templates: TemplateStore
    renderer: LocalRenderer

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Services:
        clock = clock or Clock()
        db = Database(settings.database_url)
        usage = UsageRecorder(db)
        authenticator = Authenticator(db, usage, clock)
        return cls(
            settings=settings,
            clock=clock,
            db=db,
            usage=usage,
            authenticator=authenticator,
            keys=KeyManager(db, clock, on_revoke=authenticator.forget_all),
            accounts=Accounts(db, clock),
            templates=TemplateStore(db, clock),
            renderer=LocalRenderer(),
        )

    def close(self) -> None:
        """Write buffered usage and release database connections."""
        self.usage.close()
        self.db.dispose()


def services() -> Services:
    """The services of the app handling the current request."""
    return current_app.extensions[EXTENSION]
