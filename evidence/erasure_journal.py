"""The erasure journal: consent withdrawals written down outside the database.

A restore from backup rewinds the database, and with it every withdrawal made after the restore
point: an erased participant's data would come back, and their devices would be collected again.
So each withdrawal (erase, or keep, which still deletes what is stamped after it) appends one JSON
line to `LDL_ERASURE_JOURNAL` (a file next to the backups, not on the database's disk) and fsyncs
it in the withdrawal's own transaction, before the commit: nothing is acknowledged that the
journal does not hold. A commit that fails after the append leaves a line for a withdrawal that did
not happen; re-applying it errs on the side of the participant, who asked for it.
`evidence.erase.reapply_erasures` reads it back after a restore (`ldl erasures reapply`, and
`ldl migrate`).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from infra.errors import ConfigError, LdlError
from trials.schemas import WithdrawalMode

log = logging.getLogger(__name__)
SETTING = "LDL_ERASURE_JOURNAL"


class JournalUnavailable(LdlError):
    """The journal cannot be written: the withdrawal is refused (its transaction rolls back)."""

    status_code = 503
    error = "erasure_journal_unavailable"


class JournalEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    participant_id: int
    at: AwareDatetime
    mode: WithdrawalMode
    recorded_at: AwareDatetime
    actor: str


def new_entry(participant_id: int, at: datetime, mode: WithdrawalMode, actor: str) -> JournalEntry:
    return JournalEntry(
        id=uuid.uuid4().hex,
        participant_id=participant_id,
        at=at,
        mode=mode,
        recorded_at=datetime.now(UTC),
        actor=actor,
    )


def append(journal: Path, entry: JournalEntry) -> None:
    """Append one line and fsync it (and the directory when the file is new)."""
    line = (entry.model_dump_json() + "\n").encode()
    try:
        created = not journal.exists()
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_directory(journal.parent)
    except OSError as exc:
        raise JournalUnavailable(
            "The erasure journal (LDL_ERASURE_JOURNAL) cannot be written, so nothing was"
            " withdrawn: %(path)s: %(reason)s",
            {"path": str(journal), "reason": exc.strerror or str(exc)},
        ) from None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_entries(journal: Path) -> list[JournalEntry]:
    """Every entry, oldest first. A torn last line (a crash mid-append, so never acknowledged) is
    skipped with a warning; a bad line before it is an error naming the line."""
    check_usable(journal)
    lines = journal.read_bytes().split(b"\n")
    entries: list[JournalEntry] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            entries.append(JournalEntry.model_validate(json.loads(raw)))
        except (ValueError, ValidationError) as exc:
            if number == len(lines):  # no newline after it: the append never completed
                log.warning("%s: skipping the torn last line of %s", SETTING, journal)
                continue
            reason = str(exc).splitlines()[0]
            raise ConfigError(
                f"{SETTING}: {journal} line {number} is not an entry: {reason}"
            ) from None
    return entries


def check_usable(journal: Path, *, create: bool = False) -> None:
    """One line naming the setting when the journal cannot be appended to (or is missing and may
    not be created: after a restore it must be the one from next to the backups)."""
    if journal.is_dir():
        raise ConfigError(f"{SETTING}: {journal} is a directory; name a file in it")
    if not journal.exists():
        if not create:
            raise ConfigError(
                f"{SETTING}: {journal} does not exist; after a restore, put back the journal kept"
                " next to the backups (an empty file only if no participant ever withdrew)"
            )
        if not journal.parent.is_dir():
            raise ConfigError(f"{SETTING}: the directory {journal.parent} does not exist")
    try:
        fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.close(fd)
    except OSError as exc:
        raise ConfigError(f"{SETTING}: cannot write {journal}: {exc.strerror or exc}") from None
