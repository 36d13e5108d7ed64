"""A web session slides its idle expiry without making one person's requests queue up."""

from __future__ import annotations

import psycopg

from access import accounts
from access.schemas import Role, UserCreate
from infra.db import connect

PASSWORD = "correct horse battery"


def _signed_in(conn: psycopg.Connection) -> str:
    accounts.create_user(
        conn, UserCreate(email="k@kolding.dk", role=Role.COORDINATOR, password=PASSWORD)
    )
    token, _ = accounts.sign_in(conn, "k@kolding.dk", PASSWORD, "127.0.0.1")
    conn.commit()
    return token


def _expires_in_hours(conn: psycopg.Connection) -> float:
    row = conn.execute(
        "SELECT extract(epoch FROM expires_at - now()) / 3600 FROM web_sessions"
    ).fetchone()
    assert row is not None
    return float(row[0])


def _age_session(conn: psycopg.Connection, hours_left: float) -> None:
    conn.execute(
        "UPDATE web_sessions SET expires_at = now() + make_interval(secs => %s)",
        (hours_left * 3600,),
    )
    conn.commit()


def test_using_a_session_slides_its_expiry(conn: psycopg.Connection) -> None:
    token = _signed_in(conn)
    _age_session(conn, 2.0)  # six hours idle of eight
    assert accounts.session_for(conn, token) is not None
    conn.commit()
    assert _expires_in_hours(conn) > 7.9


def test_an_expired_session_is_gone(conn: psycopg.Connection) -> None:
    token = _signed_in(conn)
    _age_session(conn, -0.01)
    assert accounts.session_for(conn, token) is None


def test_two_requests_of_one_session_never_wait_for_each_other(
    conn: psycopg.Connection, db_url: str
) -> None:
    token = _signed_in(conn)
    _age_session(conn, 2.0)  # due to slide: the first request takes the row's lock
    with connect(db_url) as first, connect(db_url) as second:
        assert accounts.session_for(first, token) is not None  # its transaction stays open
        second.execute("SET lock_timeout = '200ms'")  # waiting would raise LockNotAvailable
        assert accounts.session_for(second, token) is not None
        second.rollback()
        first.rollback()
