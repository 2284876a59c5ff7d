"""``/zapier``: auth test, triggers, creates, searches and REST hooks, in Zapier's shapes.

Everything is an operation of :mod:`connector.operations`; this module only translates: bare
arrays for triggers and searches, one object for a create, Zapier's page/limit, its Create File
inputs, and error messages in its users' words."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from pydantic import BaseModel, Field, ValidationError

from connector.api.errors import error_response
from connector.api.security import current_principal, key_protected_blueprint
from connector.clients import Client
from connector.errors import (
    ApiKeyDeleted,
    ApiKeyRolled,
    AuthenticationFailed,
    BridgeError,
    EventNotOffered,
    InvalidLimit,
    OperationNotFound,
    TemplateNotFound,
    ValidationFailed,
)
from connector.events import EventInfo, EventType
from connector.operations import (
    CATALOG,
    MAX_PAGE_SIZE,
    Caller,
    Connection,
    CreateFile,
    Kind,
    Operation,
    WorkflowInput,
    data_from_json_text,
)
from connector.rendering import Format
from connector.services import services
from connector.webhooks.delivery import PLATFORMS, Receivers
from connector.webhooks.subscriptions import NewHook

blueprint = key_protected_blueprint("zapier", __name__, "/zapier", "Zapier")
PLATFORM = "zapier"
# Zapier shows at most 250 characters of an error: the useful part comes first.
MAX_MESSAGE = 250


class ZapierCreateFile(WorkflowInput):
    """Create File as TemplateTo's Zapier users know it."""

    template: str = Field(description="Template id, from the dropdown.")
    advanced: bool = Field(default=False, description="Enable advanced input: data as JSON text.")
    data: dict[str, Any] | str | None = Field(
        default=None, description="Name-value pairs, or JSON text with advanced input."
    )
    preserve_line_breaks: bool = False
    document_type: Format = Format.PDF
    strict: bool = Field(default=False, description="Fail on a variable the data lacks.")

    def as_operation_input(self) -> CreateFile:
        data = data_from_json_text(self.data) if isinstance(self.data, str) else self.data or {}
        return CreateFile(
            template_id=self.template,
            format=self.document_type,
            data=data,
            preserve_line_breaks=self.preserve_line_breaks,
            strict=self.strict,
        )


class OperationPath(BaseModel):
    key: str


class HookPath(BaseModel):
    hook_id: str


class ZapierHook(BaseModel):
    target_url: str
    event: EventType


CREATE_FILE_LABELS = {
    "template": "Template",
    "advanced": "Enable advanced input",
    "data": "Template data",
    "preserve_line_breaks": "Preserve line breaks",
    "document_type": "Document type",
    "strict": "Fail on missing variables",
}


def _in_field_labels(error: ValidationError) -> ValidationFailed:
    """A Create File input error named by the labels the Zapier user sees."""
    problems = []
    for problem in error.errors(include_url=False, include_input=False):
        field = str(problem["loc"][0]) if problem["loc"] else ""
        problems.append(f"{CREATE_FILE_LABELS.get(field, field or 'Input')}: {problem['msg']}")
    return ValidationFailed("; ".join(problems) + ".")


def _caller() -> Caller:
    return Caller(current_principal(), Client.ZAPIER)


def _operation(kind: Kind, key: str) -> Operation:
    operation = CATALOG.get((kind, key))
    if operation is None:
        raise OperationNotFound(f"There is no Zapier {kind} named {key!r}.")
    return operation


def _json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _array(result: BaseModel | list[BaseModel]) -> list[dict[str, Any]]:
    return [_json(item) for item in (result if isinstance(result, list) else [result])]


@blueprint.get("/me")
def me() -> dict[str, Any]:
    """Zapier's auth test: who the key is, with a connection label."""
    return _json(Connection.model_validate(current_principal(), from_attributes=True))


@blueprint.get("/triggers/<key>")
def trigger(path: OperationPath) -> Response:
    operation = _operation(Kind.TRIGGER, path.key)
    try:
        limit = int(request.args.get("limit") or 50)
    except ValueError:
        raise InvalidLimit("limit must be a whole number.") from None
    listing = operation.input.model_validate(
        {
            "page": request.args.get("page", 0) or 0,
            # Zapier sends -1 for "no limit": the most a page holds.
            "limit": MAX_PAGE_SIZE if limit < 1 else min(limit, MAX_PAGE_SIZE),
        }
    )
    return jsonify(_array(operation.run(services(), _caller(), listing)))


@blueprint.post("/creates/create_file")
def create_file() -> tuple[dict[str, Any], int]:
    operation = _operation(Kind.CREATE, "create_file")
    try:
        request_data = ZapierCreateFile.model_validate(request.get_json(silent=True) or {})
    except ValidationError as error:
        raise _in_field_labels(error) from None
    [created] = _array(operation.run(services(), _caller(), request_data.as_operation_input()))
    return created, 200


@blueprint.get("/searches/<key>")
def search(path: OperationPath) -> Response:
    operation = _operation(Kind.SEARCH, path.key)
    query = operation.input.model_validate(request.args.to_dict())
    return jsonify(_array(operation.run(services(), _caller(), query)))


@blueprint.post("/hooks")
def subscribe() -> tuple[dict[str, Any], int]:
    """REST hook subscribe: Zapier posts its target URL and the event of an instant trigger."""
    hook = ZapierHook.model_validate(request.get_json(silent=True) or {})
    if not any(op.event == hook.event for op in CATALOG.values()):
        raise EventNotOffered(f"No Zapier trigger fires on {hook.event.value!r}.")
    principal = current_principal()
    created = services().hooks.create(
        principal.account_id,
        principal.key_id,
        NewHook(target_url=hook.target_url, events=[hook.event]),
        PLATFORM,
    )
    return {"id": created.id, "event": hook.event.value, "target_url": created.target_url}, 201


@blueprint.delete("/hooks/<hook_id>")
def unsubscribe(path: HookPath) -> dict[str, Any]:
    services().hooks.delete(current_principal().account_id, path.hook_id)
    return {"id": path.hook_id, "deleted": True}


def _delivered_item(event: EventInfo) -> dict[str, Any]:
    """A REST hook payload in the shape of the polling items, so ``perform`` returns it as is."""
    for operation in CATALOG.values():
        if operation.event == event.type and operation.from_event is not None:
            return _json(operation.from_event(event))
    return {"id": event.id, "type": event.type.value, **event.data}


PLATFORMS[PLATFORM] = Receivers(payload=_delivered_item)


def _in_zapiers_words(error: AuthenticationFailed) -> Response:
    """401s that say what happened and what to do in Zapier: reconnect the account."""
    if isinstance(error, ApiKeyRolled):
        message = (
            f"This API key ('{error.key_name}') was rolled on {error.when}. Reconnect your "
            "TemplateTo account in Zapier with the new key."
        )
    elif isinstance(error, ApiKeyDeleted):
        message = (
            f"This API key ('{error.key_name}') was deleted on {error.when}. Create a new key "
            "on the API keys page and reconnect your TemplateTo account in Zapier with it."
        )
    else:
        # The action first: Zapier shows only the start of a long message.
        message = (
            f"Reconnect your TemplateTo account in Zapier with a valid API key. {error.message}"
        )
    return _within_zapiers_limit(type(error)(message, details=error.details))


def _within_zapiers_limit(error: BridgeError) -> Response:
    """Zapier shows the first 250 characters: our messages lead with what matters."""
    if isinstance(error, TemplateNotFound):
        error = TemplateNotFound(
            "This template is not in your TemplateTo account (it may have been deleted). "
            "Choose a template from the Template dropdown again.",
            details=error.details,
        )
    if len(error.message) <= MAX_MESSAGE:
        return error_response(error)
    shortened = type(error)(error.message[: MAX_MESSAGE - 1] + "…", details=error.details)
    return error_response(shortened)


blueprint.register_error_handler(AuthenticationFailed, _in_zapiers_words)
blueprint.register_error_handler(BridgeError, _within_zapiers_limit)
