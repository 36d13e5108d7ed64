"""Gaps in device sequence numbers: missing data, told apart from no activity.

Only forward jumps count: a seq at or below the last one stored is a redelivery or a late
arrival and is ignored (a device that restarts its counter shows no gaps until it passes the old
high mark). The last seq lives in the database and moves in the batch's own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ingest import repository


@dataclass(frozen=True, slots=True)
class SeqSeen:
    device_id: str
    channel: str
    seq: int
    trial_id: int | None
    ts: datetime


def find_gaps(last: int | None, seen: Iterable[SeqSeen]) -> tuple[list[dict[str, Any]], int | None]:
    """The gaps between `last` and the sequence numbers seen, and the new last."""
    gaps = []
    for item in sorted(seen, key=lambda s: s.seq):
        if last is not None and item.seq > last + 1:
            gaps.append(
                {
                    "device_id": item.device_id,
                    "channel": item.channel,
                    "expected_seq": last + 1,
                    "received_seq": item.seq,
                    "gap_size": item.seq - last - 1,
                    "trial_id": item.trial_id,
                    "ts": item.ts,
                }
            )
        if last is None or item.seq > last:
            last = item.seq
    return gaps, last


def record_sequences(conn: psycopg.Connection, seen: Iterable[SeqSeen]) -> int:
    """Detect and store gaps for a batch in the caller's transaction; returns gaps found."""
    by_key: dict[tuple[str, str], list[SeqSeen]] = {}
    for item in seen:
        by_key.setdefault((item.device_id, item.channel), []).append(item)
    if not by_key:
        return 0
    stored = repository.lock_last_seqs(conn, sorted(by_key))
    gaps: list[dict[str, Any]] = []
    new_last: dict[tuple[str, str], int] = {}
    for key, items in by_key.items():
        found, last = find_gaps(stored.get(key), items)
        gaps.extend(found)
        if last is not None:
            new_last[key] = last
    if gaps:
        repository.insert_gaps(conn, gaps)
    repository.save_last_seqs(conn, new_last)
    return len(gaps)
