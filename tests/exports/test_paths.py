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

# A template literal's ${...} or an expression's encodeURIComponent(...) stand for an ID.
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}|\\\" \+ encodeURIComponent\(\$parameter\.id\) \+ \\\"")


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
    # The node's routing ("method": "GET", "url": "/templates"), the credential test's request,
    # and the trigger's api(this, 'DELETE', `/hooks/${...}`); all under {baseUrl}/n8n.
    routed = calls(
        tmp_path,
        r'"method": "(?P<method>[A-Z]+)",\s*"url": "(?:=\{\{\\")?'
        r'(?P<path>/[^"\\]*(?:\\" \+ encodeURIComponent\(\$parameter\.id\) \+ \\"[^"\\]*)?)',
    )
    tested = calls(tmp_path, r'"url": "(?P<path>/me)",\s*"method": "(?P<method>GET)"')
    triggered = calls(tmp_path, r"api\(this, '(?P<method>[A-Z]+)', [`'](?P<path>/[^`']*)[`']")
    found = {(method, f"/n8n{path}") for method, path in routed | tested | triggered}

    assert len(found) >= 9  # 6 node operations, the dropdown, the test, 3 hook calls
    assert_routes(app, found)
