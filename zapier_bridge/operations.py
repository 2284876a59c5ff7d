"""What the Zapier app offers: each of its triggers, creates and searches is a capability of
:mod:`connector.operations` under Zapier's name, kind and words. Routes (``routes.py``) and the
exported app (``export.py``) are both made from this table."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, field_validator

from connector.operations import (
    CREATE_DOCUMENT,
    FIND_TEMPLATES,
    GET_DOCUMENT,
    LIST_DOCUMENTS,
    LIST_OLD_VALUE_USES,
    LIST_TEMPLATES,
    Capability,
    CreateFile,
    DocumentType,
    FailOnMissing,
    PdfEngine,
    PreserveLineBreaks,
    TemplateData,
    TemplateId,
    WorkflowInput,
    data_from_pairs,
)
from connector.rendering import Format


class Kind(enum.StrEnum):
    TRIGGER = "trigger"
    CREATE = "create"
    SEARCH = "search"

    @property
    def group(self) -> str:
        """The app's key for them, and their folder: triggers, creates, searches."""
        return f"{self.value}es" if self is Kind.SEARCH else f"{self.value}s"


class ZapierCreateFile(WorkflowInput):
    """Create File under the field names TemplateTo's Zapier users know. ``json_schema_extra``
    holds what only Zapier's form needs."""

    template: TemplateId = Field(json_schema_extra={"zapier": {"dynamic": "templates.id.name"}})
    advanced: bool = Field(
        default=False,
        title="Enable advanced input",
        description="Send the template data as JSON text instead of name-value pairs.",
        json_schema_extra={"zapier": {"altersDynamicFields": True}},
    )
    # Name-value pairs, or JSON text with advanced input: a field that changes with `advanced`.
    data: TemplateData = Field(default_factory=dict, json_schema_extra={"zapier": "switched"})
    preserve_line_breaks: PreserveLineBreaks = False
    document_type: DocumentType = Format.PDF
    strict: FailOnMissing = False
    engine: PdfEngine = None

    @field_validator("data", mode="before")
    @classmethod
    def _dotted_names_fill_nested_objects(cls, value: Any) -> Any:
        # Name-value pairs cannot nest: "order.number" fills the number of order. (JSON text
        # nests itself, and keeps its names as they are.)
        return data_from_pairs(value) if isinstance(value, dict) else value

    def as_capability_input(self) -> CreateFile:
        return CreateFile(
            template_id=self.template,
            format=self.document_type,
            data=self.data,
            preserve_line_breaks=self.preserve_line_breaks,
            strict=self.strict,
            engine=self.engine,
        )


@dataclass(frozen=True)
class ZapierOperation:
    key: str
    kind: Kind
    capability: Capability
    label: str
    description: str
    # Zapier's own fields, when they are not the capability's.
    fields: type[BaseModel] | None = None
    # A REST hook trigger, fired by the capability's event.
    instant: bool = False
    # Only for a dropdown; it pages through every item.
    hidden: bool = False

    @property
    def input(self) -> type[BaseModel]:
        return self.fields or self.capability.input

    @property
    def gives_file(self) -> bool:
        """Whether its items are documents, which come with their file."""
        return "file_url" in self.capability.item.model_fields

    @property
    def path(self) -> str:
        return f"/zapier/{self.kind.group}/{self.key}"


OPERATIONS: tuple[ZapierOperation, ...] = (
    ZapierOperation(
        "new_document",
        Kind.TRIGGER,
        LIST_DOCUMENTS,
        "New Document",
        "Triggers when a document is generated.",
        instant=True,
    ),
    ZapierOperation(
        "new_template",
        Kind.TRIGGER,
        LIST_TEMPLATES,
        "New Template",
        "Triggers when a template is created.",
    ),
    ZapierOperation(
        "old_value_used",
        Kind.TRIGGER,
        LIST_OLD_VALUE_USES,
        "Old API Key Value Used",
        "Triggers when an integration still uses a rolled or deleted API key value.",
        instant=True,
    ),
    ZapierOperation(
        "templates",
        Kind.TRIGGER,
        LIST_TEMPLATES,
        "Templates",
        "Lists templates for the template dropdown.",
        hidden=True,
    ),
    ZapierOperation(
        "create_file",
        Kind.CREATE,
        CREATE_DOCUMENT,
        "Create File",
        CREATE_DOCUMENT.description,
        fields=ZapierCreateFile,
    ),
    ZapierOperation(
        "find_template",
        Kind.SEARCH,
        FIND_TEMPLATES,
        "Find Template",
        "Finds a template by its name (ignoring case).",
    ),
    ZapierOperation(
        "find_document",
        Kind.SEARCH,
        GET_DOCUMENT,
        "Find Document",
        "Finds a document by its ID.",
    ),
)


def operation(kind: Kind, key: str) -> ZapierOperation | None:
    return next((op for op in OPERATIONS if op.kind is kind and op.key == key), None)


def instant_trigger(event: Any) -> ZapierOperation | None:
    """The instant trigger that ``event`` (an EventType) fires, if any."""
    return next((op for op in OPERATIONS if op.instant and op.capability.event == event), None)
