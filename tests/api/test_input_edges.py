"""Bad input found by generated requests (docs/bad-input.md): each a clear 4xx, never a 500."""

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
