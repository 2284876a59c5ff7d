"""What a live server does with connections and with HTTP that breaks the rules: an idle
kept-alive connection stays open for BRIDGE_KEEPALIVE_SECONDS, a pooled connection survives an
early 413, and malformed headers get an answer (CHANGELOG, bad input)."""

from __future__ import annotations

import http.client
import socket
import time
from urllib.parse import urlsplit

import pytest
import requests

from ..helpers import key_header

# HTTP and rendering behaviour: the same whatever database is behind the server.
pytestmark = pytest.mark.any_database


def test_a_pooled_connection_survives_a_413(start_server, standard_key) -> None:
    server = start_server()
    session = requests.Session()
    headers = key_header(standard_key.value)

    too_large = session.post(server.url + "/v1/templates", data=b"x" * 1_000_001, headers=headers)
    after = session.get(server.url + "/v1/me", headers=headers)

    assert too_large.status_code == 413
    assert after.status_code == 200


def test_malformed_http_still_gets_an_answer(start_server) -> None:
    server = start_server()
    address = urlsplit(server.url)
    request = b"GET /v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n"

    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        answer = connection.recv(65_536)

    assert answer.startswith(b"HTTP/1.1 400")


def _connection(url: str) -> http.client.HTTPConnection:
    address = urlsplit(url)
    return http.client.HTTPConnection(address.hostname, address.port, timeout=10)


def _get(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    return response.status


def test_a_kept_alive_connection_is_reused_after_a_pause(start_server) -> None:
    # A client sends on its idle connection whenever it likes: Zapier does not retry a POST
    # that met a connection the server had just closed ("socket hang up").
    connection = _connection(start_server().url)

    first = _get(connection)
    port = connection.sock.getsockname()[1]
    time.sleep(10)
    second = _get(connection)

    assert (first, second) == (200, 200)
    assert connection.sock.getsockname()[1] == port  # the same connection, not a new one


def test_idle_connections_close_after_bridge_keepalive_seconds(start_server, server_env) -> None:
    server_env["BRIDGE_KEEPALIVE_SECONDS"] = "1"
    connection = _connection(start_server().url)

    assert _get(connection) == 200
    time.sleep(4)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        _get(connection)
