"""``GET /v1/me``: the connection test. Who the key is, with a ready label; no side effect but
the key's last-used time."""

from __future__ import annotations

from datetime import datetime

from pydantic import ConfigDict

from ..api_keys import Permission
from ..operations import Connection
from .security import current_principal, key_protected_blueprint

blueprint = key_protected_blueprint("me", __name__, "/v1", "Connection")


class Me(Connection):
    """The platforms' connection test, and the key's permission and times."""

    model_config = ConfigDict(from_attributes=True)

    permission: Permission
    key_created_at: datetime
    key_rolled_at: datetime | None


@blueprint.get("/me", responses={200: Me})
def me() -> dict:
    """Test a connection: the account and key that the X-Api-Key header belongs to."""
    return Me.model_validate(current_principal()).model_dump(mode="json")
