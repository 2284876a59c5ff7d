"""``/v1/audit-log``: who did what to the account's keys, policy, users and subscriptions.
Admin keys only. Read-only: no route changes or deletes an entry (405)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..audit import AuditAction, AuditEntryInfo, AuditPage
from ..paging import PageQuery
from ..services import services
from .security import key_protected_blueprint, require_admin

blueprint = key_protected_blueprint(
    "audit_log",
    __name__,
    "/v1/audit-log",
    "Audit log",
    "Security-relevant actions, newest first, kept for BRIDGE_AUDIT_RETENTION_DAYS. Admin keys "
    "only; entries cannot be changed or deleted.",
)


class AuditQuery(PageQuery):
    action: AuditAction | None = Field(default=None, description="Only entries of this action.")
    target: str | None = Field(
        default=None,
        max_length=254,
        description="Only entries about this key or hook id, user email, or key_policy.",
    )


class EntryPath(BaseModel):
    entry_id: str


@blueprint.get("", responses={200: AuditPage})
def list_entries(query: AuditQuery) -> dict:
    principal = require_admin()
    page = services().audit.list(
        principal.account_id, query, action=query.action, target=query.target
    )
    return page.model_dump(mode="json")


@blueprint.get("/<entry_id>", responses={200: AuditEntryInfo})
def get_entry(path: EntryPath) -> dict:
    principal = require_admin()
    return services().audit.get(principal.account_id, path.entry_id).model_dump(mode="json")
