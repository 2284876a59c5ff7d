"""``/v1/templates``: an account's templates."""

from __future__ import annotations

from pydantic import BaseModel

from ..paging import PageQuery
from ..services import services
from ..templates import TemplateFields, TemplateInfo, TemplatePage
from .security import current_principal, key_protected_blueprint

blueprint = key_protected_blueprint("templates", __name__, "/v1/templates", "Templates")


class TemplatePath(BaseModel):
    template_id: str


@blueprint.get("", responses={200: TemplatePage})
def list_templates(query: PageQuery) -> dict:
    """The account's templates, newest first, with the variables each one uses."""
    page = services().templates.list(current_principal().account_id, query)
    return page.model_dump(mode="json")


@blueprint.post("", responses={201: TemplateInfo})
def create_template(body: TemplateFields) -> tuple[dict, int]:
    """Save a template. One that does not parse is refused with the line, column and reason."""
    template = services().templates.create(current_principal().account_id, body)
    return template.model_dump(mode="json"), 201


@blueprint.get("/<template_id>", responses={200: TemplateInfo})
def get_template(path: TemplatePath) -> dict:
    template = services().templates.get(current_principal().account_id, path.template_id)
    return template.model_dump(mode="json")


@blueprint.put("/<template_id>", responses={200: TemplateInfo})
def replace_template(path: TemplatePath, body: TemplateFields) -> dict:
    """Replace a template's name and bodies."""
    template = services().templates.replace(current_principal().account_id, path.template_id, body)
    return template.model_dump(mode="json")


@blueprint.delete("/<template_id>", responses={204: None})
def delete_template(path: TemplatePath) -> tuple[str, int]:
    services().templates.delete(current_principal().account_id, path.template_id)
    return "", 204
