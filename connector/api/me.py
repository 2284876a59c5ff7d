"""``GET /v1/me``: the connection test. Who the key is, with a ready label; no side effect but
the key's last-used time."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from ..api_keys import Permission
from .security import current_principal, key_protected_blueprint

blueprint = key_protected_blueprint("me", __name__, "/v1", "Connection")


class Me(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_id: str
    account_name: str
    key_id: str
    key_name: str
    key_hint: str = Field(description="tt_live_… and the last 4 characters of the value used.")
    permission: Permission
    key_created_at: datetime
    key_rolled_at: datetime | None
    label: str = Field(
        description="Account and key name, for a connection label; for a rolled value in its "
        "grace period, also when it stops working."
    )
    in_grace_period: bool = Field(
        description="True when this value was rolled and works only until grace_until."
    )
    grace_until: datetime | None = Field(description="When this rolled value stops working.")


@blueprint.get("/me", responses={200: Me})
def me() -> dict:
    """Test a connection: the account and key that the X-Api-Key header belongs to."""
    return Me.model_validate(current_principal()).model_dump(mode="json")
