"""The core JSON API: ``/v1`` routes, error handling and the OpenAPI description."""

from __future__ import annotations

from flask_openapi3 import OpenAPI

from . import (
    api_keys,
    audit_log,
    documents,
    events,
    hooks,
    key_policy,
    me,
    render,
    secret_scanning,
    templates,
)
from .errors import register_error_handlers


def register_api(app: OpenAPI) -> None:
    register_error_handlers(app)
    app.register_api(me.blueprint)
    app.register_api(api_keys.blueprint)
    app.register_api(key_policy.blueprint)
    app.register_api(audit_log.blueprint)
    app.register_api(templates.blueprint)
    app.register_api(render.blueprint)
    app.register_api(documents.blueprint)
    app.register_blueprint(documents.downloads)
    app.register_api(events.blueprint)
    app.register_api(hooks.blueprint)
    app.register_api(secret_scanning.blueprint)
    # The description at the conventional root address, besides /openapi/openapi.json where
    # the bundled Swagger UI (served from local files) reads it.
    app.add_url_rule("/openapi.json", "openapi_json", lambda: app.api_doc)
