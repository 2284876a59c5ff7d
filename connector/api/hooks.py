"""``/v1/hooks``: webhook subscriptions, their deliveries, and retrying a failed one."""

from __future__ import annotations

from pydantic import BaseModel

from ..paging import PageQuery
from ..services import services
from ..webhooks.subscriptions import CreatedHook, DeliveryInfo, DeliveryPage, HookInfo, NewHook
from .security import (
    SUBSCRIBE,
    current_principal,
    key_protected_blueprint,
    request_actor,
    require_current_value,
)

blueprint = key_protected_blueprint(
    "hooks",
    __name__,
    "/v1/hooks",
    "Webhooks",
    "Signed per Standard Webhooks; deleting the key that created a subscription deletes it.",
)


class HookPath(BaseModel):
    hook_id: str


class DeliveryPath(HookPath):
    delivery_id: str


class HookList(BaseModel):
    data: list[HookInfo]


@blueprint.post("", responses={201: CreatedHook})
def create_hook(body: NewHook) -> tuple[dict, int]:
    """Subscribe a URL to events. The answer's secret (shown once) verifies deliveries."""
    principal = require_current_value(SUBSCRIBE)
    hook = services().hooks.create(
        principal.account_id, principal.key_id, body, "api", actor=request_actor()
    )
    return hook.model_dump(mode="json"), 201


@blueprint.get("", responses={200: HookList})
def list_hooks() -> dict:
    hooks = services().hooks.list(current_principal().account_id)
    return HookList(data=hooks).model_dump(mode="json")


@blueprint.get("/<hook_id>", responses={200: HookInfo})
def get_hook(path: HookPath) -> dict:
    return (
        services().hooks.get(current_principal().account_id, path.hook_id).model_dump(mode="json")
    )


@blueprint.delete("/<hook_id>", responses={204: None})
def delete_hook(path: HookPath) -> tuple[str, int]:
    services().hooks.delete(current_principal().account_id, path.hook_id, actor=request_actor())
    return "", 204


@blueprint.get("/<hook_id>/deliveries", responses={200: DeliveryPage})
def list_deliveries(path: HookPath, query: PageQuery) -> dict:
    """Deliveries newest first, each with its attempts: status codes, errors and times."""
    page = services().hooks.deliveries(current_principal().account_id, path.hook_id, query)
    return page.model_dump(mode="json")


@blueprint.post("/<hook_id>/deliveries/<delivery_id>/retry", responses={200: DeliveryInfo})
def retry_delivery(path: DeliveryPath) -> dict:
    """Put a failed delivery back on its schedule."""
    delivery = services().hooks.retry(
        current_principal().account_id, path.hook_id, path.delivery_id
    )
    return delivery.model_dump(mode="json")
