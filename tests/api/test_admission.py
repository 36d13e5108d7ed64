"""A key before the body: an anonymous write is refused before its body is read; bodies are capped."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from access.schemas import Role
from tests.trials.lab import bearer, make_key

TEN_MB = 10 * 1024 * 1024


def _raw_request(api_url: str, head: str, body_part: bytes) -> bytes:
    """Send a request's head and only the start of its body; return what the server answers."""
    url = urlsplit(api_url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(head.encode() + b"\r\n" + body_part)  # the other 10 MB never come
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:  # the server answered and keeps the connection: that is enough
            pass
    return answer


@pytest.mark.parametrize("authorization", ["", "Authorization: Bearer ldl_not-a-key\r\n"])
def test_an_anonymous_write_is_a_401_before_its_body_is_read(
    api_url: str, authorization: str
) -> None:
    head = (
        "POST /devices HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"{authorization}Content-Length: {TEN_MB}\r\nConnection: close\r\n"
    )
    answer = _raw_request(api_url, head, b"{not json")
    status_line, _, rest = answer.partition(b"\r\n")
    assert b" 401 " in status_line, answer[:500]
    assert b'"error":"unauthorized"' in rest


def test_a_malformed_body_without_a_key_is_a_401_not_a_422(http: httpx.Client) -> None:
    response = http.post(
        "/trials", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_body_over_the_cap_is_a_413_declared_or_streamed(
    http: httpx.Client, conn: psycopg.Connection
) -> None:
    auth = {**bearer(make_key(conn, Role.COORDINATOR)), "Content-Type": "application/json"}
    big = b'{"name": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    declared = http.post("/companies", content=big, headers=auth)
    streamed = http.post("/companies", content=iter([big[:1000], big[1000:]]), headers=auth)
    for response in (declared, streamed):
        assert response.status_code == 413, response.text[:300]
        assert response.json()["error"] == "too_large"
    assert http.post("/companies", json={"name": "Small A/S"}, headers=auth).status_code == 201


def test_the_public_routes_need_no_key(http: httpx.Client) -> None:
    for path in ("/", "/health", "/docs", "/openapi.json", "/device-schemas"):
        assert http.get(path).status_code == 200, path
    assert http.get("/devices").status_code == 401
