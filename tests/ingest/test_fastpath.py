"""The readings fast path: the same outcome as the pydantic models, bit for bit, or it stands aside.

`decode` tries ingest/fastpath.py first; "the models alone" below is `decode` with the fast path
switched off, i.e. the decoding as it was before the fast path existed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
import pytest

from ingest import decode as decode_module
from ingest.batch import Batch
from ingest.decode import decode
from ingest.fastpath import fast_readings
from ingest.messages import DeadLetter, DeviceMessage, Inbound
from ingest.registry import load_registry
from ingest.writer import BatchWriter
from tests.ingest.conftest import seed_lab

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
TOPIC = "ldl/v1/bed-1/readings"


def _inbound(document: Any, topic: str = TOPIC) -> Inbound:
    return Inbound(topic, orjson.dumps(document), 1, 1, NOW, 0)


def _models_alone(inbound: Inbound, monkeypatch: pytest.MonkeyPatch) -> DeviceMessage | DeadLetter:
    with monkeypatch.context() as patch:
        patch.setattr(decode_module, "fast_readings", lambda document: None)
        return decode(inbound, "ldl/v1")


def _good(**extra: Any) -> dict[str, Any]:
    return {"ts": NOW_MS, "metric": "heart_rate", "value": 61.5, **extra}


WELL_FORMED = {
    "readings": [
        _good(),
        _good(ts=NOW_MS - 1, value=60),  # an integer value becomes a float
        _good(ts="2026-03-01T12:59:00+01:00", metric="resp:rate/1.a_b-c", value=-0.0),
        _good(ts="2026-03-01T11:58:00.123456Z", value=2**64 - 1, seq=7),
        _good(ts=NOW_MS - 3, metric="m" * 200, value=1e308, seq=None),
    ]
}

# One bad reading in the middle of good ones (or a bad batch around good ones): each must get
# exactly the dead letter the models give, reason and detail text alike.
BAD_READINGS = [
    {"ts": NOW_MS, "metric": "hr", "value": True},
    {"ts": NOW_MS, "metric": "hr", "value": "60"},
    {"ts": NOW_MS, "metric": "hr", "value": None},
    {"ts": NOW_MS, "metric": "hr"},
    {"ts": NOW_MS, "metric": "hr", "value": 1, "unit": "bpm"},
    {"ts": NOW_MS, "metric": "hr", "value": 1, "seq": -1},
    {"ts": NOW_MS, "metric": "hr", "value": 1, "seq": 2**63},
    {"ts": NOW_MS, "metric": "hr", "value": 1, "seq": "3"},
    {"ts": NOW_MS, "metric": "hr", "value": 1, "seq": True},
    {"ts": NOW_MS + 0.5, "metric": "hr", "value": 1},
    {"ts": str(NOW_MS), "metric": "hr", "value": 1},
    {"ts": "2026-03-01T12:00:00", "metric": "hr", "value": 1},
    {"ts": "yesterday", "metric": "hr", "value": 1},
    {"ts": True, "metric": "hr", "value": 1},
    {"ts": None, "metric": "hr", "value": 1},
    {"ts": 10**18, "metric": "hr", "value": 1},
    {"ts": NOW_MS, "metric": "", "value": 1},
    {"ts": NOW_MS, "metric": "heart rate", "value": 1},
    {"ts": NOW_MS, "metric": "hr\n", "value": 1},
    {"ts": NOW_MS, "metric": "-hr", "value": 1},
    {"ts": NOW_MS, "metric": "m" * 201, "value": 1},
    {"ts": NOW_MS, "metric": 7, "value": 1},
    {"ts": NOW_MS, "metric": ["hr"], "value": 1},
    [NOW_MS, "hr", 1],
    None,
]
BAD_BATCHES = [
    {"readings": []},
    {"readings": "hr"},
    {"readings": None},
    {"readings": [_good()], "seq": -1},
    {"readings": [_good()], "seq": 1.0},
    {"readings": [_good()], "device": "bed-1"},
    {"readings": [_good(ts=NOW_MS - i) for i in range(10_001)]},
]


def _dead_letter_cases() -> Iterator[Any]:
    for bad in BAD_READINGS:
        yield pytest.param({"readings": [_good(), bad, _good(ts=NOW_MS - 1)]}, id=f"in batch {bad}")
        if isinstance(bad, dict):
            yield pytest.param(bad, id=f"single {bad}")
    for bad in BAD_BATCHES:
        yield pytest.param(bad, id=f"batch {str(bad)[:60]}")


@pytest.mark.parametrize("document", list(_dead_letter_cases()))
def test_a_bad_reading_gets_the_dead_letter_the_models_give(
    document: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbound = _inbound(document)
    dead = decode(inbound, "ldl/v1")
    assert isinstance(dead, DeadLetter)
    assert dead == _models_alone(inbound, monkeypatch)


def test_dead_letter_text_is_unchanged() -> None:
    """Pinned wording (as before the fast path), for the most common device mistakes."""
    batch = {"readings": [_good(), {"ts": NOW_MS, "metric": "hr", "value": True}]}
    dead = decode(_inbound(batch), "ldl/v1")
    assert isinstance(dead, DeadLetter)
    assert (dead.reason, dead.detail) == (
        "schema_violation",
        "readings.1.value: Input should be a valid number",
    )
    dead = decode(_inbound({"ts": "2026-03-01T12:00:00", "metric": "hr", "value": 1}), "ldl/v1")
    assert isinstance(dead, DeadLetter)
    assert dead.detail == (
        "ts: Value error, an RFC 3339 timestamp needs an offset, e.g. Z or +01:00"
    )


def test_random_payloads_decode_as_the_models_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutated payloads, good and bad: the fast path never differs from the models."""
    rng, accepted = random.Random(5), 0
    good: dict[str, list[Any]] = {
        "ts": [NOW_MS, NOW_MS - 7, 0, -1, "2026-03-01T12:00:00Z", "2026-03-01T13:00:00.5+01:00"],
        "metric": ["hr", "a.b:c/d_e-f", "x" * 200],
        "value": [0, 1, -3, 2.5, 1e-300, -1e300, 2**63],
        "seq": [None, 0, 5, 2**63 - 1],
    }
    bad: dict[str, list[Any]] = {
        "ts": [2**62, 1.5, "2026-03-01", "2026-03-01T12:00:00", "1", True, None],
        "metric": ["", " hr", "hr ", "é", 1, None, "x" * 201],
        "value": [True, False, None, "1", [1], {}],
        "seq": [2**63, -1, 1.0, False, "1"],
    }

    def pick(key: str) -> Any:
        return rng.choice(bad[key] if rng.random() < 0.04 else good[key])

    for _ in range(1500):
        readings = []
        for _ in range(rng.randint(1, 3)):
            item = {key: pick(key) for key in good}
            for key in list(item):
                if rng.random() < (0.5 if key == "seq" else 0.02):
                    del item[key]
            if rng.random() < 0.05:
                item["extra"] = 1
            readings.append(item)
        document: Any = readings[0]
        if rng.random() < 0.7:
            document = {"readings": readings}
            if rng.random() < 0.3:
                document["seq"] = pick("seq")
        inbound = _inbound(document)
        outcome = decode(inbound, "ldl/v1")
        assert outcome == _models_alone(inbound, monkeypatch), document
        accepted += isinstance(outcome, DeviceMessage)
    assert accepted > 100  # the good ones were exercised too, not only refusals


def _stored(db_url: str, message: DeviceMessage | DeadLetter, inbound: Inbound) -> list[Any]:
    with psycopg.connect(db_url) as conn:
        registry = load_registry(conn)
        conn.execute("TRUNCATE telemetry_readings")
        conn.commit()
    batch = Batch()
    batch.add(inbound, message, registry)
    writer = BatchWriter(db_url, ledger_seconds=3600)
    try:
        writer.write(batch, registry)
    finally:
        writer.close()
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT ts, device_id, metric, value, trial_id, site_id, unit_id, participant_id,"
            " seq, received_at FROM telemetry_readings ORDER BY ts, metric"
        ).fetchall()


def test_a_well_formed_batch_is_stored_identically_through_both_paths(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab = seed_lab(db_url)
    for document in (WELL_FORMED, {**WELL_FORMED, "seq": 41}, _good(seq=3)):
        inbound = _inbound(document, f"ldl/v1/{lab.participant_device}/readings")
        assert fast_readings(document) is not None  # it did take the fast path
        fast, slow = decode(inbound, "ldl/v1"), _models_alone(inbound, monkeypatch)
        assert isinstance(fast, DeviceMessage)
        assert fast == slow
        fast_rows = _stored(db_url, fast, inbound)
        assert len(fast_rows) == len(fast.readings)
        assert fast_rows == _stored(db_url, slow, inbound)
