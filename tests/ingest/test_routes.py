"""Data completeness per trial (gaps, dead letters, consent drops) and the dead-letter list."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg

from access.schemas import OPERATOR, ApiKeyCreate, Role
from access.service import create_key
from tests.ingest.conftest import Publisher, WorkerProcess, at, count, reading, seed_lab, wait_until


def _key(conn: psycopg.Connection, role: Role, company_id: int | None = None) -> dict[str, str]:
    created = create_key(conn, OPERATOR, ApiKeyCreate(name=role, role=role, company_id=company_id))
    conn.commit()
    return {"Authorization": f"Bearer {created.key}"}


def test_gaps_and_dead_letters_are_reported_per_trial_to_whom_may_see_them(
    db_url: str,
    conn: psycopg.Connection,
    http: httpx.Client,
    topic_prefix: str,
    start_worker: Callable[..., WorkerProcess],
    publisher: Callable[..., Publisher],
) -> None:
    lab = seed_lab(db_url)
    other = seed_lab(db_url)
    worker = start_worker()
    worker.wait_connected()
    pub = publisher()
    topic = f"{topic_prefix}/{lab.room_device}/readings"
    for seq in (1, 2, 3, 6, 7, 10):  # 4-5 and 8-9 never arrive
        pub.publish(topic, reading(at(seq), seq=seq))
    pub.publish(topic, b"not json")
    pub.flush()
    wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry_gaps") == 2, 10, "2 gaps")
    wait_until(lambda: count(db_url, "SELECT count(*) FROM dead_letters") == 1, 10, "dead letter")
    for seq, second in ((0, 20), (1, 21), (3, 23)):  # rebooted: counting again, 2 never arrives
        pub.publish(topic, reading(at(second), seq=seq))
    pub.flush()
    wait_until(lambda: count(db_url, "SELECT count(*) FROM telemetry_gaps") == 3, 10, "3 gaps")
    assert worker.terminate() == 0

    coordinator = _key(conn, Role.COORDINATOR)
    own = _key(conn, Role.COMPANY, lab.company_id)
    foreign = _key(conn, Role.COMPANY, other.company_id)
    url = f"/trials/{lab.trial_id}/data-completeness"
    for headers in (coordinator, own):
        response = http.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["missing_messages"] == 5
        assert body["gaps"][0]["device_id"] == lab.room_device
        assert body["dead_letters"] == [{"reason": "malformed_json", "count": 1}]
    assert http.get(url, headers=foreign).status_code == 404
    assert http.get("/trials/999999/data-completeness", headers=coordinator).status_code == 404

    letters = http.get("/dead-letters?reason=malformed_json", headers=coordinator).json()
    assert letters["total"] == 1 and letters["items"][0]["excerpt"] == "not json"
    assert http.get("/dead-letters?reason=oversized", headers=coordinator).json()["total"] == 0
    assert http.get("/dead-letters", headers=own).status_code == 403
