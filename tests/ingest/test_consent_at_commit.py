"""Consent is decided when the rows are stored, against the committed consent: a withdrawal
made while readings stream in leaves nothing stamped at or after its `at`, and an erase nothing.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from access.schemas import OPERATOR, Role
from evidence import erase
from infra.db import connect
from infra.settings import Settings
from ingest.batch import Batch
from ingest.decode import decode
from ingest.messages import Inbound
from ingest.registry import load_registry
from ingest.worker import IngestWorker
from ingest.writer import BatchWriter
from tests.ingest.conftest import Lab, Publisher, at, count, reading, seed_lab, wait_until
from tests.trials.lab import bearer, make_key
from trials import service
from trials.consent import Scope
from trials.schemas import ConsentCreate, GivenBy, WithdrawalMode, WithdrawalRequest

# The issue asks for 20 of each before it is closed: LDL_TEST_WITHDRAWAL_ROUNDS=20.
ROUNDS = int(os.environ.get("LDL_TEST_WITHDRAWAL_ROUNDS", "3"))
READINGS_PER_SECOND = 400
DROPS = "SELECT coalesce(sum(count), 0) FROM consent_drops WHERE trial_id = %s"
ROWS = "SELECT count(*) FROM telemetry_readings WHERE participant_id = %s"


class Stream:
    """Readings from the participant's device, stamped with the wall clock, until stopped."""

    def __init__(self, pub: Publisher, topic: str) -> None:
        self.pub, self.topic = pub, topic
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-stream")

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.pub.flush()

    def _run(self) -> None:
        pace = 1 / READINGS_PER_SECOND
        while not self._stop.is_set():
            self.pub.publish(self.topic, reading(datetime.now(UTC), float(self.sent)))
            self.sent += 1
            time.sleep(pace)


@pytest.fixture
def coordinator(conn: psycopg.Connection) -> dict[str, str]:
    return bearer(make_key(conn, Role.COORDINATOR))


@pytest.fixture
def lab(db_url: str) -> Lab:
    return seed_lab(db_url)  # the participant consents from DEPLOYED_SINCE on


@pytest.fixture
def worker(db_url: str, lab: Lab, broker: Any, topic_prefix: str) -> Iterator[IngestWorker]:
    # Started after the lab is seeded: the cache is then complete from its first load.
    running = IngestWorker(
        Settings(
            environment="test",
            database_url=db_url,
            mqtt_url=broker.url,
            mqtt_topic_prefix=topic_prefix,
            ingest_client_id=f"consent-{topic_prefix.split('/')[0]}",
            ingest_metrics_port=0,
        )
    )
    running.start()
    yield running
    running.stop()


def test_no_reading_at_or_after_a_withdrawal_is_kept_while_a_stream_runs(
    db_url: str,
    topic_prefix: str,
    lab: Lab,
    http: httpx.Client,
    coordinator: dict[str, str],
    worker: IngestWorker,
    publisher: Callable[..., Publisher],
) -> None:
    pub = publisher()
    topic = f"{topic_prefix}/{lab.participant_device}/readings"
    published = 0
    for round_ in range(2 * ROUNDS):
        mode = ("keep", "erase")[round_ % 2]
        if round_:  # consent again, from now on, for the next round
            answer = http.post(
                f"/participants/{lab.participant_id}/consents",
                json={
                    "scopes": ["telemetry"],
                    "given_by": "participant",
                    "evidence_ref": f"round-{round_}",
                    "valid_from": datetime.now(UTC).isoformat(),
                },
                headers=coordinator,
            )
            assert answer.status_code == 201, answer.text
        rows_before, drops_before = _rows(db_url, lab), count(db_url, DROPS, lab.trial_id)
        with Stream(pub, topic) as stream:
            time.sleep(0.5)
            withdrawn_at = datetime.now(UTC)
            answer = http.post(
                f"/participants/{lab.participant_id}/consent-withdrawal",
                json={"at": withdrawn_at.isoformat(), "mode": mode},
                headers=coordinator,
            )
            assert answer.status_code == 200, answer.text
            time.sleep(0.3)
        published += stream.sent
        wait_until(_committed(worker, published), 20, "the stream committed")

        after = count(db_url, f"{ROWS} AND ts >= %s", lab.participant_id, withdrawn_at)
        assert after == 0, f"round {round_} ({mode}): {after} readings at or after `at` kept"
        erased = answer.json()["erased_rows"]["telemetry_readings"]
        drops = count(db_url, DROPS, lab.trial_id) - drops_before
        rows = _rows(db_url, lab)
        if mode == "erase":
            assert rows == 0, f"round {round_}: {rows} readings of the erased participant kept"
            # Each reading sent was erased with the rest or dropped as it came: counted once.
            assert erased + drops == rows_before + stream.sent
        else:
            assert rows > rows_before  # the stream was stored up to the withdrawal
            assert (rows - rows_before) + erased + drops == stream.sent
    assert count(db_url, "SELECT count(*) FROM dead_letters") == 0


def _committed(worker: IngestWorker, messages: int) -> Callable[[], bool]:
    return lambda: worker.committed_messages >= messages


def _rows(db_url: str, lab: Lab) -> int:
    return count(db_url, ROWS, lab.participant_id)


# ----------------------------------------------------------- the writer, step by step
def _batch(lab: Lab, registry: Any, indexes: range, dup: bool = False) -> Batch:
    batch = Batch()
    for index in indexes:
        inbound = Inbound(
            f"ldl/v1/{lab.participant_device}/readings",
            reading(at(index)),
            index + 1,
            1,
            at(index),
            0,
            dup,
        )
        batch.add(inbound, decode(inbound, "ldl/v1"), registry)
    return batch


def _withdraw(conn: psycopg.Connection, lab: Lab, when: datetime, mode: WithdrawalMode) -> None:
    request = WithdrawalRequest(at=when, mode=mode)
    erase.withdraw_consent(conn, OPERATOR, lab.participant_id, request)


def test_a_batch_routed_before_a_withdrawal_obeys_it_at_commit_and_counts_drops_once(
    db_url: str, lab: Lab
) -> None:
    with connect(db_url) as conn:
        stale = load_registry(conn)  # the cache, as it was when the batch was routed
        conn.rollback()
        _withdraw(conn, lab, at(10), WithdrawalMode.KEEP)
        conn.commit()
    writer = BatchWriter(db_url, ledger_seconds=3600)
    try:
        written = writer.write(_batch(lab, stale, range(20)), stale)
        # The broker sends them again (the acks were lost): nothing counted twice.
        again = writer.write(_batch(lab, stale, range(20), dup=True), stale)
    finally:
        writer.close()
    assert (written.readings, written.consent_dropped) == (10, 10)
    assert (again.readings, again.consent_dropped, again.deduplicated_readings) == (0, 0, 10)
    assert count(db_url, f"{ROWS} AND ts >= %s", lab.participant_id, at(10)) == 0
    assert count(db_url, DROPS, lab.trial_id) == 10


def test_a_withdrawal_in_flight_holds_the_ingest_commit_until_it_has_committed(
    db_url: str, lab: Lab
) -> None:
    writer = BatchWriter(db_url, ledger_seconds=3600)
    written: list[Any] = []
    with connect(db_url) as conn:
        registry = load_registry(conn)
        conn.rollback()
        _withdraw(conn, lab, at(2), WithdrawalMode.ERASE)  # not committed yet
        committing = threading.Thread(
            target=lambda: written.append(writer.write(_batch(lab, registry, range(5)), registry)),
            name="test-ingest-commit",
        )
        committing.start()
        time.sleep(0.5)
        assert committing.is_alive(), "the ingest commit went ahead of the withdrawal"
        conn.commit()
    committing.join(timeout=10)
    writer.close()
    # All five: those stamped before `at` too, as the period they belong to was erased.
    assert written and written[0].readings == 0 and written[0].consent_dropped == 5
    assert count(db_url, ROWS, lab.participant_id) == 0


def test_a_consent_the_cache_has_not_seen_yet_is_honoured_at_commit(db_url: str, lab: Lab) -> None:
    with connect(db_url) as conn:
        _withdraw(conn, lab, at(0), WithdrawalMode.KEEP)
        conn.commit()
        stale = load_registry(conn)  # no consent from at(0) on
        conn.rollback()
        again = ConsentCreate(
            scopes=[Scope.TELEMETRY],
            given_by=GivenBy.PARTICIPANT,
            evidence_ref="DOC-2",
            valid_from=at(10),
        )
        service.give_consent(conn, OPERATOR, lab.participant_id, again)
        conn.commit()
    writer = BatchWriter(db_url, ledger_seconds=3600)
    try:
        written = writer.write(_batch(lab, stale, range(20)), stale)
    finally:
        writer.close()
    assert (written.readings, written.consent_dropped) == (10, 10)
    assert count(db_url, f"{ROWS} AND ts >= %s", lab.participant_id, at(10)) == 10
