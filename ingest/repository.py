"""All SQL of the ingest domain: the registry load, the batch write, and the completeness reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

from devices.placement import Placement
from infra.errors import NotFound
from ingest.messages import Mark
from ingest.schemas import DeadLetterOut, DeviceGaps, ReasonCount
from trials.consent import ConsentPeriod

READING_COLUMNS = (
    "ts, device_id, metric, value, trial_id, site_id, unit_id, participant_id, seq, received_at"
)
READING_TYPES = [
    "timestamptz", "text", "text", "float8", "int8", "int8", "int8", "int8", "int8", "timestamptz",
]  # fmt: skip
EVENT_COLUMNS = (
    "ts, device_id, event_type, duration_s, attrs, trial_id, site_id, unit_id, participant_id,"
    " seq, received_at"
)
EVENT_TYPES = [
    "timestamptz", "text", "text", "float8", "text", "int8", "int8", "int8", "int8", "int8",
    "timestamptz",
]  # fmt: skip
DEAD_LETTER_COLUMNS = "received_at, topic, device_id, reason, detail, excerpt, payload_size"

# Session-local staging tables: binary COPY lands here, then one INSERT … ON CONFLICT DO NOTHING
# moves the rows, so a redelivered reading is skipped instead of failing the batch.
STAGE_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage_readings (
    ts timestamptz, device_id text, metric text, value float8, trial_id int8, site_id int8,
    unit_id int8, participant_id int8, seq int8, received_at timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_stage_events (
    ts timestamptz, device_id text, event_type text, duration_s float8, attrs text, trial_id int8,
    site_id int8, unit_id int8, participant_id int8, seq int8, received_at timestamptz
) ON COMMIT DELETE ROWS;
"""


# ------------------------------------------------------------------------------ registry
def load_registry_rows(
    conn: psycopg.Connection,
) -> tuple[list[tuple[str, datetime]], list[Placement], list[tuple[int, ConsentPeriod]]]:
    devices = conn.execute("SELECT id, registered_at FROM devices").fetchall()
    with conn.cursor(row_factory=class_row(Placement)) as cursor:
        placements = cursor.execute(
            "SELECT id AS deployment_id, device_id, trial_id, site_id, unit_id, participant_id,"
            " valid_from, valid_until FROM deployments"
        ).fetchall()
    return devices, placements, _consent_periods(conn, None)


# The consent periods the gate judges by, in one order (the writer compares the cache's with the
# committed ones). A period closed by a withdrawal with erase is left out: what arrives late from
# it is dropped, so nothing of an erased participant is stored after the erase.
CONSENT_PERIODS = (
    "SELECT participant_id, scopes, valid_from, valid_until FROM consents"
    " WHERE withdrawal_mode IS DISTINCT FROM 'erase'"
    " AND (%(participants)s::int8[] IS NULL OR participant_id = ANY (%(participants)s))"
    " ORDER BY participant_id, valid_from"
)


def _consent_periods(
    conn: psycopg.Connection, participants: list[int] | None
) -> list[tuple[int, ConsentPeriod]]:
    return [
        (participant_id, ConsentPeriod(frozenset(scopes), valid_from, valid_until))
        for participant_id, scopes, valid_from, valid_until in conn.execute(
            CONSENT_PERIODS, {"participants": participants}
        )
    ]


def lock_consent_periods(
    conn: psycopg.Connection, participants: list[int]
) -> list[tuple[int, ConsentPeriod]]:
    """The committed periods of these participants, whose consent cannot change until commit.

    FOR SHARE of the participant rows waits for a consent change in flight (it locks the
    participant FOR UPDATE) and holds off the next one until this transaction ends; the periods
    are read by a second statement, whose snapshot is taken after the lock (READ COMMITTED).
    """
    conn.execute(
        "SELECT 1 FROM participants WHERE id = ANY (%(participants)s) ORDER BY id FOR SHARE",
        {"participants": participants},
    )
    return _consent_periods(conn, participants)


# --------------------------------------------------------------------------------- writes
def create_stage_tables(conn: psycopg.Connection) -> None:
    conn.execute(STAGE_TABLES)
    conn.commit()


def insert_readings(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Store readings idempotently; returns how many were new."""
    return _insert_idempotent(
        conn,
        rows,
        table="telemetry_readings",
        stage="ingest_stage_readings",
        columns=READING_COLUMNS,
        types=READING_TYPES,
        select=READING_COLUMNS,
        key="device_id, metric, ts",
        direct=True,
    )


def insert_events(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
    """Store events idempotently; returns how many were new."""
    return _insert_idempotent(
        conn,
        rows,
        table="telemetry_events",
        stage="ingest_stage_events",
        columns=EVENT_COLUMNS,
        types=EVENT_TYPES,
        select="ts, device_id, event_type, duration_s, COALESCE(attrs::jsonb, '{}'), trial_id,"
        " site_id, unit_id, participant_id, seq, received_at",
        key="device_id, event_type, ts",
        direct=False,  # attrs arrive as text; only the staging INSERT turns them into jsonb
    )


def _insert_idempotent(
    conn: psycopg.Connection,
    rows: Sequence[tuple[Any, ...]],
    *,
    table: str,
    stage: str,
    columns: str,
    types: list[str],
    select: str,
    key: str,
    direct: bool,
) -> int:
    """Binary COPY straight into the table; on a natural-key conflict, stage and skip instead.

    A conflict means a redelivery (or a device repeating itself), which is rare, so the fast
    path is tried first inside a savepoint: on a unique violation it is rolled back and the rows
    go through the staging table and INSERT … ON CONFLICT DO NOTHING (about half the speed).
    Either way a stored row is never stored twice and the count returned is what was new.
    """
    if not rows:
        return 0
    with conn.cursor() as cursor:
        if direct:
            cursor.execute("SAVEPOINT ingest_copy")
            try:
                _copy(cursor, f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)", types, rows)
            except psycopg.errors.UniqueViolation:
                cursor.execute("ROLLBACK TO SAVEPOINT ingest_copy")
            else:
                cursor.execute("RELEASE SAVEPOINT ingest_copy")
                return len(rows)
        _copy(cursor, f"COPY {stage} ({columns}) FROM STDIN (FORMAT BINARY)", types, rows)
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {select} FROM {stage}"
            f" ON CONFLICT ({key}) DO NOTHING"
        )
        return cursor.rowcount


def _copy(
    cursor: psycopg.Cursor[Any], statement: str, types: list[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    with cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


def insert_dead_letters(conn: psycopg.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY dead_letters ({DEAD_LETTER_COLUMNS}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def add_consent_drops(conn: psycopg.Connection, counts: dict[tuple[date, int, str], int]) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO consent_drops (day, trial_id, reason, count)"
            " VALUES (%(day)s, %(trial_id)s, %(reason)s, %(count)s)"
            " ON CONFLICT (day, trial_id, reason)"
            " DO UPDATE SET count = consent_drops.count + EXCLUDED.count",
            [
                {"day": day, "trial_id": trial_id, "reason": reason, "count": count}
                for (day, trial_id, reason), count in sorted(counts.items())
            ],
        )


def note_counted(conn: psycopg.Connection, digests: Sequence[bytes]) -> set[bytes]:
    """Note these messages in the ledger; returns the digests it did not hold yet."""
    rows = conn.execute(
        "INSERT INTO ingest_counted_messages (digest) SELECT unnest(%(digests)s::bytea[])"
        " ON CONFLICT (digest) DO NOTHING RETURNING digest",
        {"digests": list(digests)},
    ).fetchall()
    return {bytes(row[0]) for row in rows}


def forget_counted(conn: psycopg.Connection, older_than_seconds: int) -> None:
    conn.execute(
        "DELETE FROM ingest_counted_messages WHERE counted_at < now() - make_interval(secs => %s)",
        (older_than_seconds,),
    )


def lock_last_seqs(
    conn: psycopg.Connection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], Mark]:
    """The stored mark per (device, channel), locked in a stable order until commit."""
    rows = conn.execute(
        "SELECT s.device_id, s.channel, s.last_seq, s.last_ts FROM device_sequences s"
        " JOIN unnest(%(devices)s::text[], %(channels)s::text[]) AS k (device_id, channel)"
        "   USING (device_id, channel)"
        " ORDER BY s.device_id, s.channel FOR UPDATE OF s",
        {"devices": [k[0] for k in keys], "channels": [k[1] for k in keys]},
    ).fetchall()
    return {(device_id, channel): Mark(seq, ts) for device_id, channel, seq, ts in rows}


def save_last_seqs(conn: psycopg.Connection, last: dict[tuple[str, str], Mark]) -> None:
    """Store the marks computed from the locked ones (a restarted counter moves a mark down)."""
    keys = sorted(last)
    conn.execute(
        "INSERT INTO device_sequences (device_id, channel, last_seq, last_ts)"
        " SELECT * FROM unnest(%(devices)s::text[], %(channels)s::text[], %(seqs)s::int8[],"
        "   %(stamps)s::timestamptz[])"
        " ON CONFLICT (device_id, channel) DO UPDATE"
        " SET last_seq = EXCLUDED.last_seq, last_ts = EXCLUDED.last_ts, updated_at = now()",
        {
            "devices": [k[0] for k in keys],
            "channels": [k[1] for k in keys],
            "seqs": [last[k].seq for k in keys],
            "stamps": [last[k].ts for k in keys],
        },
    )


def insert_gaps(conn: psycopg.Connection, gaps: Sequence[dict[str, Any]]) -> None:
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO telemetry_gaps"
            " (device_id, channel, expected_seq, received_seq, gap_size, trial_id, ts)"
            " VALUES (%(device_id)s, %(channel)s, %(expected_seq)s, %(received_seq)s,"
            " %(gap_size)s, %(trial_id)s, %(ts)s)",
            gaps,
        )


# ---------------------------------------------------------------------------------- reads
def trial_company_id(conn: psycopg.Connection, trial_id: int) -> int:
    row = conn.execute(
        "SELECT company_id FROM trials WHERE id = %(id)s", {"id": trial_id}
    ).fetchone()
    if row is None:
        raise NotFound("trial %(trial)s does not exist", {"trial": trial_id})
    return int(row[0])


def gaps_by_device(conn: psycopg.Connection, trial_id: int) -> list[DeviceGaps]:
    with conn.cursor(row_factory=class_row(DeviceGaps)) as cursor:
        return cursor.execute(
            "SELECT device_id, channel, count(*) AS gaps, sum(gap_size) AS missing_messages,"
            " max(detected_at) AS last_detected_at"
            " FROM telemetry_gaps WHERE trial_id = %(trial_id)s"
            " GROUP BY device_id, channel ORDER BY device_id, channel",
            {"trial_id": trial_id},
        ).fetchall()


def dead_letter_counts(conn: psycopg.Connection, trial_id: int) -> list[ReasonCount]:
    # Dead letters carry no trial: they belong to it through the devices deployed in it.
    with conn.cursor(row_factory=class_row(ReasonCount)) as cursor:
        return cursor.execute(
            "SELECT reason, count(*) AS count FROM dead_letters dl"
            " WHERE EXISTS (SELECT 1 FROM deployments d WHERE d.trial_id = %(trial_id)s"
            "   AND d.device_id = dl.device_id AND d.valid_during @> dl.received_at)"
            " GROUP BY reason ORDER BY reason",
            {"trial_id": trial_id},
        ).fetchall()


def consent_drop_counts(conn: psycopg.Connection, trial_id: int) -> list[ReasonCount]:
    with conn.cursor(row_factory=class_row(ReasonCount)) as cursor:
        return cursor.execute(
            "SELECT reason, sum(count)::bigint AS count FROM consent_drops"
            " WHERE trial_id = %(trial_id)s GROUP BY reason ORDER BY reason",
            {"trial_id": trial_id},
        ).fetchall()


def list_dead_letters(
    conn: psycopg.Connection, *, reason: str | None, limit: int, offset: int
) -> tuple[list[DeadLetterOut], int]:
    params = {"reason": reason, "limit": limit, "offset": offset}
    where = " WHERE (%(reason)s::text IS NULL OR reason = %(reason)s)"
    with conn.cursor(row_factory=class_row(DeadLetterOut)) as cursor:
        items = cursor.execute(
            "SELECT id, received_at, topic, device_id, reason, detail, excerpt, payload_size"
            f" FROM dead_letters{where} ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()
    total = conn.execute(f"SELECT count(*) FROM dead_letters{where}", params).fetchone()
    return items, int(total[0]) if total else 0
