"""What the TemplateTo node offers: each of its resource operations is a capability of
:mod:`connector.operations` under n8n's resource, action and words, at an address of ``/n8n``.
Routes (``routes.py``) and the exported node (``export.py``) are both made from this table."""

from __future__ import annotations

from dataclasses import dataclass

from connector.operations import (
    CREATE_DOCUMENT,
    GET_DOCUMENT,
    GET_TEMPLATE,
    LIST_DOCUMENTS,
    LIST_EVENTS,
    LIST_TEMPLATES,
    Capability,
    Gives,
)


@dataclass(frozen=True)
class NodeOperation:
    capability: Capability
    resource: str  # "template"
    action: str  # n8n's value for it: getAll, get, create
    name: str  # as the node lists it: "Get Many"
    summary: str  # n8n's "action", as its actions panel says it: "Get many templates"
    method: str
    path: str  # under /n8n; "{id}" stands for the item's ID

    @property
    def collection(self) -> str:
        """A page's items are answered under this name: ``{"templates": [...]}``."""
        return f"{self.resource}s"

    @property
    def lists(self) -> bool:
        return self.capability.gives is Gives.PAGE

    @property
    def gives_file(self) -> bool:
        """What it creates is answered as the file itself (Create File)."""
        return self.method == "POST"

    @property
    def answer(self) -> str:
        """How the node reads the answer: a page of items, one item, or a file."""
        return "file" if self.gives_file else "page" if self.lists else "one"


OPERATIONS: tuple[NodeOperation, ...] = (
    NodeOperation(
        LIST_TEMPLATES, "template", "getAll", "Get Many", "Get many templates", "GET", "/templates"
    ),
    NodeOperation(
        GET_TEMPLATE, "template", "get", "Get", "Get a template", "GET", "/templates/{id}"
    ),
    NodeOperation(
        CREATE_DOCUMENT, "document", "create", "Create File", "Create a file", "POST", "/documents"
    ),
    NodeOperation(
        LIST_DOCUMENTS, "document", "getAll", "Get Many", "Get many documents", "GET", "/documents"
    ),
    NodeOperation(
        GET_DOCUMENT, "document", "get", "Get", "Get a document", "GET", "/documents/{id}"
    ),
    NodeOperation(LIST_EVENTS, "event", "getAll", "Get Many", "Get many events", "GET", "/events"),
)
