"""The HTTP face of keys and the audit log: coordinators only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import AwareDatetime

from access import repository, service
from access.deps import Coordinator
from access.schemas import ApiKey, ApiKeyCreate, ApiKeyCreated, AuditEntry
from infra.http import Conn, Page, Paging
from infra.types import Id, Text

router = APIRouter(tags=["access"])


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_api_key(body: ApiKeyCreate, conn: Conn, who: Coordinator) -> ApiKeyCreated:
    return service.create_key(conn, who, body)


@router.get("/api-keys", response_model=list[ApiKey])
def list_api_keys(conn: Conn, who: Coordinator) -> list[ApiKey]:
    return repository.list_keys(conn)


@router.delete("/api-keys/{key_id}", response_model=ApiKey)
def revoke_api_key(key_id: Annotated[Id, Path()], conn: Conn, who: Coordinator) -> ApiKey:
    return service.revoke_key(conn, who, key_id)


@router.get("/audit", response_model=Page[AuditEntry])
def read_audit_log(
    conn: Conn,
    who: Coordinator,
    paging: Paging,
    entity: Annotated[Text | None, Query(examples=["consent"])] = None,
    entity_id: Annotated[Text | None, Query()] = None,
    action: Annotated[Text | None, Query(examples=["consent.withdraw"])] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Page[AuditEntry]:
    rows, total = repository.list_audit(
        conn,
        entity=entity,
        entity_id=entity_id,
        action=action,
        since=since,
        until=until,
        limit=paging.limit,
        offset=paging.offset,
    )
    return Page(items=rows, total=total, limit=paging.limit, offset=paging.offset)
