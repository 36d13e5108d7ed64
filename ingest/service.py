"""Rules for reading what the worker recorded: who may see a trial's data completeness."""

from __future__ import annotations

import psycopg

from access.schemas import Principal, Role
from infra.errors import NotFound
from ingest import repository
from ingest.schemas import DataCompleteness


def data_completeness(
    conn: psycopg.Connection, principal: Principal, trial_id: int
) -> DataCompleteness:
    company_id = repository.trial_company_id(conn, trial_id)
    if principal.role == Role.COMPANY and principal.company_id != company_id:
        raise NotFound(
            "trial %(trial)s does not exist", {"trial": trial_id}
        )  # another company's trial stays unseen
    gaps = repository.gaps_by_device(conn, trial_id)
    return DataCompleteness(
        trial_id=trial_id,
        missing_messages=sum(device.missing_messages for device in gaps),
        gaps=gaps,
        dead_letters=repository.dead_letter_counts(conn, trial_id),
        consent_drops=repository.consent_drop_counts(conn, trial_id),
    )
