"""Accounts (workspaces) and their users."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated

import email_validator
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    WithJsonSchema,
)
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from . import audit
from .audit import OPERATOR, Actor, AuditAction
from .clock import Clock
from .db import Database
from .errors import AccountNotFound, EmailTaken, UserNotFound
from .models import Account, User, new_id

AccountName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$"
    ),
]
Password = Annotated[str, Field(min_length=10, max_length=200)]

# An email here is the name a user signs in with; nothing is ever mailed to it. A self-hosted
# service's users have internal addresses (admin@acme.test, me@intranet.local, root@localhost),
# which email-validator refuses unless told: its documented ways are globally_deliverable=False
# (no dot needed) and taking a name off SPECIAL_USE_DOMAIN_NAMES. Left on it: .invalid, .onion.
for _internal in ("arpa", "local", "localhost", "test"):
    if _internal in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        email_validator.SPECIAL_USE_DOMAIN_NAMES.remove(_internal)


def _sign_in_email(value: str) -> str:
    try:
        return email_validator.validate_email(
            value, check_deliverability=False, globally_deliverable=False
        ).normalized.lower()
    except email_validator.EmailNotValidError as error:
        raise ValueError(f"not a valid email address: {error}") from None


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254),
    AfterValidator(_sign_in_email),
    WithJsonSchema({"type": "string", "format": "email"}),
]


class Role(enum.StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"


class AccountInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    created_at: datetime


class UserInfo(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    account_id: str
    email: str
    role: Role
    created_at: datetime
    session_generation: int


# Checked when no user has the email, so that a sign-in takes as long either way.
_NOBODY = generate_password_hash("no user has this password")


class NewUser(BaseModel):
    email: Email
    password: Password
    role: Role = Role.EDITOR


class NewPassword(BaseModel):
    password: Password


class Accounts:
    """Create and look up accounts and users. Each method is one transaction."""

    def __init__(self, db: Database, clock: Clock | None = None) -> None:
        self._db = db
        self._clock = clock or Clock()

    def create(self, name: str) -> AccountInfo:
        account = Account(
            id=new_id("acc_"),
            name=TypeAdapter(AccountName).validate_python(name),
            created_at=self._clock.now(),
        )
        with self._db.transaction() as session:
            session.add(account)
        return AccountInfo.model_validate(account)

    def list(self) -> list[AccountInfo]:
        with self._db.transaction() as session:
            accounts = session.scalars(select(Account).order_by(Account.created_at, Account.id))
            return [AccountInfo.model_validate(account) for account in accounts]

    def get(self, account_id: str) -> AccountInfo:
        with self._db.transaction() as session:
            account = session.get(Account, account_id)
            if account is None:
                raise AccountNotFound(f"There is no account {account_id!r}.")
            return AccountInfo.model_validate(account)

    def find_by_name(self, name: str) -> AccountInfo | None:
        with self._db.transaction() as session:
            account = session.scalars(
                select(Account).where(Account.name == name).order_by(Account.created_at).limit(1)
            ).first()
            return AccountInfo.model_validate(account) if account else None

    def add_user(self, account_id: str, new_user: NewUser, *, actor: Actor = OPERATOR) -> UserInfo:
        email = new_user.email
        with self._db.transaction() as session:
            if session.get(Account, account_id) is None:
                raise AccountNotFound(f"There is no account {account_id!r}.")
            user = User(
                id=new_id("usr_"),
                account_id=account_id,
                email=email,
                password_hash=generate_password_hash(new_user.password),
                role=new_user.role.value,
                created_at=self._clock.now(),
            )
            session.add(user)
            try:
                session.flush()
            except IntegrityError:
                raise EmailTaken(f"A user with the email {email} already exists.") from None
            audit.record(
                session,
                account_id,
                AuditAction.USER_CREATED,
                email,
                actor,
                user.created_at,
                {"role": user.role},
            )
            return UserInfo.model_validate(user)

    def sign_in(self, email: str, password: str, *, actor: Actor = OPERATOR) -> UserInfo | None:
        """The user with this email and password; None for a wrong email or password alike.
        Both outcomes go to the user's account's audit log; an email that is nobody's has no
        account to go to (and may be a password typed in the wrong field), so it is not kept."""
        with self._db.transaction() as session:
            user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
            matches = check_password_hash(user.password_hash if user else _NOBODY, password)
            if user is None:
                return None
            action = AuditAction.SIGN_IN_SUCCEEDED if matches else AuditAction.SIGN_IN_FAILED
            audit.record(session, user.account_id, action, user.email, actor, self._clock.now())
            return UserInfo.model_validate(user) if matches else None

    def user(self, user_id: str) -> UserInfo | None:
        with self._db.transaction() as session:
            user = session.get(User, user_id)
            return UserInfo.model_validate(user) if user is not None else None

    def set_password(self, email: str, password: str, *, actor: Actor = OPERATOR) -> UserInfo:
        """Give the user with this email a new password, ending their web sessions."""
        new_hash = generate_password_hash(NewPassword(password=password).password)
        with self._db.transaction() as session:
            user = session.scalars(select(User).where(User.email == email.strip().lower())).first()
            if user is None:
                raise UserNotFound(f"There is no user with the email {email.strip().lower()}.")
            user.password_hash = new_hash
            user.session_generation = User.session_generation + 1
            session.flush()
            audit.record(
                session,
                user.account_id,
                AuditAction.USER_PASSWORD_SET,
                user.email,
                actor,
                self._clock.now(),
            )
            return UserInfo.model_validate(user)

    def sign_out(self, user_id: str, *, actor: Actor = OPERATOR) -> None:
        """End every web session of the user, wherever it was signed in."""
        with self._db.transaction() as session:
            user = session.get(User, user_id)
            if user is None:
                return
            user.session_generation = User.session_generation + 1
            audit.record(
                session,
                user.account_id,
                AuditAction.SIGNED_OUT,
                user.email,
                actor,
                self._clock.now(),
            )
