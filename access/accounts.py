"""Rules for people's accounts: passwords (argon2), sessions, CSRF tokens and sign-in throttling.

API keys (access/service.py) stay for machines and scripts; people sign in to the web app with an
email and a password and get a server-side session. Never commits: the caller owns the transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Final

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from access import repository
from access.schemas import OPERATOR, Principal, UserAccount, UserCreate, WebSession
from access.service import record
from infra.errors import LdlError, NotFound, Unauthorized

SESSION_LIFETIME: Final = timedelta(hours=8)  # idle time after which a person signs in again
THROTTLE_WINDOW: Final = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL: Final = 5
MAX_FAILURES_PER_CLIENT: Final = 20

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the email is unknown, so that a miss takes as long as a wrong password.
_DUMMY_HASH: Final = _hasher.hash(secrets.token_urlsafe(16))


class TooManyAttempts(LdlError):
    status_code = 429
    error = "too_many_attempts"


def _token_hash(token: str) -> str:
    # Session tokens carry 256 random bits: a fast hash is enough, and only the hash is stored.
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    conn: psycopg.Connection, request: UserCreate, actor: Principal = OPERATOR
) -> UserAccount:
    user = repository.insert_user(
        conn,
        email=request.email,
        role=request.role.value,
        company_id=request.company_id,
        password_hash=_hasher.hash(request.password),
    )
    record(conn, actor, "user.create", "user", user.id, after=user.model_dump(mode="json"))
    return user


def set_password(conn: psycopg.Connection, email: str, password: str) -> UserAccount:
    """A new password for an existing account; its open sessions end."""
    UserCreate.model_validate({"email": email, "role": "evaluator", "password": password})
    stored = repository.user_by_email(conn, email.strip().lower())
    if stored is None:
        raise NotFound("no account for %(email)s", {"email": email})
    repository.set_password_hash(conn, stored.id, _hasher.hash(password))
    repository.delete_sessions_of(conn, stored.id)
    record(conn, OPERATOR, "user.set_password", "user", stored.id)
    return UserAccount(**stored.model_dump(exclude={"password_hash"}))


def disable_user(conn: psycopg.Connection, actor: Principal, user_id: int) -> UserAccount:
    """The person can no longer sign in; their open sessions end now."""
    user = repository.disable_user(conn, user_id)
    if user is None:
        raise NotFound("user %(user)s does not exist", {"user": user_id})
    repository.delete_sessions_of(conn, user_id)
    record(conn, actor, "user.disable", "user", user_id, after=user.model_dump(mode="json"))
    return user


def check_throttle(conn: psycopg.Connection, email: str, client: str) -> None:
    by_email, by_client = repository.recent_login_failures(
        conn, email=email, client=client, window=THROTTLE_WINDOW
    )
    if by_email >= MAX_FAILURES_PER_EMAIL or by_client >= MAX_FAILURES_PER_CLIENT:
        minutes = int(THROTTLE_WINDOW.total_seconds() // 60)
        raise TooManyAttempts(
            "too many failed sign-ins; try again in %(minutes)s minutes", {"minutes": minutes}
        )


def sign_in(
    conn: psycopg.Connection, email: str, password: str, client: str
) -> tuple[str, UserAccount]:
    """A new session token for a right email and password; failures are counted and throttled.

    The caller must commit even when this raises Unauthorized, so that the failure is counted.
    """
    email = email.strip().lower()
    check_throttle(conn, email, client)
    stored = repository.user_by_email(conn, email)
    try:
        _hasher.verify(stored.password_hash if stored else _DUMMY_HASH, password)
        verified = stored is not None and stored.disabled_at is None
    except (VerificationError, InvalidHashError):
        verified = False
    if not verified or stored is None:
        repository.record_login_failure(conn, email, client)
        raise Unauthorized("the email or the password is wrong")
    if _hasher.check_needs_rehash(stored.password_hash):
        repository.set_password_hash(conn, stored.id, _hasher.hash(password))
    repository.clear_login_failures(conn, email)
    repository.delete_expired_sessions(conn)
    token = secrets.token_urlsafe(32)
    repository.insert_session(
        conn,
        token_hash=_token_hash(token),
        user_id=stored.id,
        csrf_token=secrets.token_urlsafe(32),
        lifetime=SESSION_LIFETIME,
    )
    user = UserAccount(**stored.model_dump(exclude={"password_hash"}))
    record(conn, user.principal(), "user.sign_in", "user", user.id)
    return token, user


def session_for(conn: psycopg.Connection, token: str | None) -> WebSession | None:
    if not token:
        return None
    found = repository.live_session(conn, _token_hash(token), SESSION_LIFETIME)
    return None if found is None else WebSession(user=found[0], csrf_token=found[1])


def sign_out(conn: psycopg.Connection, token: str) -> None:
    repository.delete_session(conn, _token_hash(token))


def mask_csrf(token: str) -> str:
    """The token under a fresh one-time pad, so a page never carries the same secret twice.

    Pages are gzip-compressed and reflect what a request asked for (filters, the sign-in's
    next): with a fixed token in them, an attacker who watches response sizes could guess it
    byte by byte (BREACH). A masked token differs on every page and unmasks to the same one.
    """
    secret = token.encode()
    pad = secrets.token_bytes(len(secret))
    masked = bytes(s ^ p for s, p in zip(secret, pad, strict=True))
    return base64.urlsafe_b64encode(pad + masked).decode()


def _unmask_csrf(sent: str) -> bytes | None:
    try:
        raw = base64.urlsafe_b64decode(sent.encode())
    except ValueError:  # binascii.Error: not base64 at all
        return None
    half = len(raw) // 2
    if not raw or len(raw) % 2:
        return None
    return bytes(p ^ m for p, m in zip(raw[:half], raw[half:], strict=True))


def csrf_matches(expected: str, sent: str | None) -> bool:
    """Whether `sent` (a masked token from a page) unmasks to the session's `expected` one."""
    unmasked = _unmask_csrf(sent) if sent else None
    return (
        bool(expected) and unmasked is not None and hmac.compare_digest(expected.encode(), unmasked)
    )
