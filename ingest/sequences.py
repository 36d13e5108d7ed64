"""Gaps in device sequence numbers: missing data, told apart from no activity.

A seq above the last one stored moves the mark, and a jump past the next number is a gap. A seq
at or below the mark is a redelivery or a late arrival and is ignored, unless the device's own
time has moved past the mark's: then the device restarted its counter (a reboot, a battery
change), and the mark starts again from there without a gap (what was lost across the reboot
cannot be counted). The mark lives in the database and moves in the batch's own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from ingest import repository
from ingest.messages import Mark


@dataclass(frozen=True, slots=True)
class SeqSeen:
    device_id: str
    channel: str
    seq: int
    trial_id: int | None
    ts: datetime


def find_gaps(
    last: Mark | None, seen: Iterable[SeqSeen]
) -> tuple[list[dict[str, Any]], Mark | None]:
    """The gaps between `last` and the sequence numbers seen (in device time), and the new mark."""
    gaps = []
    for item in sorted(seen, key=lambda s: (s.ts, s.seq)):
        if last is None or item.seq > last.seq:
            if last is not None and item.seq > last.seq + 1:
                gaps.append(
                    {
                        "device_id": item.device_id,
                        "channel": item.channel,
                        "expected_seq": last.seq + 1,
                        "received_seq": item.seq,
                        "gap_size": item.seq - last.seq - 1,
                        "trial_id": item.trial_id,
                        "ts": item.ts,
                    }
                )
            last = Mark(item.seq, item.ts)
        elif last.ts is not None and item.ts > last.ts:  # a restarted counter
            last = Mark(item.seq, item.ts)
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
    new_last: dict[tuple[str, str], Mark] = {}
    for key, items in by_key.items():
        found, last = find_gaps(stored.get(key), items)
        gaps.extend(found)
        if last is not None and last != stored.get(key):
            new_last[key] = last
    if gaps:
        repository.insert_gaps(conn, gaps)
    if new_last:
        repository.save_last_seqs(conn, new_last)
    return len(gaps)
