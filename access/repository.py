"""All SQL for API keys and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from access.schemas import ApiKey, AuditEntry
from infra.errors import Invalid

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
        raise Invalid(f"company {company_id} does not exist") from None
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
