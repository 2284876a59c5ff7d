"""``/zapier``: the auth test, the operations of ``operations.py`` and REST hooks, in the shapes
Zapier expects: bare arrays for triggers and searches (a trigger's next page cursor in the
``X-Next-Cursor`` header), one object for a create, and errors in its users' words."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from connector.api.errors import error_response
from connector.api.security import (
    SUBSCRIBE,
    current_principal,
    key_protected_blueprint,
    request_actor,
    require_current_value,
)
from connector.clients import Client
from connector.errors import (
    ApiKeyDeleted,
    ApiKeyMissing,
    ApiKeyRolled,
    ApiKeyUnknown,
    AuthenticationFailed,
    BridgeError,
    EventNotOffered,
    InvalidLimit,
    NotFound,
    OperationNotFound,
    TemplateNotFound,
    ValidationFailed,
    excerpt,
)
from connector.events import EventInfo, EventType
from connector.operations import MAX_PAGE_SIZE, Caller, Connection, Gives, Page
from connector.services import services
from connector.webhooks.subscriptions import NewHook

from .operations import Kind, ZapierCreateFile, ZapierOperation, instant_trigger, operation

blueprint = key_protected_blueprint("zapier", __name__, "/zapier", "Zapier")
PLATFORM = "zapier"
NEXT_CURSOR_HEADER = "X-Next-Cursor"


class OperationPath(BaseModel):
    key: str


class HookPath(BaseModel):
    hook_id: str


class ZapierHook(BaseModel):
    target_url: str
    event: EventType


def _caller() -> Caller:
    return Caller(current_principal(), Client.ZAPIER)


def _operation(kind: Kind, key: str) -> ZapierOperation:
    found = operation(kind, key)
    if found is None:
        raise OperationNotFound(f"There is no Zapier {kind} named {excerpt(key)}.")
    return found


def _run(op: ZapierOperation, arguments: BaseModel) -> Any:
    return op.capability.run(services(), _caller(), arguments)


def _json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _in_field_labels(error: ValidationError, fields: type[BaseModel]) -> ValidationFailed:
    """An input error named by the labels the Zapier user sees, in few words: every field of a
    form may be wrong at once, and Zapier shows 250 characters."""
    problems = []
    for problem in error.errors(include_url=False, include_input=False):
        name = str(problem["loc"][0]) if problem["loc"] else ""
        field = fields.model_fields.get(name)
        label = field.title if field is not None and field.title else name or "Input"
        problems.append(f"{label} {_in_few_words(problem)}")
    return ValidationFailed("; ".join(problems) + ".")


def _in_few_words(problem: ErrorDetails) -> str:
    if problem["type"] in ("missing", "string_too_short"):
        return "is required"
    if problem["type"].startswith("bool_"):
        return "must be true or false"
    if problem["type"] == "enum":
        return f"must be {problem.get('ctx', {}).get('expected')}"
    return f"is wrong: {problem['msg']}"


@blueprint.get("/me")
def me() -> dict[str, Any]:
    """Zapier's auth test: who the key is, with a connection label."""
    return _json(Connection.model_validate(current_principal(), from_attributes=True))


@blueprint.get("/triggers/<key>")
def trigger(path: OperationPath) -> Response:
    """A page of items, newest first; the next page's cursor in ``X-Next-Cursor``."""
    op = _operation(Kind.TRIGGER, path.key)
    try:
        limit = int(request.args.get("limit") or 50)
    except ValueError:
        raise InvalidLimit("limit must be a whole number.") from None
    query = op.input.model_validate(
        {
            "cursor": request.args.get("cursor") or None,
            # Zapier sends -1 for "no limit": the most a page holds.
            "limit": MAX_PAGE_SIZE if limit < 1 else min(limit, MAX_PAGE_SIZE),
        }
    )
    page: Page[Any] = _run(op, query)
    response = jsonify([_json(item) for item in page.items])
    response.headers[NEXT_CURSOR_HEADER] = page.next_cursor or ""
    return response


@blueprint.post("/creates/<key>")
def create(path: OperationPath) -> dict[str, Any]:
    op = _operation(Kind.CREATE, path.key)
    try:
        fields = ZapierCreateFile.model_validate(request.get_json(silent=True) or {})
    except ValidationError as error:
        raise _in_field_labels(error, ZapierCreateFile) from None
    return _json(_run(op, fields.as_capability_input()))


@blueprint.get("/searches/<key>")
def search(path: OperationPath) -> Response:
    """Every match, as an array; none is an empty array, not an error."""
    op = _operation(Kind.SEARCH, path.key)
    try:
        query = op.input.model_validate(request.args.to_dict())
    except ValidationError as error:
        raise _in_field_labels(error, op.input) from None
    if op.capability.gives is Gives.MATCHES:
        return jsonify([_json(item) for item in _run(op, query)])
    try:
        return jsonify([_json(_run(op, query))])
    except NotFound:
        return jsonify([])


@blueprint.post("/hooks")
def subscribe() -> tuple[dict[str, Any], int]:
    """REST hook subscribe: Zapier posts its target URL and the event of an instant trigger."""
    hook = ZapierHook.model_validate(request.get_json(silent=True) or {})
    if instant_trigger(hook.event) is None:
        raise EventNotOffered(f"No Zapier trigger fires on {hook.event.value!r}.")
    principal = require_current_value(SUBSCRIBE)
    created = services().hooks.create(
        principal.account_id,
        principal.key_id,
        NewHook(target_url=hook.target_url, events=[hook.event]),
        PLATFORM,
        actor=request_actor(),
    )
    return {"id": created.id, "event": hook.event.value, "target_url": created.target_url}, 201


@blueprint.delete("/hooks/<hook_id>")
def unsubscribe(path: HookPath) -> dict[str, Any]:
    services().hooks.delete(current_principal().account_id, path.hook_id, actor=request_actor())
    return {"id": path.hook_id, "deleted": True}


def delivered_item(event: EventInfo) -> dict[str, Any]:
    """A REST hook payload in the shape of the trigger's polling items, so ``perform`` returns
    it as is. Zapier subscribes only to the events of its instant triggers."""
    op = instant_trigger(event.type)
    if op is None or op.capability.item_of is None:
        raise LookupError(f"No Zapier trigger fires on {event.type.value!r}.")
    return _json(op.capability.item_of(event))


def _in_zapiers_words(error: AuthenticationFailed) -> Response:
    """401s that say what happened and what to do in Zapier: reconnect the account."""
    if isinstance(error, ApiKeyRolled):
        message = (
            f"This API key ({excerpt(error.key_name)}) was rolled on {error.when}. Reconnect "
            "your TemplateTo account in Zapier with the new key."
        )
    elif isinstance(error, ApiKeyDeleted):
        message = (
            f"This API key ({excerpt(error.key_name)}) was deleted on {error.when}. Create a new "
            "key on the API keys page and reconnect your TemplateTo account in Zapier with it."
        )
    elif isinstance(error, ApiKeyUnknown):
        message = (
            "This API key is not known to this TemplateTo service: it was never issued here, or "
            "was deleted over 90 days ago. Reconnect your TemplateTo account in Zapier with a "
            "key from its API keys page."
        )
    elif isinstance(error, ApiKeyMissing):
        message = (
            "No API key was given. Reconnect your TemplateTo account in Zapier with a key from "
            "the API keys page."
        )
    else:  # its shape or checksum: the message says what is wrong with the key as pasted
        message = f"{error.message} Then reconnect your TemplateTo account in Zapier."
    return _in_zapiers_limit(type(error)(message, details=error.details))


def _in_zapiers_limit(error: BridgeError) -> Response:
    """Zapier shows the first 250 characters of a message: ours are written to fit, never cut
    (tests/zapier/test_routes.py checks the longest of each)."""
    if isinstance(error, TemplateNotFound):
        error = TemplateNotFound(
            "This template is not in your TemplateTo account (it may have been deleted). "
            "Choose a template from the Template dropdown again.",
            details=error.details,
        )
    return error_response(error)


blueprint.register_error_handler(AuthenticationFailed, _in_zapiers_words)
blueprint.register_error_handler(BridgeError, _in_zapiers_limit)
