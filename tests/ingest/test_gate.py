"""The consent gate and the dead letters: nothing kept without consent, the worker never dies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson

from tests.ingest.conftest import (
    DEPLOYED_SINCE,
    Publisher,
    WorkerProcess,
    at,
    count,
    reading,
    seed_lab,
    wait_until,
)


def test_a_withdrawal_stops_storage_within_a_second(
    db_url: str,
    topic_prefix: str,
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
) -> None:
    lab = seed_lab(db_url)
    worker = start_worker()
    worker.wait_connected()
    pub = publisher()
    topic = f"{topic_prefix}/{lab.participant_device}/readings"
    stop = threading.Event()

    def stream() -> None:  # a reading every 10 ms, stamped with the device's (our) clock
        while not stop.is_set():
            pub.publish(topic, reading(datetime.now(UTC)))
            time.sleep(0.01)

    sender = threading.Thread(target=stream, name="test-stream")
    sender.start()
    time.sleep(1.0)
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "UPDATE consents SET valid_until = now(), ended_by = 'withdrawn',"
            " withdrawal_mode = 'keep' WHERE participant_id = %s RETURNING valid_until",
            (lab.participant_id,),
        ).fetchone()
    withdrawn_at = row[0]
    time.sleep(2.0)
    stop.set()
    sender.join()
    pub.flush()
    drops = "SELECT coalesce(sum(count), 0) FROM consent_drops WHERE trial_id = %s"
    wait_until(lambda: count(db_url, drops, lab.trial_id) >= 150, 10, "the drops counted")
    stored = "SELECT count(*) FROM telemetry_readings WHERE device_id = %s AND ts {} %s"
    assert count(db_url, stored.format("<"), lab.participant_device, withdrawn_at) > 50
    late = withdrawn_at + timedelta(seconds=1)
    assert count(db_url, stored.format(">="), lab.participant_device, late) == 0
    assert worker.terminate() == 0


def test_every_bad_input_lands_in_dead_letters_while_good_messages_are_stored(
    db_url: str,
    topic_prefix: str,
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
) -> None:
    lab = seed_lab(db_url)
    worker = start_worker()
    worker.wait_connected()
    pub = publisher()
    device = f"{topic_prefix}/{lab.room_device}"
    good_ts = at(0).isoformat()
    bad: list[tuple[str, str | bytes]] = [
        ("bad_topic", f"{topic_prefix}/{lab.room_device}/readings/extra"),
        ("bad_topic", f"{device}/telemetry"),
        ("oversized", "x" * (256 * 1024 + 1)),
        ("malformed_json", '{"ts": '),
        ("non_finite", f'{{"ts": "{good_ts}", "metric": "hr", "value": NaN}}'),
        ("non_finite", f'{{"ts": "{good_ts}", "metric": "hr", "value": 1e999}}'),
        ("schema_violation", orjson.dumps({"ts": good_ts, "metric": "hr"})),
        (
            "schema_violation",
            orjson.dumps({"ts": "2026-02-01T10:00:00", "metric": "hr", "value": 1}),
        ),
        ("unknown_device", f"{topic_prefix}/no-such-device/readings"),
        ("no_deployment", reading(DEPLOYED_SINCE - timedelta(days=5))),
        ("future_timestamp", reading(datetime.now(UTC) + timedelta(hours=1))),
        ("before_registration", reading(datetime(2025, 1, 1, tzinfo=UTC))),
        (
            "storage_error",
            orjson.dumps({"ts": good_ts, "type": "bed_exit", "attrs": {"a": "\x00"}}),
        ),
    ]
    for index, (reason, item) in enumerate(bad):
        good = reading(at(index + 1))
        pub.publish(f"{device}/readings", good)
        if reason in {"bad_topic", "unknown_device"}:
            pub.publish(str(item), reading(at(0)))
        elif reason == "storage_error":
            pub.publish(f"{device}/events", item if isinstance(item, bytes) else item.encode())
        else:
            pub.publish(f"{device}/readings", item if isinstance(item, bytes) else item.encode())
    senml = [
        {"bn": "urn:dev:bed:", "bt": at(100).timestamp(), "n": "hr", "v": 61},
        {"n": "occupied", "vb": True, "t": 1},
    ]
    pub.publish(f"{device}/readings", orjson.dumps(senml))
    events = {"events": [{"ts": good_ts, "type": "bed_exit", "duration_s": 4}], "seq": 1}
    pub.publish(f"{device}/events", orjson.dumps(events))
    pub.publish(f"{device}/status", orjson.dumps({"ts": good_ts, "battery": 77, "rssi": -60}))
    pub.flush()
    dead = "SELECT count(*) FROM dead_letters"
    wait_until(lambda: count(db_url, dead) >= len(bad), 15, "every dead letter")
    assert worker.terminate() == 0
    import psycopg

    with psycopg.connect(db_url) as conn:
        reasons: dict[str, int] = dict(
            conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY 1").fetchall()
        )
        excerpts = [r[0] for r in conn.execute("SELECT excerpt FROM dead_letters")]
        battery = conn.execute(
            "SELECT battery FROM device_health WHERE device_id = %s", (lab.room_device,)
        ).fetchone()
    expected: dict[str, int] = {}
    for reason, _ in bad:
        expected[reason] = expected.get(reason, 0) + 1
    assert reasons == expected
    assert max(len(e) for e in excerpts) <= 512
    readings = "SELECT count(*) FROM telemetry_readings WHERE device_id = %s"
    assert count(db_url, readings, lab.room_device) == len(bad) + 2  # the good ones and SenML
    assert count(db_url, "SELECT count(*) FROM telemetry_events") == 1
    assert battery == (77,)
