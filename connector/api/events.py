"""``/v1/events``: what happened in the account, newest first: a polling source besides webhooks."""

from __future__ import annotations

from pydantic import Field

from ..events import EventPage, EventType
from ..paging import PageQuery
from ..services import services
from .security import current_principal, key_protected_blueprint

blueprint = key_protected_blueprint("events", __name__, "/v1/events", "Events")


class EventQuery(PageQuery):
    type: EventType | None = Field(default=None, description="Only events of this type.")


@blueprint.get("", responses={200: EventPage})
def list_events(query: EventQuery) -> dict:
    page = services().events.list(current_principal().account_id, query, query.type)
    return page.model_dump(mode="json")
