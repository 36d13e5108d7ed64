"""All SQL for API keys and the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from access.schemas import ApiKey, AuditEntry, StoredUser, UserAccount
from infra.errors import Conflict, Invalid

KEY_COLUMNS = "id, name, role, company_id, key_prefix, created_at, revoked_at"


def insert_key(
    conn: psycopg.Connection,
    *,
    name: str,
    role: str,
    company_id: int | None,
    prefix: str,
    key_hash: str,
) -> ApiKey:
    try:
        with conn.cursor(row_factory=class_row(ApiKey)) as cur:
            cur.execute(
                f"INSERT INTO api_keys (name, role, company_id, key_prefix, key_hash)"
                f" VALUES (%(name)s, %(role)s, %(company_id)s, %(prefix)s, %(hash)s)"
                f" RETURNING {KEY_COLUMNS}",
                {
                    "name": name,
                    "role": role,
                    "company_id": company_id,
                    "prefix": prefix,
                    "hash": key_hash,
                },
            )
            row = cur.fetchone()
    except psycopg.errors.ForeignKeyViolation:
        raise Invalid("company %(company)s does not exist", {"company": company_id}) from None
    assert row is not None
    return row


def active_key_by_hash(conn: psycopg.Connection, key_hash: str) -> ApiKey | None:
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        cur.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (key_hash,),
        )
        return cur.fetchone()


def revoke_key(conn: psycopg.Connection, key_id: int) -> ApiKey | None:
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        cur.execute(
            f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s"
            f" RETURNING {KEY_COLUMNS}",
            (key_id,),
        )
        return cur.fetchone()


def list_keys(conn: psycopg.Connection) -> list[ApiKey]:
    with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        cur.execute(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id")
        return cur.fetchall()


def append_audit(
    conn: psycopg.Connection,
    *,
    actor: str,
    actor_role: str,
    action: str,
    entity: str,
    entity_id: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    conn.execute(
        "INSERT INTO audit_log (actor, actor_role, action, entity, entity_id, before, after)"
        " VALUES (%(actor)s, %(role)s, %(action)s, %(entity)s, %(entity_id)s, %(before)s,"
        " %(after)s)",
        {
            "actor": actor,
            "role": actor_role,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "before": None if before is None else Jsonb(before),
            "after": None if after is None else Jsonb(after),
        },
    )


def list_audit(
    conn: psycopg.Connection,
    *,
    entity: str | None,
    entity_id: str | None,
    action: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEntry], int]:
    where = (
        "(%(entity)s::text IS NULL OR entity = %(entity)s)"
        " AND (%(entity_id)s::text IS NULL OR entity_id = %(entity_id)s)"
        " AND (%(action)s::text IS NULL OR action = %(action)s)"
        " AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)"
        " AND (%(until)s::timestamptz IS NULL OR at < %(until)s)"
    )
    params = {
        "entity": entity,
        "entity_id": entity_id,
        "action": action,
        "since": since,
        "until": until,
        "limit": limit,
        "offset": offset,
    }
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        cur.execute(
            f"SELECT id, at, actor, actor_role, action, entity, entity_id, before, after"
            f" FROM audit_log WHERE {where} ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        rows = cur.fetchall()
    total_row = conn.execute(f"SELECT count(*) FROM audit_log WHERE {where}", params).fetchone()
    return rows, int(total_row[0]) if total_row else 0


# ------------------------------------------------------------------ people's accounts
USER_COLUMNS = "id, email, role, company_id, created_at, disabled_at"


def insert_user(
    conn: psycopg.Connection, *, email: str, role: str, company_id: int | None, password_hash: str
) -> UserAccount:
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(UserAccount)) as cur:
            cur.execute(
                f"INSERT INTO user_accounts (email, role, company_id, password_hash)"
                f" VALUES (%(email)s, %(role)s, %(company_id)s, %(hash)s) RETURNING {USER_COLUMNS}",
                {"email": email, "role": role, "company_id": company_id, "hash": password_hash},
            )
            row = cur.fetchone()
    except psycopg.errors.UniqueViolation:
        raise Conflict("an account for %(email)s exists already", {"email": email}) from None
    except psycopg.errors.ForeignKeyViolation:
        raise Invalid("company %(company)s does not exist", {"company": company_id}) from None
    assert row is not None
    return row


def user_by_email(conn: psycopg.Connection, email: str) -> StoredUser | None:
    with conn.cursor(row_factory=class_row(StoredUser)) as cur:
        cur.execute(
            f"SELECT {USER_COLUMNS}, password_hash FROM user_accounts WHERE email = %s", (email,)
        )
        return cur.fetchone()


def set_password_hash(conn: psycopg.Connection, user_id: int, password_hash: str) -> None:
    conn.execute(
        "UPDATE user_accounts SET password_hash = %s WHERE id = %s", (password_hash, user_id)
    )


def disable_user(conn: psycopg.Connection, user_id: int) -> UserAccount | None:
    with conn.cursor(row_factory=class_row(UserAccount)) as cur:
        cur.execute(
            f"UPDATE user_accounts SET disabled_at = coalesce(disabled_at, now()) WHERE id = %s"
            f" RETURNING {USER_COLUMNS}",
            (user_id,),
        )
        return cur.fetchone()


def list_users(conn: psycopg.Connection) -> list[UserAccount]:
    with conn.cursor(row_factory=class_row(UserAccount)) as cur:
        cur.execute(f"SELECT {USER_COLUMNS} FROM user_accounts ORDER BY id")
        return cur.fetchall()


def insert_session(
    conn: psycopg.Connection, *, token_hash: str, user_id: int, csrf_token: str, lifetime: timedelta
) -> None:
    conn.execute(
        "INSERT INTO web_sessions (token_hash, user_id, csrf_token, expires_at)"
        " VALUES (%s, %s, %s, now() + %s)",
        (token_hash, user_id, csrf_token, lifetime),
    )


# A session's idle expiry slides at most once a minute: sliding it on every request held the
# session's row lock to the end of each request, so one person's tabs (and the htmx refreshes)
# queued behind each other (issue 22).
SLIDE_EVERY = timedelta(minutes=1)


def live_session(
    conn: psycopg.Connection, token_hash: str, lifetime: timedelta
) -> tuple[UserAccount, str] | None:
    """The session's user and CSRF token, sliding its expiry; None when gone, expired or disabled."""
    row = conn.execute(
        "SELECT u.id, u.email, u.role, u.company_id, u.created_at, u.disabled_at, s.csrf_token,"
        "       s.expires_at < now() + %(lifetime)s - %(slide)s"
        " FROM web_sessions s JOIN user_accounts u ON u.id = s.user_id"
        " WHERE s.token_hash = %(hash)s AND s.expires_at > now() AND u.disabled_at IS NULL",
        {"hash": token_hash, "lifetime": lifetime, "slide": SLIDE_EVERY},
    ).fetchone()
    if row is None:
        return None
    if row[7]:
        # Another request of the same session sliding it right now is as good: skip, never wait.
        conn.execute(
            "UPDATE web_sessions SET expires_at = now() + %(lifetime)s"
            " WHERE token_hash = (SELECT token_hash FROM web_sessions WHERE token_hash = %(hash)s"
            "                     FOR UPDATE SKIP LOCKED)",
            {"hash": token_hash, "lifetime": lifetime},
        )
    names = ("id", "email", "role", "company_id", "created_at", "disabled_at")
    return UserAccount(**dict(zip(names, row[:6], strict=True))), row[6]


def delete_session(conn: psycopg.Connection, token_hash: str) -> None:
    conn.execute("DELETE FROM web_sessions WHERE token_hash = %s", (token_hash,))


def delete_sessions_of(conn: psycopg.Connection, user_id: int) -> None:
    conn.execute("DELETE FROM web_sessions WHERE user_id = %s", (user_id,))


def delete_expired_sessions(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM web_sessions WHERE expires_at <= now()")


def record_login_failure(conn: psycopg.Connection, email: str, client: str) -> None:
    conn.execute("INSERT INTO login_failures (email, client) VALUES (%s, %s)", (email, client))


def recent_login_failures(
    conn: psycopg.Connection, *, email: str, client: str, window: timedelta
) -> tuple[int, int]:
    """Failures within `window` for this email, and from this client."""
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE email = %(email)s), count(*) FILTER (WHERE client = %(client)s)"
        " FROM login_failures WHERE at > now() - %(window)s"
        "   AND (email = %(email)s OR client = %(client)s)",
        {"email": email, "client": client, "window": window},
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def clear_login_failures(conn: psycopg.Connection, email: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE email = %s", (email,))
