"""The payload contract: published schemas match the models; decoding refuses what it must."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devices.payloads import SCHEMAS_DIR, rendered_schema_files
from ingest.decode import decode, parse_topic
from ingest.messages import Channel, DeadLetter, DeviceMessage, Inbound, Mark
from ingest.sequences import SeqSeen, find_gaps

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_committed_schema_files_equal_the_generated_ones() -> None:
    rendered = rendered_schema_files()
    committed = {path.name: path.read_bytes() for path in SCHEMAS_DIR.glob("*.json")}
    assert committed == rendered, (
        "run `python -m devices.payloads` and commit devices/payload_schemas/"
    )


def test_topics_are_prefix_device_channel() -> None:
    assert parse_topic("ldl/v1/bed-1/readings", "ldl/v1") == ("bed-1", Channel.READINGS)
    assert parse_topic("ldl/v1/bed 1/readings", "ldl/v1") is None
    assert parse_topic("ldl/v1/bed-1/readings/x", "ldl/v1") is None
    assert parse_topic("other/bed-1/status", "ldl/v1") is None


def _decode(payload: bytes, channel: str = "readings") -> DeviceMessage | DeadLetter:
    return decode(Inbound(f"ldl/v1/bed-1/{channel}", payload, 1, 1, NOW, 0), "ldl/v1")


@pytest.mark.parametrize(
    ("payload", "count"),
    [
        (b'{"ts": 1772323200000, "metric": "hr", "value": 60, "seq": 3}', 1),
        (b'{"readings": [{"ts": "2026-03-01T01:00:00+01:00", "metric": "hr", "value": 1}]}', 1),
        (b'[{"bn": "b:", "bt": 1772323200, "n": "t", "v": 20}, {"n": "u", "vb": false}]', 2),
    ],
)
def test_readings_decode_in_every_format(payload: bytes, count: int) -> None:
    message = _decode(payload)
    assert isinstance(message, DeviceMessage)
    assert len(message.readings) == count
    assert message.readings[0][0] == NOW  # (ts, metric, value, seq)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"ts": 1772323200000, "metric": "hr", "value": true}', "schema_violation"),
        (b'{"ts": 1772323200000.5, "metric": "hr", "value": 1}', "schema_violation"),
        (b'{"ts": 1772323200000, "metric": "hr", "value": Infinity}', "non_finite"),
        (b'[{"n": "t", "t": 5, "v": 1}]', "schema_violation"),  # relative to "now"
        (b'[{"bn": "b:", "bt": 1772323200, "n": "s", "vs": "on"}]', "schema_violation"),
        (b'[{"bn": "b:", "bt": 1772323200, "n": "t", "v": 1, "x_": 1}]', "schema_violation"),
        (b"\xff\xfe", "malformed_json"),
    ],
)
def test_bad_payloads_become_dead_letters(payload: bytes, reason: str) -> None:
    dead = _decode(payload)
    assert isinstance(dead, DeadLetter)
    assert dead.reason == reason


def _jumps(gaps: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    return [(g["expected_seq"], g["received_seq"], g["gap_size"]) for g in gaps]


def test_gaps_are_forward_jumps_only() -> None:
    seen = [SeqSeen("d", "readings", seq, 1, NOW) for seq in (5, 6, 9, 7, 12)]
    gaps, last = find_gaps(Mark(4, NOW), seen)
    assert _jumps(gaps) == [(8, 9, 1), (10, 12, 2)]
    assert last == Mark(12, NOW)


def test_a_restarted_counter_starts_a_new_mark_and_late_messages_do_not() -> None:
    later = [NOW + timedelta(seconds=s) for s in range(10)]
    seen = [
        SeqSeen("d", "readings", 40, 1, later[0]),  # late: older than the mark, ignored
        SeqSeen("d", "readings", 51, 1, later[2]),  # forward: 51 follows the mark 50
        SeqSeen("d", "readings", 0, 1, later[5]),  # the device rebooted: a new mark, no gap
        SeqSeen("d", "readings", 1, 1, later[6]),
        SeqSeen("d", "readings", 4, 1, later[7]),  # 2 and 3 are missing after the reboot
    ]
    gaps, last = find_gaps(Mark(50, later[1]), seen)
    assert _jumps(gaps) == [(2, 4, 2)]
    assert last == Mark(4, later[7])


def test_a_mark_stored_without_its_time_only_moves_forward() -> None:
    gaps, last = find_gaps(Mark(50, None), [SeqSeen("d", "readings", 3, 1, NOW)])
    assert gaps == [] and last == Mark(50, None)
