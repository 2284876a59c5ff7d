"""Upstream mode: HTML to PDF by a TemplateTo-compatible API, proven against `responses`."""

from __future__ import annotations

import base64
import json

import pytest
import requests
import responses

from connector.app import create_app
from connector.config import load_settings
from connector.errors import (
    ConfigError,
    PdfConversionFailed,
    UpstreamKeyRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from connector.rendering.upstream import UpstreamPdfConverter
from connector.services import EXTENSION
from connector.templates import TemplateFields

from ..helpers import key_header

UPSTREAM = "http://127.0.0.1:9"
ENDPOINT = UPSTREAM + "/render/pdf/fromhtml"
UPSTREAM_KEY = "upstream-secret-key-for-tests"
PDF = b"%PDF-1.4 upstream"


@pytest.fixture
def converter() -> UpstreamPdfConverter:
    return UpstreamPdfConverter(UPSTREAM, UPSTREAM_KEY)


@responses.activate
def test_html_is_sent_base64_with_the_upstream_key(converter) -> None:
    responses.post(ENDPOINT, body=PDF, content_type="application/pdf")

    assert converter.convert("<p>Café</p>") == PDF

    sent = responses.calls[0].request
    assert sent.headers["X-Api-Key"] == UPSTREAM_KEY
    assert base64.b64decode(json.loads(sent.body)["base64HtmlString"]).decode() == "<p>Café</p>"


@responses.activate
def test_5xx_answers_are_retried_a_bounded_number_of_times(converter) -> None:
    responses.post(ENDPOINT, status=503)
    responses.post(ENDPOINT, status=502)
    responses.post(ENDPOINT, body=PDF)

    assert converter.convert("<p>x</p>") == PDF
    assert len(responses.calls) == 3


@responses.activate
def test_an_upstream_that_keeps_failing_is_a_502_after_three_attempts(converter) -> None:
    responses.post(ENDPOINT, status=500)

    with pytest.raises(UpstreamUnavailable) as failed:
        converter.convert("<p>x</p>")

    assert failed.value.status == 502
    assert len(responses.calls) == 3


@responses.activate
def test_4xx_answers_are_not_retried(converter) -> None:
    responses.post(ENDPOINT, status=401, json={"message": "bad key"})

    with pytest.raises(UpstreamKeyRefused) as refused:
        converter.convert("<p>x</p>")

    assert refused.value.status == 502
    assert "BRIDGE_RENDER_UPSTREAM_KEY" in refused.value.message
    assert UPSTREAM_KEY not in refused.value.message
    assert len(responses.calls) == 1


@responses.activate
def test_an_upstream_refusal_of_the_html_is_our_422_with_its_reason(converter) -> None:
    responses.post(ENDPOINT, status=422, json={"error": {"message": "unclosed <table>"}})

    with pytest.raises(PdfConversionFailed) as refused:
        converter.convert("<table>")

    assert refused.value.status == 422
    assert "unclosed <table>" in refused.value.message


@responses.activate
def test_connection_failures_and_timeouts(converter) -> None:
    responses.post(ENDPOINT, body=requests.ConnectionError("refused"))
    with pytest.raises(UpstreamUnavailable):
        converter.convert("<p>x</p>")

    responses.replace(responses.POST, ENDPOINT, body=requests.ReadTimeout("slow"))
    with pytest.raises(UpstreamTimeout) as slow:
        converter.convert("<p>x</p>")
    assert slow.value.status == 504


@responses.activate
def test_an_upstream_401_reaches_the_user_as_a_502_not_their_401(
    tmp_path, database_url, clock, account
) -> None:
    responses.post(ENDPOINT, status=401)
    app = create_app(
        load_settings(
            data_dir=tmp_path / "upstream",
            database_url=database_url,
            render_upstream_url=UPSTREAM,
            render_upstream_key=UPSTREAM_KEY,
        ),
        clock=clock,
    )
    services = app.extensions[EXTENSION]
    key = services.keys.create(account.id, "Zapier")
    template = services.templates.create(
        account.id, TemplateFields(name="T", body="<p>{{ a }}</p>")
    )

    pdf = app.test_client().post(
        f"/render/pdf/{template.id}", json={}, headers=key_header(key.value)
    )
    txt = app.test_client().post(
        f"/render/txt/{template.id}", json={"a": 1}, headers=key_header(key.value)
    )
    services.close()

    assert pdf.status_code == 502
    assert pdf.json["error"]["code"] == "upstream_key_refused"
    assert UPSTREAM_KEY not in pdf.get_data(as_text=True)
    assert txt.status_code == 200 and txt.get_data(as_text=True) == "1\n"


def test_upstream_url_and_key_go_together(tmp_path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(data_dir=tmp_path, render_upstream_url=UPSTREAM)

    assert "BRIDGE_RENDER_UPSTREAM_KEY" in str(refused.value)


@responses.activate
@pytest.mark.parametrize(
    ("status", "code"), [(429, "upstream_unavailable"), (404, "upstream_error")]
)
def test_rate_limits_and_wrong_addresses_are_the_operators_problem(converter, status, code):
    responses.post(ENDPOINT, status=status)

    with pytest.raises(Exception) as failed:
        converter.convert("<p>x</p>")

    assert failed.value.status == 502 and failed.value.code == code
