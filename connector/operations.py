"""What the platform bridges can do, each capability declared once: what it takes (a pydantic
model), the items it gives, a sample item, and what it does. The Zapier and n8n bridges choose
which capabilities they offer and translate them into their platforms' kinds and shapes
(triggers, searches, resource operations); nothing here names a platform."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from .api_keys import Rotation
from .auth import Principal
from .clients import Client
from .documents import DocumentInfo, NewDocument
from .errors import (
    TemplateDataInvalidJson,
    TemplateDataNamesClash,
    TemplateDataNotObject,
    excerpt,
)
from .events import EventInfo, EventType
from .paging import Limit, PageQuery
from .rendering import Format
from .rendering.engines import Engine
from .usage import SITUATION_OF_REASON, Situation

if TYPE_CHECKING:
    from .services import Services

MAX_PAGE_SIZE = 100


# --- what the capabilities take ----------------------------------------------------------------


class WorkflowInput(BaseModel):
    """Input from a workflow tool, which sends "" for a field the user left empty or mapped to
    nothing: such a field takes its default."""

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, values: Any) -> Any:
        if isinstance(values, dict):
            return {name: value for name, value in values.items() if value != ""}
        return values


class Browse(WorkflowInput):
    limit: Limit = 50
    cursor: str | None = Field(default=None, description="next_cursor of the previous page.")

    def as_page_query(self) -> PageQuery:
        return PageQuery(limit=self.limit, cursor=self.cursor)


class BrowseEvents(Browse):
    type: EventType | None = Field(
        default=None, title="Event type", description="Only events of this type."
    )


class ById(WorkflowInput):
    id: str = Field(min_length=1, max_length=64, title="ID", description="The item's ID.")


# Create File's fields, as every bridge offers them (under its platform's names).
TemplateId = Annotated[
    str, Field(min_length=1, title="Template", description="The template to fill in.")
]
DocumentType = Annotated[Format, Field(title="Document type", description="PDF or TXT.")]
TemplateData = Annotated[
    dict[str, Any],
    BeforeValidator(lambda value: data_from_json_text(value) if isinstance(value, str) else value),
    Field(
        title="Template data",
        description="The template's variables as name-value pairs, or one JSON object such as "
        '{"customer": {"name": "Ada"}}.',
    ),
]
PreserveLineBreaks = Annotated[
    bool,
    Field(
        title="Preserve line breaks",
        description="Keep the line breaks of the data's text in the document.",
    ),
]
FailOnMissing = Annotated[
    bool,
    Field(
        title="Fail on missing variables",
        description="Stop with an error naming a variable the data lacks, instead of leaving it "
        "empty.",
    ),
]

PdfEngine = Annotated[
    Engine | None,
    Field(
        title="PDF engine",
        description="Used where the template names none: xhtml2pdf, weasyprint (modern CSS, "
        "every script) or chromium (as a browser prints). Empty: the service's default.",
    ),
]


class CreateFile(WorkflowInput):
    template_id: TemplateId
    format: DocumentType = Format.PDF
    data: TemplateData = Field(default_factory=dict)
    preserve_line_breaks: PreserveLineBreaks = False
    strict: FailOnMissing = False
    engine: PdfEngine = None


class FindByName(WorkflowInput):
    name: str = Field(
        min_length=1, max_length=200, title="Name", description="The name, ignoring case."
    )


def data_from_json_text(text: str) -> dict[str, Any]:
    """Template data typed as JSON text (Zapier's advanced input, n8n's JSON field)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TemplateDataInvalidJson(
            f"Template data is not valid JSON: line {error.lineno}, column {error.colno} "
            f"({error.msg})."
        ) from None
    except RecursionError:
        raise TemplateDataInvalidJson(
            "Template data is nested too deeply. Send a flatter JSON object."
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4,300)
        raise TemplateDataInvalidJson(
            "Template data holds a number too long to read. Send long numbers as strings."
        ) from None
    if not isinstance(data, dict):
        raise TemplateDataNotObject('Template data must be a JSON object, such as {"name": "Ada"}.')
    return data


def data_from_pairs(pairs: dict[str, Any]) -> dict[str, Any]:
    """Template data from a form's name-value pairs, where a name with dots fills a nested
    object: ``order.number`` is the ``number`` of ``order``, as the template reads it."""
    data: dict[str, Any] = {}
    for name, value in pairs.items():
        *parents, last = name.split(".")
        inside = data
        for depth, parent in enumerate(parents):
            inside = inside.setdefault(parent, {})
            if not isinstance(inside, dict):
                raise _clash(".".join(parents[: depth + 1]), name)
        if isinstance(inside.get(last), dict):
            raise _clash(name, next(other for other in pairs if other.startswith(f"{name}.")))
        inside[last] = value
    return data


def _clash(whole: str, part: str) -> TemplateDataNamesClash:
    return TemplateDataNamesClash(
        f"Template data has both {excerpt(whole)} and {excerpt(part)}: a name with dots fills a "
        "value inside another. Rename or remove one of them."
    )


# --- what they give: flat objects a workflow can map ------------------------------------------


class Connection(BaseModel):
    """A platform's connection test: who the key is, with a label for the connection."""

    account_id: str
    account_name: str
    key_id: str
    key_name: str
    key_hint: str = Field(description="tt_live_… and the last 4 characters of the value used.")
    label: str = Field(
        description="Account and key name: Acme Ltd · Zapier production; for a rolled value in "
        "its grace period, also when it stops working."
    )
    in_grace_period: bool = Field(
        description="True when this value was rolled and works only until grace_until."
    )
    grace_until: datetime | None = Field(description="When this rolled value stops working.")


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
    # A default: document.created events recorded before the field existed are still sent.
    missing_scripts: list[str] = Field(
        default_factory=list,
        description='Scripts ("Han", "Arabic", …) the PDF could not print correctly (boxes, or '
        "unjoined letters); empty when none. Choose another engine for them.",
    )

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

    @classmethod
    def of(cls, event: EventInfo) -> EventItem:
        return cls.model_validate(event.model_dump())


class OldValueUse(BaseModel):
    id: str = Field(description="The event's ID.")
    key_id: str
    key_name: str
    value_hint: str
    situation: Situation = Field(
        description="used_during_grace_period (the value still worked), refused_after_roll "
        "(no grace period, or it ended) or used_after_delete."
    )
    reason: str = Field(description="rolled, deleted or grace_period, as in failure reports.")
    rolled_at: datetime | None
    works_until: datetime | None = Field(
        default=None, description="When the rolled value stops (or stopped) working."
    )
    deleted_at: datetime | None
    client: str = Field(description="zapier, n8n or other.")
    failure_count: int
    last_seen_at: datetime
    last_path: str

    @classmethod
    def of(cls, event: EventInfo) -> OldValueUse:
        # Events recorded before situations existed name only their reason.
        situation = SITUATION_OF_REASON[event.data["reason"]]
        return cls.model_validate({"situation": situation, **event.data, "id": event.id})


class KeyDueForRotation(BaseModel):
    id: str = Field(description="The event's ID.")
    key_id: str
    key_name: str
    hint: str = Field(description="The key's current value, shown as tt_live_…abcd.")
    rotation: Rotation = Field(
        description="due: its rotate-by time is within 7 days; overdue: it has passed."
    )
    rotate_by: datetime
    created_at: datetime
    rolled_at: datetime | None

    @classmethod
    def of(cls, event: EventInfo) -> KeyDueForRotation:
        data = event.data
        return cls.model_validate(
            {**data, "id": event.id, "key_id": data["id"], "key_name": data["name"]}
        )


Item = TypeVar("Item", bound=BaseModel)


class Page(BaseModel, Generic[Item]):
    """A page of a collection, newest first."""

    items: list[Item]
    next_cursor: str | None = Field(
        description="Pass as cursor for the next page; null at the end."
    )


# --- the capabilities --------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who runs a capability: the key's principal, through which client."""

    principal: Principal
    client: Client

    @property
    def account_id(self) -> str:
        return self.principal.account_id


class Gives(enum.StrEnum):
    ONE = "one"  # one item
    PAGE = "page"  # a Page of items, newest first
    MATCHES = "matches"  # a list of every match (none is not an error)


@dataclass(frozen=True)
class Capability:
    key: str
    noun: str  # what one item is, for people: "Document"
    description: str
    input: type[BaseModel]
    item: type[BaseModel]
    gives: Gives
    run: Callable[[Services, Caller, Any], Any]
    sample: dict[str, Any]
    # The event that announces a new item, and the item it carries: instant triggers.
    event: EventType | None = None
    item_of: Callable[[EventInfo], BaseModel] | None = None


def _list_documents(services: Services, caller: Caller, query: Browse) -> Page[DocumentItem]:
    page = services.documents.list(caller.account_id, query.as_page_query())
    items = [DocumentItem.of(document) for document in page.data]
    return Page[DocumentItem](items=items, next_cursor=page.next_cursor)


def _get_document(services: Services, caller: Caller, query: ById) -> DocumentItem:
    return DocumentItem.of(services.documents.get(caller.account_id, query.id))


def _create_document(services: Services, caller: Caller, request: CreateFile) -> DocumentItem:
    new = NewDocument(
        template_id=request.template_id,
        format=request.format,
        data=request.data,
        preserve_line_breaks=request.preserve_line_breaks,
        strict=request.strict,
        engine=request.engine,
    )
    return DocumentItem.of(services.documents.create(caller.account_id, new, caller.client))


def _list_templates(services: Services, caller: Caller, query: Browse) -> Page[TemplateItem]:
    page = services.templates.list(caller.account_id, query.as_page_query())
    items = [TemplateItem.model_validate(t.model_dump()) for t in page.data]
    return Page[TemplateItem](items=items, next_cursor=page.next_cursor)


def _get_template(services: Services, caller: Caller, query: ById) -> TemplateItem:
    return TemplateItem.model_validate(
        services.templates.get(caller.account_id, query.id).model_dump()
    )


def _find_templates(services: Services, caller: Caller, query: FindByName) -> list[TemplateItem]:
    found = services.templates.find_by_name(caller.account_id, query.name)
    return [TemplateItem.model_validate(t.model_dump()) for t in found]


def _list_events(services: Services, caller: Caller, query: BrowseEvents) -> Page[EventItem]:
    page = services.events.list(caller.account_id, query.as_page_query(), query.type)
    return Page[EventItem](items=[EventItem.of(e) for e in page.data], next_cursor=page.next_cursor)


def _list_old_value_uses(services: Services, caller: Caller, query: Browse) -> Page[OldValueUse]:
    page = services.events.list(
        caller.account_id, query.as_page_query(), EventType.API_KEY_OLD_VALUE_USED
    )
    items = [OldValueUse.of(event) for event in page.data]
    return Page[OldValueUse](items=items, next_cursor=page.next_cursor)


def _list_keys_due_for_rotation(
    services: Services, caller: Caller, query: Browse
) -> Page[KeyDueForRotation]:
    page = services.events.list(
        caller.account_id, query.as_page_query(), EventType.API_KEY_ROTATION_DUE
    )
    items = [KeyDueForRotation.of(event) for event in page.data]
    return Page[KeyDueForRotation](items=items, next_cursor=page.next_cursor)


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
    "missing_scripts": [],
}
_TEMPLATE_SAMPLE = {
    "id": "tpl_8hJk2LmN4pQr6sTu0vWx",
    "name": "Invoice",
    "variables": ["customer", "invoice", "lines"],
    "created_at": "2026-11-20T10:03:00Z",
}

LIST_DOCUMENTS = Capability(
    key="list_documents",
    noun="Document",
    description="Lists generated documents, newest first.",
    input=Browse,
    item=DocumentItem,
    gives=Gives.PAGE,
    run=_list_documents,
    sample=_DOCUMENT_SAMPLE,
    event=EventType.DOCUMENT_CREATED,
    item_of=lambda event: DocumentItem.of(event.data),
)
GET_DOCUMENT = Capability(
    key="get_document",
    noun="Document",
    description="Gets a document by its ID, with a fresh signed file URL.",
    input=ById,
    item=DocumentItem,
    gives=Gives.ONE,
    run=_get_document,
    sample=_DOCUMENT_SAMPLE,
)
CREATE_DOCUMENT = Capability(
    key="create_document",
    noun="File",
    description="Creates a PDF or TXT file from a template and data.",
    input=CreateFile,
    item=DocumentItem,
    gives=Gives.ONE,
    run=_create_document,
    sample=_DOCUMENT_SAMPLE,
)
LIST_TEMPLATES = Capability(
    key="list_templates",
    noun="Template",
    description="Lists the account's templates, newest first.",
    input=Browse,
    item=TemplateItem,
    gives=Gives.PAGE,
    run=_list_templates,
    sample=_TEMPLATE_SAMPLE,
    event=EventType.TEMPLATE_CREATED,
    item_of=lambda event: TemplateItem.model_validate(event.data),
)
GET_TEMPLATE = Capability(
    key="get_template",
    noun="Template",
    description="Gets a template by its ID.",
    input=ById,
    item=TemplateItem,
    gives=Gives.ONE,
    run=_get_template,
    sample=_TEMPLATE_SAMPLE,
)
FIND_TEMPLATES = Capability(
    key="find_templates",
    noun="Template",
    description="Finds templates by their name, ignoring case.",
    input=FindByName,
    item=TemplateItem,
    gives=Gives.MATCHES,
    run=_find_templates,
    sample=_TEMPLATE_SAMPLE,
)
LIST_EVENTS = Capability(
    key="list_events",
    noun="Event",
    description="Lists what happened in the account, newest first.",
    input=BrowseEvents,
    item=EventItem,
    gives=Gives.PAGE,
    run=_list_events,
    sample={
        "id": "evt_2bV9nQ4mLx7RtY1pKz3W",
        "type": "template.created",
        "created_at": "2026-11-20T10:03:00Z",
        "data": {"id": _TEMPLATE_SAMPLE["id"], "name": "Invoice"},
    },
)
LIST_OLD_VALUE_USES = Capability(
    key="list_old_value_uses",
    noun="Old API Key Value",
    description="Lists uses of rolled or deleted API key values, newest first.",
    input=Browse,
    item=OldValueUse,
    gives=Gives.PAGE,
    run=_list_old_value_uses,
    sample={
        "id": "evt_2bV9nQ4mLx7RtY1pKz3W",
        "key_id": "key_UcYa1m6TcUD7y7fEHr8b",
        "key_name": "Zapier production",
        "value_hint": "tt_live_…qous",
        "situation": "refused_after_roll",
        "reason": "rolled",
        "rolled_at": "2026-11-20T10:03:00Z",
        "works_until": None,
        "deleted_at": None,
        "client": "zapier",
        "failure_count": 12,
        "last_seen_at": "2026-11-20T11:15:42Z",
        "last_path": "/zapier/me",
    },
    event=EventType.API_KEY_OLD_VALUE_USED,
    item_of=OldValueUse.of,
)

LIST_KEYS_DUE_FOR_ROTATION = Capability(
    key="list_keys_due_for_rotation",
    noun="API Key Due for Rotation",
    description="Lists API keys that became due or overdue for rolling, newest first.",
    input=Browse,
    item=KeyDueForRotation,
    gives=Gives.PAGE,
    run=_list_keys_due_for_rotation,
    sample={
        "id": "evt_7kD2pQ9mLx4RtY1vKz8W",
        "key_id": "key_UcYa1m6TcUD7y7fEHr8b",
        "key_name": "Zapier production",
        "hint": "tt_live_…qous",
        "rotation": "due",
        "rotate_by": "2027-02-18T10:03:00Z",
        "created_at": "2026-11-20T10:03:00Z",
        "rolled_at": None,
    },
    event=EventType.API_KEY_ROTATION_DUE,
    item_of=KeyDueForRotation.of,
)

# The events a platform's trigger may subscribe to, each delivered on its own.
TRIGGER_EVENTS: tuple[EventType, ...] = (
    EventType.DOCUMENT_CREATED,
    EventType.TEMPLATE_CREATED,
    EventType.API_KEY_ROLLED,
    EventType.API_KEY_DELETED,
    EventType.API_KEY_OLD_VALUE_USED,
    EventType.API_KEY_ROTATION_DUE,
)
