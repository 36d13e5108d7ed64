"""CSV exports for the external evaluator.

Rows of a participant appear only while that participant's `evaluation` consent covered the row's
own time (room and unit devices carry no personal data and are included). Participant and device
ids are replaced by HMAC pseudonyms under a random key made for this one export and then thrown
away, so two exports (of the same or another trial) cannot be joined on them. Every export is
written to the audit log.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

import psycopg

from access.schemas import Principal
from access.service import record
from evidence import repository as repo
from evidence.repository import ExportKind
from evidence.service import authorised_trial
from infra.db import allow_long_statements

PSEUDONYMISED = {"participant_id": "participant", "device_id": "device"}
SPOOL_BYTES = 8 * 1024 * 1024


class Pseudonymiser:
    """Keyed pseudonyms, stable within one export only."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._cache: dict[tuple[str, object], str] = {}

    def __call__(self, kind: str, value: object) -> str:
        if value is None:
            return ""
        found = self._cache.get((kind, value))
        if found is None:
            digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
            found = self._cache[(kind, value)] = f"{kind[0]}_{digest[:16]}"
        return found


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return "" if value is None else value


@dataclass
class Export:
    filename: str
    rows: int
    file: IO[bytes]

    def chunks(self, size: int = 64 * 1024) -> Iterator[bytes]:
        try:
            self.file.seek(0)
            while chunk := self.file.read(size):
                yield chunk
        finally:
            self.file.close()


def export_csv(
    conn: psycopg.Connection, principal: Principal, trial_id: int, kind: ExportKind
) -> Export:
    authorised_trial(conn, principal, trial_id)
    allow_long_statements(conn)
    pseudonym = Pseudonymiser()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - handed to Export
    text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
    writer: Any = None
    rows = 0
    for row in repo.export_rows(conn, kind, trial_id):
        if writer is None:
            writer = csv.writer(text)
            writer.writerow([PSEUDONYMISED.get(name, name) for name in row])
        writer.writerow(
            [
                pseudonym(PSEUDONYMISED[name], value) if name in PSEUDONYMISED else _cell(value)
                for name, value in row.items()
            ]
        )
        rows += 1
    if writer is None:  # no rows: still a header, so the evaluator sees the columns
        header = repo.export_columns(conn, kind)
        csv.writer(text).writerow([PSEUDONYMISED.get(name, name) for name in header])
    text.flush()
    text.detach()
    record(
        conn,
        principal,
        f"export.{kind}",
        "trial",
        trial_id,
        after={
            "format": "csv",
            "rows": rows,
            "consent_rule": "participant rows only while 'evaluation' consent covered their time",
            "pseudonyms": "HMAC-SHA256 under a random per-export key, discarded after the export",
        },
    )
    return Export(filename=f"trial-{trial_id}-{kind}.csv", rows=rows, file=spool)
