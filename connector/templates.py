"""Templates per account: stored Liquid sources, checked when saved."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .clock import Clock
from .db import Database
from .errors import TemplateNotFound
from .events import EventType, record
from .models import Template, new_id
from .paging import PageQuery, newest_first, next_cursor
from .rendering import Renderer, TemplateSource
from .rendering.engines import Engine
from .rendering.page import PageSetup

TemplateName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$"
    ),
]
MAX_TEMPLATE_CHARS = 200_000
_T = TypeVar("_T")


class TemplateFields(BaseModel):
    """What a caller writes: all of it, on create and on replace."""

    name: TemplateName
    body: str = Field(
        min_length=1,
        max_length=MAX_TEMPLATE_CHARS,
        description="Liquid: HTML for PDF documents (and for TXT when there is no text_body).",
    )
    text_body: str | None = Field(
        default=None,
        max_length=MAX_TEMPLATE_CHARS,
        description="Liquid text for TXT documents; when absent, TXT is derived from the HTML.",
    )
    engine: Engine | None = Field(
        default=None,
        description="The PDF engine: xhtml2pdf, weasyprint or chromium; null: the one a render "
        "asks for, else the service's default.",
    )
    page: PageSetup | None = Field(
        default=None, description="Paper size, orientation, margins, page numbers of its PDFs."
    )


class TemplateSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    variables: list[str] = Field(description="Top-level variables the template reads.")
    created_at: datetime
    updated_at: datetime


class TemplateInfo(TemplateSummary):
    body: str
    text_body: str | None
    engine: Engine | None
    page: PageSetup | None


class TemplatePage(BaseModel):
    data: builtins.list[TemplateSummary]
    next_cursor: str | None


def _source(template: Template) -> TemplateSource:
    return TemplateSource(
        template.id,
        template.name,
        template.body,
        template.text_body,
        Engine(template.engine) if template.engine else None,
        PageSetup.model_validate(template.page) if template.page else None,
    )


def _event_data(template: TemplateInfo) -> dict[str, Any]:
    """A template event's data: the summary, without the (possibly large) bodies."""
    return TemplateSummary.model_validate(template.model_dump()).model_dump(mode="json")


class TemplateStore:
    """Create, read, replace and delete an account's templates. A template that does not parse
    is refused when saved, with the line, column and reason (parsed in a render process, like
    any work on a template)."""

    def __init__(self, db: Database, clock: Clock, renderer: Renderer) -> None:
        self._db = db
        self._clock = clock
        self._renderer = renderer

    def _variables(self, account_id: str, fields: TemplateFields) -> builtins.list[str]:
        sources = [fields.body] if fields.text_body is None else [fields.body, fields.text_body]
        return self._renderer.variables(account_id, *sources)

    def create(self, account_id: str, fields: TemplateFields) -> TemplateInfo:
        variables = self._variables(account_id, fields)
        now = self._clock.now()
        template = Template(
            id=new_id("tpl_"),
            account_id=account_id,
            variables=variables,
            created_at=now,
            updated_at=now,
            **fields.model_dump(mode="json"),
        )
        info = TemplateInfo.model_validate(template)
        with self._db.transaction() as session:
            session.add(template)
            record(session, account_id, EventType.TEMPLATE_CREATED, _event_data(info), now)
        return info

    def list(self, account_id: str, page: PageQuery) -> TemplatePage:
        query = newest_first(
            select(Template).where(Template.account_id == account_id), Template, page
        )
        with self._db.transaction() as session:
            rows = list(session.scalars(query))
        cursor = next_cursor(rows, page)
        return TemplatePage(
            data=[TemplateSummary.model_validate(row) for row in rows], next_cursor=cursor
        )

    def find_by_name(self, account_id: str, name: str) -> builtins.list[TemplateSummary]:
        """Templates with this name, ignoring case, newest first."""
        with self._db.transaction() as session:
            rows = session.scalars(
                select(Template)
                .where(
                    Template.account_id == account_id,
                    func.lower(Template.name) == name.strip().lower(),
                )
                .order_by(Template.created_at.desc(), Template.id.desc())
                .limit(100)
            )
            return [TemplateSummary.model_validate(row) for row in rows]

    def get(self, account_id: str, template_id: str) -> TemplateInfo:
        return self._read(account_id, template_id, TemplateInfo.model_validate)

    def source(self, account_id: str, template_id: str) -> TemplateSource:
        return self._read(account_id, template_id, _source)

    def replace(self, account_id: str, template_id: str, fields: TemplateFields) -> TemplateInfo:
        variables = self._variables(account_id, fields)
        with self._db.transaction() as session:
            template = self._find(session, account_id, template_id)
            for name, value in fields.model_dump(mode="json").items():
                setattr(template, name, value)
            template.variables = variables
            template.updated_at = self._clock.now()
            info = TemplateInfo.model_validate(template)
            record(
                session,
                account_id,
                EventType.TEMPLATE_UPDATED,
                _event_data(info),
                template.updated_at,
            )
            return info

    def delete(self, account_id: str, template_id: str) -> None:
        with self._db.transaction() as session:
            session.delete(self._find(session, account_id, template_id))

    def _read(self, account_id: str, template_id: str, view: Callable[[Template], _T]) -> _T:
        with self._db.transaction() as session:
            return view(self._find(session, account_id, template_id))

    @staticmethod
    def _find(session: Session, account_id: str, template_id: str) -> Template:
        template = session.scalars(
            select(Template).where(Template.id == template_id, Template.account_id == account_id)
        ).one_or_none()
        if template is None:
            raise TemplateNotFound(
                f"There is no template {template_id!r} in this account. List the account's "
                "templates with GET /v1/templates.",
                details={"template_id": template_id},
            )
        return template
