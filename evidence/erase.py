"""The erase: what was collected about a participant goes, raw telemetry and every rollup built
from it, in the caller's transaction.

The evidence room owns it across both rooms: the registry (trials/) records the withdrawal, and
this module composes the two, so the registry never reaches into telemetry or rollups. Never
commits; the caller owns the transaction.
"""

from __future__ import annotations

import psycopg

from access.schemas import Principal
from access.service import record
from evidence import repository
from trials import service as trials
from trials.schemas import WithdrawalMode, WithdrawalRequest, WithdrawalResult


def withdraw_consent(
    conn: psycopg.Connection, actor: Principal, participant_id: int, request: WithdrawalRequest
) -> WithdrawalResult:
    """Close the active version at `at`, in this transaction delete what is stored stamped at or
    after `at` (an ingest commit may have stored it before the withdrawal was made), and with
    `erase` everything collected."""
    withdrawn = trials.withdraw_consent(conn, actor, participant_id, request)
    if request.mode == WithdrawalMode.ERASE:
        erased = erase_participant_data(conn, actor, participant_id)
    else:
        erased = repository.erase_participant_data(conn, participant_id, since=request.at)
        if any(erased.values()):
            repository.purge_participant_rollups(conn, participant_id, since=request.at)
            record(
                conn,
                actor,
                "participant.erase",
                "participant",
                participant_id,
                after={"erased_rows": erased, "since": request.at.isoformat()},
            )
    return WithdrawalResult(consent=withdrawn, erased_rows=erased)


def erase_participant_data(
    conn: psycopg.Connection, actor: Principal, participant_id: int
) -> dict[str, int]:
    """Delete everything stored about the participant, and write down how much went."""
    erased = repository.erase_participant_data(conn, participant_id)
    # The rollups were computed from those rows: they go in the same transaction.
    repository.purge_participant_rollups(conn, participant_id)
    record(
        conn,
        actor,
        "participant.erase",
        "participant",
        participant_id,
        after={"erased_rows": erased},
    )
    return erased
