"""What a live server does with HTTP that breaks the rules: a pooled connection survives an early
413, and malformed headers get an answer (CHANGELOG, bad input)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import requests

from ..helpers import key_header


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
