"""The erase: what was collected about a participant goes, raw telemetry and every rollup built
from it, in the caller's transaction.

The evidence room owns it across both rooms: the registry (trials/) records the withdrawal, and
this module composes the two, so the registry never reaches into telemetry or rollups. Never
commits; the caller owns the transaction. Every withdrawal is also written to the erasure journal
(evidence/erasure_journal.py) before it commits, and re-applied from it after a restore.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from access.schemas import Principal, Role
from access.service import record
from evidence import erasure_journal, repository
from evidence.erasure_journal import JournalEntry
from infra.errors import NotFound
from trials import service as trials
from trials.schemas import WithdrawalMode, WithdrawalRequest, WithdrawalResult


def withdraw_consent(
    conn: psycopg.Connection,
    actor: Principal,
    participant_id: int,
    request: WithdrawalRequest,
    journal: Path | None = None,
) -> WithdrawalResult:
    """Close the active version at `at`, in this transaction delete what is stored stamped at or
    after `at` (an ingest commit may have stored it before the withdrawal was made), and with
    `erase` everything collected. Last, before the caller commits, append it to the erasure
    `journal` (LDL_ERASURE_JOURNAL), so a restore from backup cannot undo it."""
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
    if journal is not None:
        entry = erasure_journal.new_entry(participant_id, request.at, request.mode, actor.actor)
        erasure_journal.append(journal, entry)
    return WithdrawalResult(consent=withdrawn, erased_rows=erased)


JOURNAL_ACTOR = Principal(name="erasure-journal", role=Role.COORDINATOR)


def reapply_erasures(conn: psycopg.Connection, journal: Path) -> list[JournalEntry]:
    """After a restore: withdraw again, with the withdrawal's own code, every journaled withdrawal
    the database does not hold (the participant's consent is still active from before its `at`),
    and audit each as `erasure.reapply`. Idempotent: a second run finds nothing to do."""
    reapplied: list[JournalEntry] = []
    for entry in erasure_journal.read_entries(journal):
        try:
            versions = trials.consent_history(conn, entry.participant_id)
        except NotFound:
            continue  # registered after the restore point: nothing of theirs is stored here
        active = next((v for v in versions if v.valid_until is None), None)
        if active is not None and active.valid_from < entry.at:
            request = WithdrawalRequest(at=entry.at, mode=entry.mode)
            erased = withdraw_consent(
                conn, JOURNAL_ACTOR, entry.participant_id, request
            ).erased_rows
        elif entry.mode == WithdrawalMode.ERASE and all(v.valid_from < entry.at for v in versions):
            # The consent this erase ended is not in the database (restored to before it was
            # given, after an earlier withdrawal): all that is stored came before the erase.
            with conn.transaction() as savepoint:
                erased = erase_participant_data(conn, JOURNAL_ACTOR, entry.participant_id)
                if not any(erased.values()):
                    raise psycopg.Rollback(savepoint)  # the database holds this erase: no audit
            if not any(erased.values()):
                continue
        else:
            continue  # the withdrawal is in the database (or a newer consent followed it)
        record(
            conn,
            JOURNAL_ACTOR,
            "erasure.reapply",
            "participant",
            entry.participant_id,
            after={"journal_entry": entry.model_dump(mode="json"), "erased_rows": erased},
        )
        reapplied.append(entry)
    return reapplied


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
