"""Templates over HTTP: saved only when they parse, listed newest first in pages, per account."""

from __future__ import annotations

from ..helpers import key_header

INVOICE = """<html><body>
<h1>Invoice {{ invoice.number }}</h1>
<p>For {{ customer.name }}</p>
{% for line in lines %}<p>{{ line.description }}: {{ line.amount }}</p>{% endfor %}
</body></html>"""


def create(client, key, **fields) -> dict:
    body = {"name": "Invoice", "body": INVOICE} | fields
    response = client.post("/v1/templates", json=body, headers=key_header(key.value))
    assert response.status_code == 201, response.json
    return response.json


def test_create_get_and_variables(client, standard_key) -> None:
    created = create(client, standard_key, name="  Invoice  ")

    fetched = client.get(f"/v1/templates/{created['id']}", headers=key_header(standard_key.value))

    assert created["id"].startswith("tpl_")
    assert fetched.status_code == 200
    assert fetched.json["name"] == "Invoice"
    assert fetched.json["body"] == INVOICE
    assert fetched.json["variables"] == ["customer", "invoice", "lines"]


def test_a_template_that_does_not_parse_is_refused_with_line_and_column(client, standard_key):
    body = "<p>Hello</p>\n<p>{% if customer %}{{ customer.name }}</p>"

    response = client.post(
        "/v1/templates",
        json={"name": "Broken", "body": body},
        headers=key_header(standard_key.value),
    )

    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "template_syntax_error"
    assert error["details"]["line"] == 2
    assert "line 2, column" in error["message"]
    listed = client.get("/v1/templates", headers=key_header(standard_key.value)).json
    assert listed["data"] == []


def test_replace_and_delete(client, clock, standard_key) -> None:
    created = create(client, standard_key)
    headers = key_header(standard_key.value)
    clock.advance(minutes=5)

    replaced = client.put(
        f"/v1/templates/{created['id']}",
        json={"name": "Letter", "body": "<p>Dear {{ name }}</p>", "text_body": "Dear {{ name }}"},
        headers=headers,
    )
    bad = client.put(
        f"/v1/templates/{created['id']}", json={"name": "x", "body": "{{ oops"}, headers=headers
    )

    assert replaced.status_code == 200
    assert replaced.json["name"] == "Letter" and replaced.json["variables"] == ["name"]
    assert replaced.json["updated_at"] == "2026-11-20T10:08:00Z"
    assert replaced.json["created_at"] == "2026-11-20T10:03:00Z"
    assert bad.status_code == 422
    assert client.get(f"/v1/templates/{created['id']}", headers=headers).json["name"] == "Letter"
    assert client.delete(f"/v1/templates/{created['id']}", headers=headers).status_code == 204
    gone = client.get(f"/v1/templates/{created['id']}", headers=headers)
    assert gone.status_code == 404 and gone.json["error"]["code"] == "template_not_found"


def test_list_is_newest_first_in_pages(client, clock, standard_key) -> None:
    ids = []
    for number in range(5):
        ids.append(create(client, standard_key, name=f"T{number}")["id"])
        clock.advance(seconds=1)
    headers = key_header(standard_key.value)

    first = client.get("/v1/templates?limit=2", headers=headers).json
    second = client.get(
        f"/v1/templates?limit=2&cursor={first['next_cursor']}", headers=headers
    ).json
    third = client.get(
        f"/v1/templates?limit=2&cursor={second['next_cursor']}", headers=headers
    ).json

    seen = [t["id"] for page in (first, second, third) for t in page["data"]]
    assert seen == list(reversed(ids))
    assert third["next_cursor"] is None
    assert "body" not in first["data"][0]


def test_a_bad_cursor_is_a_400(client, standard_key) -> None:
    response = client.get("/v1/templates?cursor=nonsense", headers=key_header(standard_key.value))

    assert response.status_code == 400
    assert response.json["error"]["code"] == "invalid_cursor"


def test_templates_of_another_account_are_not_found(client, services, standard_key) -> None:
    other = services.accounts.create("Globex")
    their_key = services.keys.create(other.id, "Theirs")
    theirs = create(client, their_key)
    headers = key_header(standard_key.value)

    assert client.get(f"/v1/templates/{theirs['id']}", headers=headers).status_code == 404
    assert client.delete(f"/v1/templates/{theirs['id']}", headers=headers).status_code == 404
    assert client.post(f"/render/pdf/{theirs['id']}", json={}, headers=headers).status_code == 404
    assert client.get("/v1/templates", headers=headers).json["data"] == []


def test_characters_outside_the_basic_plane_are_kept(client, standard_key) -> None:
    created = create(client, standard_key, name="Invoice 😀", body="<p>Łódź 😀 {{ x }}</p>")

    assert created["name"] == "Invoice 😀"
    assert "😀" in created["body"]
