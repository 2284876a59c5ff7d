"""``/n8n``: the credential test, the TemplateTo node's operations (``operations.py``) and the
trigger's webhook lifecycle, in n8n's shapes: a page's items under their collection's name (n8n
unwraps them with ``rootProperty``), a created document as its file's bytes, and errors whose
top-level ``message`` n8n shows as the description under its own text for the status."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Response, request
from pydantic import BaseModel, Field, computed_field

from connector.api.documents import file_response
from connector.api.errors import error_response
from connector.api.security import (
    SUBSCRIBE,
    current_principal,
    key_protected_blueprint,
    request_actor,
    require_current_value,
)
from connector.clients import Client
from connector.clock import format_time
from connector.errors import (
    ApiKeyDeleted,
    ApiKeyRolled,
    AuthenticationFailed,
    BridgeError,
    EventNotOffered,
    TemplateNotFound,
)
from connector.events import EventInfo, EventType
from connector.operations import TRIGGER_EVENTS, Caller, Connection, EventItem, Page
from connector.services import services
from connector.webhooks.subscriptions import NewHook

from .operations import OPERATIONS, NodeOperation

blueprint = key_protected_blueprint(
    "n8n",
    __name__,
    "/n8n",
    "n8n",
    "The TemplateTo community node's credential test, operations and trigger subscriptions.",
)
PLATFORM = "n8n"

# A status per way a key can fail, for credential tests that see only the status (packages
# exported before theirs showed the message): 401 not a key of this service, 403 rolled,
# 410 deleted.
CREDENTIAL_TEST_STATUS: dict[type[AuthenticationFailed], int] = {
    ApiKeyRolled: 403,
    ApiKeyDeleted: 410,
}


class CredentialCheck(Connection):
    @computed_field(  # type: ignore[prop-decorator]
        description="For a rolled value in its grace period: until when it works, and what to "
        "do. The credential test shows it (n8n shows a message only for a failed test)."
    )
    @property
    def warning(self) -> str | None:
        if self.grace_until is None:
            return None
        return (
            f"This value still works, until {format_time(self.grace_until)} only: the API key "
            f"'{self.key_name}' was rolled. Paste the key's new value here before then."
        )


class HookPath(BaseModel):
    hook_id: str


def _run(op: NodeOperation, arguments: BaseModel) -> Any:
    return op.capability.run(services(), Caller(current_principal(), Client.N8N), arguments)


@blueprint.get("/me", responses={200: CredentialCheck})
def me() -> dict[str, Any]:
    """The credential test: who the key is, and for a rolled value in its grace period, until
    when it works. Refusals: 401 not a key of this service, 403 rolled, 410 deleted."""
    check = CredentialCheck.model_validate(current_principal(), from_attributes=True)
    return check.model_dump()


def _page_view(op: NodeOperation) -> Callable[..., Any]:
    def view(query: BaseModel) -> dict[str, Any]:
        page: Page[Any] = _run(op, query)
        return {
            op.collection: [item.model_dump(mode="json") for item in page.items],
            "next_cursor": page.next_cursor,
        }

    return _typed(view, "query", op)


def _item_view(op: NodeOperation) -> Callable[..., Any]:
    def view(path: BaseModel) -> dict[str, Any]:
        result: dict[str, Any] = _run(op, path).model_dump(mode="json")
        return result

    return _typed(view, "path", op)


def _file_view(op: NodeOperation) -> Callable[..., Any]:
    def view(body: BaseModel) -> Response:
        """The answer is the file itself, its record in the ``X-Document`` header (JSON)."""
        document = _run(op, body)
        account_id = current_principal().account_id
        response = file_response(services().documents.file(account_id, document.id))
        # ASCII-only JSON: header values cannot carry the raw UTF-8 of a template's name.
        response.headers["X-Document"] = json.dumps(document.model_dump(mode="json"))
        return response

    return _typed(view, "body", op)


def _typed(view: Callable[..., Any], argument: str, op: NodeOperation) -> Callable[..., Any]:
    """``view`` as flask-openapi3 reads it: its argument typed with the capability's input."""
    view.__annotations__ = {**view.__annotations__, argument: op.capability.input}
    view.__name__ = f"{op.resource}_{op.action}"
    view.__doc__ = op.capability.description + ("\n\n" + view.__doc__ if view.__doc__ else "")
    return view


for _op in OPERATIONS:
    _rule = _op.path.replace("{id}", "<id>")
    if _op.lists:
        blueprint.get(_rule)(_page_view(_op))
    elif _op.gives_file:
        blueprint.post(_rule)(_file_view(_op))
    else:
        blueprint.get(_rule)(_item_view(_op))


class TriggerHook(BaseModel):
    target_url: str
    event: EventType


class Subscription(BaseModel):
    id: str
    target_url: str
    event: EventType
    created_at: datetime


class SubscriptionList(BaseModel):
    hooks: list[Subscription]


class CreatedSubscription(Subscription):
    secret: str = Field(description="Verifies the deliveries' webhook-signature. Shown once.")


@blueprint.get("/hooks", responses={200: SubscriptionList})
def list_hooks() -> dict[str, Any]:
    """The account's n8n trigger subscriptions: what the trigger's checkExists matches on."""
    hooks = services().hooks.list(current_principal().account_id)
    return SubscriptionList(
        hooks=[
            Subscription(
                id=hook.id,
                target_url=hook.target_url,
                event=hook.events[0],
                created_at=hook.created_at,
            )
            for hook in hooks
            if hook.platform == PLATFORM
        ]
    ).model_dump(mode="json")


@blueprint.post("/hooks", responses={201: CreatedSubscription})
def create_hook(body: TriggerHook) -> tuple[dict[str, Any], int]:
    if body.event not in TRIGGER_EVENTS:
        raise EventNotOffered(
            f"The TemplateTo Trigger does not offer {body.event.value!r}; choose one of "
            f"{', '.join(event.value for event in TRIGGER_EVENTS)}.",
        )
    principal = require_current_value(SUBSCRIBE)
    created = services().hooks.create(
        principal.account_id,
        principal.key_id,
        NewHook(target_url=body.target_url, events=[body.event]),
        PLATFORM,
        actor=request_actor(),
    )
    subscription = CreatedSubscription(
        id=created.id,
        target_url=created.target_url,
        event=body.event,
        created_at=created.created_at,
        secret=created.secret,
    )
    return subscription.model_dump(mode="json"), 201


@blueprint.delete("/hooks/<hook_id>", responses={204: None})
def delete_hook(path: HookPath) -> tuple[str, int]:
    services().hooks.delete(current_principal().account_id, path.hook_id, actor=request_actor())
    return "", 204


def delivered_item(event: EventInfo) -> dict[str, Any]:
    """A delivery in the shape of the Get Many Events items: the trigger outputs it as is."""
    return EventItem.of(event).model_dump(mode="json")


def _in_n8ns_words(error: AuthenticationFailed) -> Response:
    """401s that name the key, say what happened and what to do in n8n."""
    if isinstance(error, ApiKeyRolled):
        message = (
            f"The API key '{error.key_name}' was rolled on {error.when}: this value no longer "
            "works. Update the TemplateTo credential in n8n with the key's new value."
        )
    elif isinstance(error, ApiKeyDeleted):
        message = (
            f"The API key '{error.key_name}' was deleted on {error.when}. Create a new key on "
            "the API keys page and update the TemplateTo credential in n8n with it."
        )
    else:
        message = f"{error.message} Then update the TemplateTo credential in n8n."
    response = error_response(type(error)(message, details=error.details))
    if request.endpoint == f"{blueprint.name}.me":
        response.status_code = CREDENTIAL_TEST_STATUS.get(type(error), 401)
    return response


def _in_n8n_terms(error: BridgeError) -> Response:
    """Errors that would send an n8n user to the core API say what to do in the node instead."""
    if isinstance(error, TemplateNotFound):
        error = TemplateNotFound(
            f"There is no template {error.details.get('template_id')!r} in this TemplateTo "
            "account (it may have been deleted). Choose one from the node's Template list.",
            details=error.details,
        )
    return error_response(error)


def _message_on_top(response: Response) -> Response:
    """n8n shows a body's top-level ``message`` as the error's description: every error here
    has one, beside the usual ``error.code``."""
    if response.status_code < 400 or not response.is_json:
        return response
    body = response.get_json(silent=True)
    if isinstance(body, dict) and "message" not in body and isinstance(body.get("error"), dict):
        response.set_data(json.dumps({"message": body["error"].get("message"), **body}))
    return response


blueprint.register_error_handler(AuthenticationFailed, _in_n8ns_words)
blueprint.register_error_handler(BridgeError, _in_n8n_terms)
blueprint.after_request(_message_on_top)
