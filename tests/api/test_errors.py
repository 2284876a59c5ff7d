"""Every error is JSON with a stable code and a message; never HTML, never a stack trace."""

from __future__ import annotations

import pytest
from pydantic import HttpUrl

from connector.app import create_app
from connector.errors import BridgeError
from connector.services import EXTENSION

from ..helpers import class_tree, free_port, key_header


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == "application/json"
    error = response.json["error"]
    assert error["code"] == code
    assert error["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    return error


def test_unknown_route_is_a_json_404(client) -> None:
    assert_json_error(client.get("/v2/nothing"), 404, "not_found")


def test_wrong_method_is_a_json_405_with_allow(client, admin_key) -> None:
    response = client.put("/v1/me", headers=key_header(admin_key.value))

    error = assert_json_error(response, 405, "method_not_allowed")
    assert "PUT" in error["message"]
    assert "GET" in response.headers["Allow"]


def test_body_over_the_limit_is_a_json_413(client, admin_key) -> None:
    body = b'{"name": "' + b"x" * 1_000_001 + b'"}'

    response = client.post(
        "/v1/api-keys",
        data=body,
        content_type="application/json",
        headers=key_header(admin_key.value),
    )

    assert_json_error(response, 413, "payload_too_large")


def test_body_limit_is_configurable(tmp_path, database_url, clock, account) -> None:
    from connector.app import create_app
    from connector.config import load_settings

    app = create_app(
        load_settings(data_dir=tmp_path / "small", database_url=database_url, max_body_bytes=100),
        clock=clock,
    )
    response = app.test_client().post("/v1/api-keys", data=b"x" * 101)

    assert_json_error(response, 413, "payload_too_large")


def test_malformed_json_is_a_400_saying_where(client, admin_key) -> None:
    response = client.post(
        "/v1/api-keys",
        data='{\n  "name": "Zapier",\n  oops\n}',
        content_type="application/json",
        headers=key_header(admin_key.value),
    )

    error = assert_json_error(response, 400, "malformed_json")
    assert "line 3, column 3" in error["message"]


def test_non_json_body_is_a_422_that_says_send_json(client, admin_key) -> None:
    response = client.post("/v1/api-keys", data="name=Zapier", headers=key_header(admin_key.value))

    error = assert_json_error(response, 422, "validation_failed")
    assert "Content-Type: application/json" in error["message"]


@pytest.mark.parametrize("body", [[], ["x"], "text", 3, {"permission": "root", "name": "A"}])
def test_wrong_shapes_are_422_with_field_errors(client, admin_key, body) -> None:
    response = client.post("/v1/api-keys", json=body, headers=key_header(admin_key.value))

    error = assert_json_error(response, 422, "validation_failed")
    assert error["details"]["fields"]


def test_roll_with_a_bad_body_is_a_422_and_changes_nothing(client, services, admin_key) -> None:
    response = client.post(
        f"/v1/api-keys/{admin_key.id}/roll",
        json={"grace_seconds": "soon"},
        headers=key_header(admin_key.value),
    )

    assert_json_error(response, 422, "validation_failed")
    assert services.keys.get(None, admin_key.id).rolled_at is None
    assert client.get("/v1/me", headers=key_header(admin_key.value)).status_code == 200


def test_unknown_key_id_is_a_404(client, admin_key) -> None:
    response = client.get("/v1/api-keys/key_nope", headers=key_header(admin_key.value))

    assert_json_error(response, 404, "api_key_not_found")


def test_unreachable_database_is_a_503_with_retry_after(tmp_path, clock) -> None:
    from connector import keys
    from connector.app import create_app
    from connector.config import load_settings

    nobody_listens = f"postgresql://postgres@127.0.0.1:{free_port()}/bridge"
    app = create_app(
        load_settings(data_dir=tmp_path / "data", database_url=nobody_listens), clock=clock
    )

    response = app.test_client().get("/v1/me", headers=key_header(keys.generate()))

    assert_json_error(response, 503, "storage_unavailable")
    assert response.headers["Retry-After"].isdigit()


def test_openapi_describes_the_api_as_3_1(client) -> None:
    spec = client.get("/openapi.json").json

    assert spec["openapi"].startswith("3.1")
    assert {"/v1/me", "/v1/api-keys", "/v1/api-keys/{key_id}/roll"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
    }


def test_openapi_documents_the_errors_in_the_shape_they_come_in(client, admin_key) -> None:
    spec = client.get("/openapi.json").json
    error_ref = {"$ref": "#/components/schemas/ErrorResponse"}

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status in ("400", "401", "413", "422", "429", "503"):
                documented = operation["responses"][status]["content"]["application/json"]
                assert documented["schema"] == error_ref, (method, path, status)
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorResponse"]["required"] == ["error"]
    assert set(schemas["ErrorDetail"]["required"]) == {"code", "message"}
    answer = client.post("/v1/templates", json={"name": 5}, headers=key_header(admin_key.value))
    assert answer.status_code == 422
    assert set(answer.json) == {"error"}
    assert set(answer.json["error"]) <= set(schemas["ErrorDetail"]["properties"])
    assert {"code", "message"} <= set(answer.json["error"])


def test_interactive_docs_load_nothing_from_the_internet(client) -> None:
    page = client.get("/openapi/swagger")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert "swagger-ui" in html
    assert "http://" not in html and "https://" not in html.replace("https://swagger.io", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert asset in html


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/templates/tpl_%00", None),
        ("POST", "/v1/templates", {"name": "😀 fine", "body": "x", "text_body": "\u0000"}),
        ("POST", "/render/pdf/tpl_%00", {}),
        ("GET", "/v1/documents?template_id=%00", None),
        ("POST", "/v1/templates", {"name": "T", "body": "a\u0000b"}),
        ("POST", "/v1/templates", {"name": "\ud800", "body": "x"}),
        ("POST", "/v1/documents", {"template_id": "tpl_\ud800"}),
    ],
)
def test_characters_the_database_cannot_store_are_a_400(client, admin_key, method, path, body):
    import json

    response = client.open(
        path,
        method=method,
        data=None if body is None else json.dumps(body),
        content_type="application/json",
        headers=key_header(admin_key.value),
    )

    assert_json_error(response, 400, "invalid_characters")


def test_a_cursor_without_a_time_zone_is_a_400(client, admin_key) -> None:
    import base64

    cursor = base64.urlsafe_b64encode(b"2026-01-01|a").decode()

    response = client.get(f"/v1/templates?cursor={cursor}", headers=key_header(admin_key.value))

    assert_json_error(response, 400, "invalid_cursor")


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/render/txt//as-byte-array", "/v1//api-keys", "//v1/me"])
def test_a_path_with_an_empty_segment_is_a_json_404_not_a_redirect(client, method, path) -> None:
    response = client.open(path, method=method, headers={"Host": "evil.example"})

    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert "Location" not in response.headers


def test_each_error_class_has_a_code_of_its_own(app) -> None:
    # The app is assembled, so every module that could define an error has been imported.
    tree = class_tree(BridgeError)
    codes = [error.code for error in tree if "code" in vars(error)]
    borrowing = [error for error in tree if "code" not in vars(error)]

    assert len(codes) == len(set(codes)), sorted(code for code in codes if codes.count(code) > 1)
    # One that declares none answers with its parent's code: only groupings may do that.
    assert all(error.__subclasses__() for error in borrowing), borrowing


def test_a_redirect_stays_on_the_public_url_whatever_the_host_header(settings, clock) -> None:
    public = settings.model_copy(update={"public_url": HttpUrl("https://bridge.example.com/tt/")})
    app = create_app(public, clock=clock)
    try:
        response = app.test_client().get("/openapi?x=1", headers={"Host": "evil.example"})
    finally:
        app.extensions[EXTENSION].close()

    assert response.status_code == 308
    assert response.headers["Location"] == "https://bridge.example.com/tt/openapi/?x=1"
