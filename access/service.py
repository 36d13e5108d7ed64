"""Rules for API keys and the audit trail. Services never commit: the caller owns the transaction."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import psycopg

from access import repository
from access.schemas import ApiKey, ApiKeyCreate, ApiKeyCreated, Principal, Role
from infra.errors import NotFound, Unauthorized

KEY_PREFIX = "ldl_"


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; only the hash is stored.
    return hashlib.sha256(key.encode()).hexdigest()


def record(
    conn: psycopg.Connection,
    actor: Principal,
    action: str,
    entity: str,
    entity_id: object = None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Append one row to the audit log, in the caller's transaction."""
    repository.append_audit(
        conn,
        actor=actor.actor,
        actor_role=actor.role.value,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        before=before,
        after=after,
    )


def create_key(conn: psycopg.Connection, actor: Principal, request: ApiKeyCreate) -> ApiKeyCreated:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    stored = repository.insert_key(
        conn,
        name=request.name,
        role=request.role.value,
        company_id=request.company_id,
        prefix=secret[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(secret),
    )
    record(
        conn, actor, "api_key.create", "api_key", stored.id, after=stored.model_dump(mode="json")
    )
    return ApiKeyCreated(**stored.model_dump(), key=secret)


def revoke_key(conn: psycopg.Connection, actor: Principal, key_id: int) -> ApiKey:
    revoked = repository.revoke_key(conn, key_id)
    if revoked is None:
        raise NotFound("API key %(key)s does not exist", {"key": key_id})
    record(conn, actor, "api_key.revoke", "api_key", key_id, after=revoked.model_dump(mode="json"))
    return revoked


def require_token(token: str | None) -> str:
    if not token:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    return token


def authenticate(conn: psycopg.Connection, token: str | None) -> Principal:
    token = require_token(token)
    key = repository.active_key_by_hash(conn, hash_key(token))
    if key is None:
        raise Unauthorized("the API key is unknown or revoked")
    return Principal(name=key.name, role=Role(key.role), company_id=key.company_id, key_id=key.id)
