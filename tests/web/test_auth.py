"""Signing in: argon2 passwords, server-side sessions, CSRF on every form, throttling, logout."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg

from tests.web.conftest import Person, form_token, sign_in


def test_a_person_signs_in_sees_the_app_and_signs_out(
    web_client: Callable[[], httpx.Client], coordinator: Person, db_url: str
) -> None:
    client = web_client()
    assert client.get("/app/").status_code == 303  # not signed in: to the sign-in page
    response = sign_in(client, coordinator)
    assert response.status_code == 303 and response.headers["location"] == "/app/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/app" in cookie
    home = client.get("/app/")
    assert home.status_code == 200 and coordinator.email in home.text
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT password_hash FROM user_accounts").fetchone()[0]
        assert stored.startswith("$argon2id$") and coordinator.password not in stored
        assert conn.execute("SELECT count(*) FROM web_sessions").fetchone()[0] == 1
    out = client.post("/app/logout", data={"csrf_token": form_token(home.text)})
    assert out.status_code == 303
    assert client.get("/app/").status_code == 303
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM web_sessions").fetchone()[0] == 0


def test_a_form_without_the_sessions_csrf_token_is_refused(
    web_client: Callable[[], httpx.Client], coordinator: Person, db_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    refused = client.post("/app/companies", data={"name": "Forged A/S", "csrf_token": "guess"})
    assert refused.status_code == 403
    missing = client.post("/app/companies", data={"name": "Forged A/S"})
    assert missing.status_code == 403
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM companies").fetchone()[0] == 0
    page = client.get("/app/companies")
    made = client.post(
        "/app/companies", data={"name": "Real A/S", "csrf_token": form_token(page.text)}
    )
    assert made.status_code == 303


def test_the_csrf_token_is_different_on_every_page_and_the_stored_one_is_never_sent(
    web_client: Callable[[], httpx.Client], coordinator: Person, db_url: str
) -> None:
    """Pages are compressed: a fixed secret in them could be guessed from their sizes (BREACH)."""
    client = web_client()
    sign_in(client, coordinator)
    first, second = (form_token(client.get("/app/companies").text) for _ in range(2))
    assert first != second
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("SELECT csrf_token FROM web_sessions").fetchone()[0]
    page = client.get("/app/companies").text
    assert stored not in page
    refused = client.post("/app/companies", data={"name": "Raw A/S", "csrf_token": stored})
    assert refused.status_code == 403  # only a masked token from a page is taken
    for token in (first, second):  # both unmask to the session's token
        made = client.post("/app/companies", data={"name": f"A/S {token[:4]}", "csrf_token": token})
        assert made.status_code == 303


def test_the_sign_in_form_itself_needs_its_token(
    web_client: Callable[[], httpx.Client], coordinator: Person
) -> None:
    client = web_client()
    response = client.post(
        "/app/login", data={"email": coordinator.email, "password": coordinator.password}
    )
    assert response.status_code == 403 and "ldl_session" not in response.headers.get(
        "set-cookie", ""
    )


def test_repeated_wrong_passwords_are_throttled_even_for_the_right_one(
    web_client: Callable[[], httpx.Client], coordinator: Person
) -> None:
    client = web_client()
    for _ in range(5):
        assert sign_in(client, coordinator, password="wrong password!").status_code == 401
    blocked = sign_in(client, coordinator)
    assert blocked.status_code == 429
    assert "15" in blocked.text


def test_an_unknown_email_and_a_wrong_password_get_the_same_answer(
    web_client: Callable[[], httpx.Client], coordinator: Person
) -> None:
    client = web_client()
    unknown = sign_in(client, Person("nobody@kolding.dk", coordinator.role))
    wrong = sign_in(client, coordinator, password="not the password")
    assert unknown.status_code == wrong.status_code == 401


def test_a_session_cookie_is_useless_after_sign_out(
    web_client: Callable[[], httpx.Client], coordinator: Person
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    token = client.cookies.get("ldl_session")
    home = client.get("/app/")
    client.post("/app/logout", data={"csrf_token": form_token(home.text)})
    replay = web_client()
    replay.cookies.set("ldl_session", token or "", path="/app")
    assert replay.get("/app/").status_code == 303


def test_sign_in_returns_to_the_page_asked_for_and_never_to_another_site(
    web_client: Callable[[], httpx.Client], coordinator: Person
) -> None:
    client = web_client()
    asked = client.get("/app/sites?x=1")
    assert (
        asked.status_code == 303
        and asked.headers["location"] == "/app/login?next=/app/sites%3Fx%3D1"
    )
    page = client.get(asked.headers["location"])
    assert 'name="next" value="/app/sites?x=1"' in page.text
    for target, landing in (
        ("/app/sites?x=1", "/app/sites?x=1"),
        ("https://evil.example/", "/app/"),
    ):
        other = web_client()
        login = other.get("/app/login")
        response = other.post(
            "/app/login",
            data={
                "email": coordinator.email,
                "password": coordinator.password,
                "csrf_token": form_token(login.text),
                "next": target,
            },
        )
        assert response.headers["location"] == landing
