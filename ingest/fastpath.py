"""A fast path for the common native readings payload, with pydantic as the judge of anything else.

Validating 100 readings through pydantic models costs ~2 µs each, most of the worker's time in
a batched stream. Here a plain loop checks the common shape (`{"ts", "metric", "value"[, "seq"]}`,
alone or in `{"readings": [...][, "seq"]}`) and returns the same values the models would; at the
first thing it is not sure about it returns None and `decode` runs the models, so every refusal
(reason and detail text) still comes from pydantic, unchanged. It must never accept what the
models refuse nor return a different value: tests/ingest/test_fastpath.py holds it to that.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from devices.payloads import EPOCH, MAX_BATCH_ITEMS, NAME_PATTERN, device_time
from ingest.messages import ReadingRow

SEQ_LIMIT = 2**63
# pydantic matches patterns with Rust's regex, whose `$` is the very end; Python's would let a
# trailing newline through, so the pattern is applied with fullmatch, anchors removed.
_NAME = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))
_names: set[str] = set()  # metric names already checked (bounded below)
NAME_CACHE_SIZE = 10_000


def fast_readings(document: Any) -> tuple[tuple[ReadingRow, ...], tuple[int, ...]] | None:
    """(readings, seqs) for a well-formed native readings payload, or None to ask pydantic."""
    if type(document) is not dict:
        return None
    if "readings" not in document:  # a single reading
        reading = _readings([document], {})
        if reading is None:
            return None
        seq = reading[0][3]
        return reading, () if seq is None else (seq,)
    items, size = document["readings"], len(document)
    batch_seq = document.get("seq")
    if (
        type(items) is not list
        or not 1 <= len(items) <= MAX_BATCH_ITEMS
        or not (size == 1 or (size == 2 and "seq" in document and _is_seq(batch_seq)))
    ):
        return None
    readings = _readings(items, {})
    if readings is None:
        return None
    if batch_seq is not None:  # a batch-level seq numbers the message
        return readings, (batch_seq,)
    return readings, tuple(seq for _, _, _, seq in readings if seq is not None)


def _is_seq(value: object) -> bool:
    return value is None or (type(value) is int and 0 <= value < SEQ_LIMIT)


def _readings(items: list[Any], times: dict[Any, datetime]) -> tuple[ReadingRow, ...] | None:
    rows: list[ReadingRow] = []
    append, isfinite, names = rows.append, math.isfinite, _names
    for item in items:
        if type(item) is not dict:
            return None
        ts, metric, value = item.get("ts"), item.get("metric"), item.get("value")
        if len(item) == 3:
            seq = None
        elif len(item) == 4 and "seq" in item:
            seq = item["seq"]
            if not _is_seq(seq):
                return None
        else:
            return None
        at = times.get(ts) if type(ts) is int or type(ts) is str else None
        if at is None:
            at = _device_time(ts)
            if at is None:
                return None
            times[ts] = at  # a batch shares its few timestamps among many metrics
        if type(metric) is not str or (metric not in names and not _known_name(metric)):
            return None
        if type(value) is float:
            if not isfinite(value):
                return None
        elif type(value) is int:
            value = float(value)  # what pydantic's strict float does with a JSON integer
        else:
            return None
        append((at, metric, value, seq))
    return tuple(rows)


def _device_time(ts: object) -> datetime | None:
    if type(ts) is int:
        try:
            return EPOCH + timedelta(0, 0, 0, ts)  # positional: milliseconds
        except OverflowError:
            return None
    if type(ts) is str:
        try:
            at = device_time(ts)  # the models' own conversion, so the same semantics
        except ValueError:
            return None
        return at if isinstance(at, datetime) else None
    return None


def _known_name(metric: str) -> bool:
    if _NAME.fullmatch(metric) is None:
        return False
    if len(_names) >= NAME_CACHE_SIZE:
        _names.clear()  # bounded: a flood of made-up names cannot grow it
    _names.add(metric)
    return True
