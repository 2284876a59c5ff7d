"""What `templateto-bridge serve` tells its users: the links it makes start with the address it
serves unless BRIDGE_PUBLIC_URL says otherwise, and its log names that address."""

from __future__ import annotations

import json

import pytest
import requests

from connector.templates import TemplateFields

from ..helpers import key_header

# HTTP and rendering behaviour: the same whatever database is behind the server.
pytestmark = pytest.mark.any_database


def _document(server, key: str, template_id: str) -> dict:
    return requests.post(
        server.url + "/v1/documents",
        json={"template_id": template_id, "format": "txt"},
        headers=key_header(key),
        timeout=30,
    ).json()


def test_links_start_with_the_address_served_without_bridge_public_url(
    start_server, services, account, standard_key
) -> None:
    template = services.templates.create(account.id, TemplateFields(name="Hi", body="Hi"))
    server = start_server()

    document = _document(server, standard_key.value, template.id)

    assert document["file_url"].startswith(server.url + "/files/")
    assert requests.get(document["file_url"], timeout=10).text.strip() == "Hi"


def test_bridge_public_url_wins_over_the_address_served(
    start_server, services, account, standard_key
) -> None:
    template = services.templates.create(account.id, TemplateFields(name="Hi", body="Hi"))
    server = start_server(BRIDGE_PUBLIC_URL="https://bridge.example.com")

    document = _document(server, standard_key.value, template.id)

    assert document["file_url"].startswith("https://bridge.example.com/files/")


def test_the_log_says_where_it_listens(start_server) -> None:
    server = start_server(workers=2)

    lines = [json.loads(line) for line in server.log().splitlines()]

    listening = [line["message"] for line in lines if line["message"].startswith("Listening")]
    assert listening == [f"Listening at: {server.url} ({server.process.pid})"]
