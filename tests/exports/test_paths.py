"""Every address an exported Zapier app or n8n package calls is a route of the service, with
the method it calls it with: found in the files the exports write, not in the tables they are
written from."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from n8n_bridge.export import export as export_n8n
from zapier_bridge.export import export as export_zapier

# A template literal's ${...} or a route's {id} stand for an ID.
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|\{id\}")


def calls(directory: Path, pattern: str) -> set[tuple[str, str]]:
    """(method, path) pairs found by ``pattern`` (named groups method, path) in every .js."""
    found = set()
    for source in directory.rglob("*.js"):
        for match in re.finditer(pattern, source.read_text(), re.S):
            path = _PLACEHOLDER.sub("an-id", match["path"])
            found.add(((match["method"] or "GET").upper(), path))
    return found


def assert_routes(app, calls: set[tuple[str, str]]) -> None:
    adapter = app.url_map.bind("localhost")
    for method, path in sorted(calls):
        try:
            adapter.match(path, method=method)
        except (NotFound, MethodNotAllowed):
            pytest.fail(f"{method} {path} is called by an export but is no route")


def test_every_call_of_the_zapier_app_is_a_route(app, tmp_path: Path) -> None:
    export_zapier(tmp_path, "https://bridge.example.com")
    # z.request({ url: url('/zapier/...'), method: 'POST', ... })
    found = calls(
        tmp_path,
        r"url: url\([`'](?P<path>/zapier/[^`']*)[`']\)(?:,\s*(?:params: [^\n]*\n\s*)?"
        r"method: '(?P<method>[A-Z]+)')?",
    )

    assert len(found) >= 9  # the auth test, 4 triggers, a create, 2 searches, hooks
    assert_routes(app, found)


def test_every_call_of_the_n8n_package_is_a_route(app, tmp_path: Path) -> None:
    export_n8n(tmp_path, "https://bridge.example.com")
    # The node's table ("method": "GET", "path": "/templates/{id}"), the template list's and
    # the credential test's requests, the trigger's api(this, 'DELETE', `/hooks/${...}`); all
    # under {baseUrl}/n8n.
    operations = calls(tmp_path, r'"method": "(?P<method>[A-Z]+)",\s*"path": "(?P<path>/[^"]*)"')
    searched = calls(tmp_path, r"method: '(?P<method>[A-Z]+)', path: '(?P<path>/[^']*)'")
    tested = calls(
        tmp_path, r"method: '(?P<method>GET)',\s*uri: `\$\{serviceUrl\(baseUrl\)\}(?P<path>/[^`]*)`"
    )
    triggered = calls(tmp_path, r"api\(this, '(?P<method>[A-Z]+)', [`'](?P<path>/[^`']*)[`']")
    found = {(method, f"/n8n{path}") for method, path in operations | searched | tested | triggered}

    assert searched and tested
    assert len(found) == 10  # 6 node operations (one is the template list's), the test, 3 hooks
    assert_routes(app, found)
