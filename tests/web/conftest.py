"""People with accounts, and a signed-in HTTP client, for the web app's tests."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from access.accounts import create_user
from access.schemas import Role, UserCreate
from infra.db import connection

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Person:
    email: str
    role: Role
    company_id: int | None = None
    password: str = PASSWORD


def add_person(db_url: str, person: Person) -> Person:
    with connection(db_url) as conn:
        create_user(
            conn,
            UserCreate(
                email=person.email,
                role=person.role,
                company_id=person.company_id,
                password=person.password,
            ),
        )
    return person


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def sign_in(client: httpx.Client, person: Person, password: str | None = None) -> httpx.Response:
    page = client.get("/app/login")
    return client.post(
        "/app/login",
        data={
            "email": person.email,
            "password": password or person.password,
            "csrf_token": form_token(page.text),
            "next": "/app/",
        },
    )


@pytest.fixture
def coordinator(db_url: str) -> Person:
    return add_person(db_url, Person("koordinator@kolding.dk", Role.COORDINATOR))


@pytest.fixture
def web_client(api_url: str) -> Iterator[Callable[[], httpx.Client]]:
    """New HTTP clients with their own cookie jars (one per person)."""
    clients: list[httpx.Client] = []

    def new() -> httpx.Client:
        client = httpx.Client(base_url=api_url, timeout=10)
        clients.append(client)
        return client

    yield new
    for client in clients:
        client.close()
