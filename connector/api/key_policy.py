"""``/v1/key-policy``: the account's key policy (maximum key age, what a leak does). Admin keys
only."""

from __future__ import annotations

from ..key_policy import KeyPolicyChange, KeyPolicyInfo
from ..services import services
from .security import key_protected_blueprint, request_actor, require_admin

blueprint = key_protected_blueprint(
    "key_policy",
    __name__,
    "/v1/key-policy",
    "Key policy",
    "How old a key may get before it is due to be rolled, and what a reported leak does. "
    "Admin keys only.",
)


@blueprint.get("", responses={200: KeyPolicyInfo})
def get_policy() -> dict:
    principal = require_admin()
    return services().key_policies.get(principal.account_id).model_dump(mode="json")


@blueprint.put("", responses={200: KeyPolicyInfo})
def change_policy(body: KeyPolicyChange) -> dict:
    """Change the policy: the fields sent replace the current ones, those left out keep their
    value. Nothing is rolled because of it; keys past their age become due or overdue."""
    principal = require_admin(to_change=True)
    changed = services().key_policies.change(principal.account_id, body, actor=request_actor())
    return changed.model_dump(mode="json")
