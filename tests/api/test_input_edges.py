"""Bad input found by generated requests (docs/benchmarks.md, "Bad input"): each a clear 4xx,
never a 500."""

from __future__ import annotations

import pytest

from connector.templates import TemplateFields

from ..helpers import key_header


@pytest.fixture
def template(services, account):
    return services.templates.create(account.id, TemplateFields(name="A", body="<p>{{ a }}</p>"))


@pytest.mark.parametrize("html", ["é", "\u0663", "🙂"])
def test_non_ascii_base64_html_is_a_400(client, standard_key, html) -> None:
    response = client.post(
        "/render/pdf/fromhtml",
        json={"base64HtmlString": html},
        headers=key_header(standard_key.value),
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_base64_html"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[" * 100_000, "Template data is nested too deeply."),
        ('{"a": ' + "9" * 5_000 + "}", "Template data holds a number too long to read."),
    ],
)
def test_template_data_text_too_deep_or_too_long_is_a_400(
    client, standard_key, template, data, message
) -> None:
    zapier = client.post(
        "/zapier/creates/create_file",
        json={"template": template.id, "data": data},
        headers=key_header(standard_key.value, "Zapier"),
    )
    n8n = client.post(
        "/n8n/documents",
        json={"template_id": template.id, "data": data},
        headers=key_header(standard_key.value, "n8n"),
    )

    assert zapier.status_code == n8n.status_code == 400
    assert zapier.json["error"]["message"].startswith(message)
    assert n8n.json["message"].startswith(message)


def test_an_oversized_form_is_a_413_when_signed_out(client) -> None:
    response = client.post(
        "/signin",
        data=b"email=" + b"a" * 1_200_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status_code == 413
    assert "The request body is 1200006 bytes" in response.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('{"name": "T", "body": "x"}'.encode("utf-16"), "The body is UTF-16 text"),
        ('{"name": "T", "body": "x"}'.encode("utf-16-le"), "The body is UTF-16-LE text"),
        ('{"name": "T", "body": "x"}'.encode("utf-32"), "The body is UTF-32 text"),
        ('{"name": "Café", "body": "x"}'.encode("latin-1"), "The body is not valid UTF-8 (byte 13"),
        (
            b'{"name": "T", "body": "a\xed\xa0\x80b"}',
            "The body is not valid UTF-8 (byte 24 is 0xed)",
        ),
    ],
    ids=["UTF-16", "UTF-16 without BOM", "UTF-32", "Latin-1", "a lone surrogate as CESU-8"],
)
def test_json_that_is_not_utf8_is_a_400_that_says_so(client, standard_key, body, message) -> None:
    before = client.get("/v1/templates", headers=key_header(standard_key.value)).json

    response = client.post(
        "/v1/templates",
        data=body,
        headers={**key_header(standard_key.value), "Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_encoding"
    assert response.json["error"]["message"].startswith(message)
    assert "send JSON encoded as UTF-8" in response.json["error"]["message"]
    assert client.get("/v1/templates", headers=key_header(standard_key.value)).json == before


def test_json_with_a_byte_order_mark_is_read(client, standard_key) -> None:
    response = client.post(
        "/v1/templates",
        data='{"name": "With a BOM", "body": "x"}'.encode("utf-8-sig"),
        headers={**key_header(standard_key.value), "Content-Type": "application/json"},
    )

    assert response.status_code == 201
    assert response.json["name"] == "With a BOM"
