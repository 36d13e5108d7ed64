"""The HTTP face of this domain: thin handlers that parse, authorise, call the service, return."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from access.deps import AnyRole, Coordinator
from infra.http import Conn, Page, Paging
from infra.types import Id
from ingest import repository, service
from ingest.messages import DeadLetterReason
from ingest.schemas import DataCompleteness, DeadLetterOut

router = APIRouter(tags=["ingest"])


@router.get("/trials/{trial_id}/data-completeness", response_model=DataCompleteness)
def trial_data_completeness(
    trial_id: Annotated[Id, Path()], conn: Conn, who: AnyRole
) -> DataCompleteness:
    """Sequence gaps, dead letters and consent drops of a trial's devices: missing data, as
    opposed to no activity. Companies see their own trials only."""
    return service.data_completeness(conn, who, trial_id)


@router.get("/dead-letters", response_model=Page[DeadLetterOut])
def list_dead_letters(
    conn: Conn,
    who: Coordinator,
    paging: Paging,
    reason: Annotated[DeadLetterReason | None, Query(examples=["schema_violation"])] = None,
) -> Page[DeadLetterOut]:
    """Messages the worker could not store, newest first, with the reason and an excerpt."""
    items, total = repository.list_dead_letters(
        conn, reason=reason.value if reason else None, limit=paging.limit, offset=paging.offset
    )
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)
