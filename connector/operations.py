"""The operations the platform bridges offer, each declared once: what it takes, what it gives,
a sample, and what it does. The Zapier and n8n bridges translate these into their platforms'
shapes (routes, error bodies, the exported app or node); none of them reimplements one."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, Field, model_validator

from .auth import Principal
from .clients import Client
from .documents import DocumentInfo, NewDocument
from .errors import NotFound, TemplateDataInvalidJson, TemplateDataNotObject
from .events import EventInfo, EventType
from .paging import Limit, PageQuery
from .rendering import Format

if TYPE_CHECKING:
    from .services import Services

MAX_PAGE_SIZE = 100


class Kind(enum.StrEnum):
    # Zapier's three kinds: a polling or instant trigger, a create, a search (array of matches).
    TRIGGER = "trigger"
    CREATE = "create"
    SEARCH = "search"
    # A workflow tool's resource operations (n8n): a page of a collection, one item by id.
    LIST = "list"
    GET = "get"


ZAPIER_KINDS = (Kind.TRIGGER, Kind.CREATE, Kind.SEARCH)


# --- what the operations take ----------------------------------------------------------------


class Listing(BaseModel):
    page: int = Field(default=0, ge=0, le=100, description="0-based page number.")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE, description="Items per page.")

    def as_page_query(self) -> PageQuery:
        return PageQuery(limit=self.limit, offset=self.page * self.limit)


class WorkflowInput(BaseModel):
    """Input from Zapier or n8n, which send "" for a field the user left empty or mapped to
    nothing: such a field takes its default."""

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, values: Any) -> Any:
        # Workflow tools send "" for a parameter left empty (the first page's cursor, say).
        if isinstance(values, dict):
            return {name: value for name, value in values.items() if value != ""}
        return values


class Browse(WorkflowInput):
    limit: Limit = 50
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")

    def as_page_query(self) -> PageQuery:
        return PageQuery(limit=self.limit, cursor=self.cursor)


class BrowseEvents(Browse):
    type: EventType | None = Field(default=None, description="Only events of this type.")


class ById(BaseModel):
    id: str = Field(min_length=1, max_length=64, description="The item's id.")


class CreateFile(BaseModel):
    template_id: str = Field(description="The template to render.")
    format: Format = Field(default=Format.PDF, description="Document type: pdf or txt.")
    data: dict[str, Any] = Field(default_factory=dict, description="The template's data.")
    preserve_line_breaks: bool = Field(default=False, description="Keep line breaks of the data.")
    strict: bool = Field(default=False, description="Fail on a variable the data lacks.")


class FindTemplate(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="The name, ignoring case.")


class FindDocument(BaseModel):
    id: str = Field(min_length=1, max_length=64, description="The document id (doc_...).")


def data_from_json_text(text: str) -> dict[str, Any]:
    """Template data typed as JSON text (Zapier's advanced input, n8n's JSON field)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TemplateDataInvalidJson(
            f"Template data is not valid JSON: line {error.lineno}, column {error.colno} "
            f"({error.msg}).",
        ) from None
    except RecursionError:
        raise TemplateDataInvalidJson(
            "Template data is nested too deeply. Send a flatter JSON object.",
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise TemplateDataInvalidJson(
            "Template data holds a number too long to read. Send long numbers as strings.",
        ) from None
    if not isinstance(data, dict):
        raise TemplateDataNotObject(
            'Template data must be a JSON object, such as {"name": "Ada"}.',
        )
    return data


# --- what they give: flat objects a workflow can map -----------------------------------------


class Connection(BaseModel):
    """A platform's connection test: who the key is, with a label for the connection."""

    account_id: str
    account_name: str
    key_id: str
    key_name: str
    key_hint: str
    label: str = Field(description="Account and key name: Acme Ltd · Zapier production.")


class DocumentItem(BaseModel):
    id: str
    template_id: str | None
    template_name: str
    format: Format
    file_url: str | None = Field(description="Signed download link, valid until expires_at.")
    filename: str
    size: int
    created_at: datetime
    expires_at: datetime

    @classmethod
    def of(cls, document: DocumentInfo | dict[str, Any]) -> DocumentItem:
        data = document if isinstance(document, dict) else document.model_dump()
        return cls.model_validate(data)


class TemplateItem(BaseModel):
    id: str
    name: str
    variables: list[str]
    created_at: datetime


class EventItem(BaseModel):
    id: str
    type: EventType
    created_at: datetime
    data: dict[str, Any]


Item = TypeVar("Item", bound=BaseModel)


class Page(BaseModel, Generic[Item]):
    """A page of a collection, newest first."""

    items: list[Item]
    next_cursor: str | None = Field(
        description="Pass as cursor for the next page; null at the end."
    )


class TemplateChoice(BaseModel):
    id: str
    name: str


class OldValueUse(BaseModel):
    id: str = Field(description="The event's id.")
    key_id: str
    key_name: str
    value_hint: str
    reason: str = Field(description="rolled, deleted or grace_period.")
    rolled_at: datetime | None
    deleted_at: datetime | None
    client: str = Field(description="zapier, n8n or other.")
    failure_count: int
    last_seen_at: datetime
    last_path: str

    @classmethod
    def of(cls, event: EventInfo) -> OldValueUse:
        return cls.model_validate({**event.data, "id": event.id})


# --- the operations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who runs an operation: the key's principal, through which platform."""

    principal: Principal
    client: Client

    @property
    def account_id(self) -> str:
        return self.principal.account_id


@dataclass(frozen=True)
class Operation:
    key: str
    kind: Kind
    noun: str
    label: str
    description: str
    input: type[BaseModel]
    output: type[BaseModel]
    run: Callable[[Services, Caller, Any], BaseModel | list[BaseModel]]
    sample: dict[str, Any]
    # A list's items: the output is a Page of them, under this name in platforms that wrap lists.
    collection: str | None = None
    # An instant trigger: the event it fires on, and how that event's data becomes an item.
    event: EventType | None = None
    from_event: Callable[[EventInfo], BaseModel] | None = None
    hidden: bool = False


def _new_documents(services: Services, caller: Caller, listing: Listing) -> list[BaseModel]:
    page = services.documents.list(caller.account_id, listing.as_page_query())
    return [DocumentItem.of(document) for document in page.data]


def _new_templates(services: Services, caller: Caller, listing: Listing) -> list[BaseModel]:
    page = services.templates.list(caller.account_id, listing.as_page_query())
    return [TemplateItem.model_validate(t.model_dump()) for t in page.data]


def _template_choices(services: Services, caller: Caller, listing: Listing) -> list[BaseModel]:
    page = services.templates.list(caller.account_id, listing.as_page_query())
    return [TemplateChoice(id=t.id, name=t.name) for t in page.data]


def _old_value_uses(services: Services, caller: Caller, listing: Listing) -> list[BaseModel]:
    page = services.events.list(
        caller.account_id, listing.as_page_query(), EventType.API_KEY_OLD_VALUE_USED
    )
    return [OldValueUse.of(event) for event in page.data]


def _list_templates(services: Services, caller: Caller, query: Browse) -> BaseModel:
    page = services.templates.list(caller.account_id, query.as_page_query())
    items = [TemplateItem.model_validate(t.model_dump()) for t in page.data]
    return Page[TemplateItem](items=items, next_cursor=page.next_cursor)


def _get_template(services: Services, caller: Caller, query: ById) -> BaseModel:
    return TemplateItem.model_validate(
        services.templates.get(caller.account_id, query.id).model_dump()
    )


def _list_documents(services: Services, caller: Caller, query: Browse) -> BaseModel:
    page = services.documents.list(caller.account_id, query.as_page_query())
    items = [DocumentItem.of(document) for document in page.data]
    return Page[DocumentItem](items=items, next_cursor=page.next_cursor)


def _get_document(services: Services, caller: Caller, query: ById) -> BaseModel:
    return DocumentItem.of(services.documents.get(caller.account_id, query.id))


def _list_events(services: Services, caller: Caller, query: BrowseEvents) -> BaseModel:
    page = services.events.list(caller.account_id, query.as_page_query(), query.type)
    items = [EventItem.model_validate(event.model_dump()) for event in page.data]
    return Page[EventItem](items=items, next_cursor=page.next_cursor)


def _create_file(services: Services, caller: Caller, request: CreateFile) -> BaseModel:
    document = services.documents.create(
        caller.account_id,
        NewDocument(
            template_id=request.template_id,
            format=request.format,
            data=request.data,
            preserve_line_breaks=request.preserve_line_breaks,
            strict=request.strict,
        ),
        caller.client,
    )
    return DocumentItem.of(document)


def _find_template(services: Services, caller: Caller, query: FindTemplate) -> list[BaseModel]:
    found = services.templates.find_by_name(caller.account_id, query.name)
    return [TemplateItem.model_validate(t.model_dump()) for t in found]


def _find_document(services: Services, caller: Caller, query: FindDocument) -> list[BaseModel]:
    try:
        return [DocumentItem.of(services.documents.get(caller.account_id, query.id))]
    except NotFound:
        return []


_DOCUMENT_SAMPLE = {
    "id": "doc_4d9rQm2Xk7LwPz81vBnS",
    "template_id": "tpl_8hJk2LmN4pQr6sTu0vWx",
    "template_name": "Invoice",
    "format": "pdf",
    "file_url": "https://bridge.example.com/files/WyJkb2NfNGQ5clFtMlhrN0x3UHo4MXZCblMiXQ.sig",
    "filename": "Invoice.pdf",
    "size": 44_928,
    "created_at": "2026-11-20T10:03:00Z",
    "expires_at": "2026-11-21T10:03:00Z",
}
_TEMPLATE_SAMPLE = {
    "id": "tpl_8hJk2LmN4pQr6sTu0vWx",
    "name": "Invoice",
    "variables": ["customer", "invoice", "lines"],
    "created_at": "2026-11-20T10:03:00Z",
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        key="new_document",
        kind=Kind.TRIGGER,
        noun="Document",
        label="New Document",
        description="Triggers when a document is generated.",
        input=Listing,
        output=DocumentItem,
        run=_new_documents,
        sample=_DOCUMENT_SAMPLE,
        event=EventType.DOCUMENT_CREATED,
        from_event=lambda event: DocumentItem.of(event.data),
    ),
    Operation(
        key="new_template",
        kind=Kind.TRIGGER,
        noun="Template",
        label="New Template",
        description="Triggers when a template is created.",
        input=Listing,
        output=TemplateItem,
        run=_new_templates,
        sample=_TEMPLATE_SAMPLE,
    ),
    Operation(
        key="old_value_used",
        kind=Kind.TRIGGER,
        noun="Old API Key Value",
        label="Old API Key Value Used",
        description="Triggers when an integration still uses a rolled or deleted API key value.",
        input=Listing,
        output=OldValueUse,
        run=_old_value_uses,
        sample={
            "id": "evt_2bV9nQ4mLx7RtY1pKz3W",
            "key_id": "key_UcYa1m6TcUD7y7fEHr8b",
            "key_name": "Zapier production",
            "value_hint": "tt_live_…qous",
            "reason": "rolled",
            "rolled_at": "2026-11-20T10:03:00Z",
            "deleted_at": None,
            "client": "zapier",
            "failure_count": 12,
            "last_seen_at": "2026-11-20T11:15:42Z",
            "last_path": "/zapier/me",
        },
        event=EventType.API_KEY_OLD_VALUE_USED,
        from_event=OldValueUse.of,
    ),
    Operation(
        key="templates",
        kind=Kind.TRIGGER,
        noun="Template",
        label="Templates",
        description="Lists templates for the template dropdown.",
        input=Listing,
        output=TemplateChoice,
        run=_template_choices,
        sample={"id": _TEMPLATE_SAMPLE["id"], "name": "Invoice"},
        hidden=True,
    ),
    Operation(
        key="create_file",
        kind=Kind.CREATE,
        noun="File",
        label="Create File",
        description="Generates a PDF or TXT file from a template and data.",
        input=CreateFile,
        output=DocumentItem,
        run=_create_file,
        sample=_DOCUMENT_SAMPLE,
    ),
    Operation(
        key="find_template",
        kind=Kind.SEARCH,
        noun="Template",
        label="Find Template",
        description="Finds a template by its name (ignoring case).",
        input=FindTemplate,
        output=TemplateItem,
        run=_find_template,
        sample=_TEMPLATE_SAMPLE,
    ),
    Operation(
        key="find_document",
        kind=Kind.SEARCH,
        noun="Document",
        label="Find Document",
        description="Finds a document by its id.",
        input=FindDocument,
        output=DocumentItem,
        run=_find_document,
        sample=_DOCUMENT_SAMPLE,
    ),
    Operation(
        key="list_templates",
        kind=Kind.LIST,
        noun="Template",
        label="Get Many Templates",
        description="Lists the account's templates, newest first.",
        input=Browse,
        output=TemplateItem,
        run=_list_templates,
        sample=_TEMPLATE_SAMPLE,
        collection="templates",
    ),
    Operation(
        key="get_template",
        kind=Kind.GET,
        noun="Template",
        label="Get Template",
        description="Gets a template by its id.",
        input=ById,
        output=TemplateItem,
        run=_get_template,
        sample=_TEMPLATE_SAMPLE,
    ),
    Operation(
        key="list_documents",
        kind=Kind.LIST,
        noun="Document",
        label="Get Many Documents",
        description="Lists generated documents, newest first.",
        input=Browse,
        output=DocumentItem,
        run=_list_documents,
        sample=_DOCUMENT_SAMPLE,
        collection="documents",
    ),
    Operation(
        key="get_document",
        kind=Kind.GET,
        noun="Document",
        label="Get Document",
        description="Gets a document by its id, with a fresh signed file URL.",
        input=ById,
        output=DocumentItem,
        run=_get_document,
        sample=_DOCUMENT_SAMPLE,
    ),
    Operation(
        key="list_events",
        kind=Kind.LIST,
        noun="Event",
        label="Get Many Events",
        description="Lists what happened in the account, newest first.",
        input=BrowseEvents,
        output=EventItem,
        run=_list_events,
        sample={
            "id": "evt_2bV9nQ4mLx7RtY1pKz3W",
            "type": "template.created",
            "created_at": "2026-11-20T10:03:00Z",
            "data": {"id": _TEMPLATE_SAMPLE["id"], "name": "Invoice"},
        },
        collection="events",
    ),
)

CATALOG: dict[tuple[Kind, str], Operation] = {(op.kind, op.key): op for op in OPERATIONS}
