"""Under more concurrent requests than worker threads and database connections together, every
request answers at once (served, or a fast 503 with Retry-After) and the service recovers at once.

Before the connection gate, a request took its connection on one worker thread and waited for
another to run its handler: with more requests than threads, every thread sat in the pool's
`getconn` while the connections' holders waited for a thread, until the pool's 30 s timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import httpx
import psycopg
import pytest

from access.schemas import Role
from infra.settings import Settings
from tests.conftest import serve
from tests.trials.lab import bearer, make_key

WORKER_THREADS = 40  # anyio's default limiter, which FastAPI runs sync handlers and dependencies on
POOL = 2
READERS = WORKER_THREADS + POOL + 58  # 100: beyond threads and connections together
CLIENT_TIMEOUT = 8.0  # well below the pool's 30 s timeout that used to end each lock-up
# "Answered, not hung": far below the waits of a lock-up (the client's 8 s timeout, the pool's
# 30 s), far above what a loaded CI machine adds. Speed itself is measured in bench/load.py.
NOT_HUNG = 5.0


Request = tuple[str, str, dict[str, Any] | None]


async def _burst(url: str, requests: Sequence[Request], key: str) -> Any:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=CLIENT_TIMEOUT, limits=limits) as client:

        async def one(method: str, path: str, body: dict[str, Any] | None) -> Any:
            started = time.monotonic()
            try:
                response = await client.request(method, path, json=body, headers=bearer(key))
            except httpx.HTTPError as exc:
                return exc, time.monotonic() - started
            return response, time.monotonic() - started

        return await asyncio.gather(*(one(*request) for request in requests))


def _small(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update={"db_pool_max": POOL, **overrides})


def test_more_requests_than_threads_and_connections_all_answer_and_the_next_is_fast(
    settings: Settings, conn: psycopg.Connection
) -> None:
    key = make_key(conn, Role.COORDINATOR)
    with serve(_small(settings)) as url:
        results = asyncio.run(_burst(url, [("GET", "/trials", None)] * READERS, key))
        failures = [
            f"{type(r).__name__} after {s:.1f} s"
            for r, s in results
            if not hasattr(r, "status_code")
        ]
        assert not failures, f"{len(failures)} of {READERS} got no answer: {failures[:3]}"
        statuses = sorted({r.status_code for r, _ in results})
        assert set(statuses) <= {200, 503}, statuses
        assert any(r.status_code == 200 for r, _ in results)
        for response, _ in results:
            if response.status_code == 503:
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"] == "busy"

        started = time.monotonic()
        after = httpx.get(f"{url}/trials", headers=bearer(key), timeout=CLIENT_TIMEOUT)
        assert after.status_code == 200
        assert time.monotonic() - started < NOT_HUNG  # the burst left nothing behind


def test_writes_among_many_readers_are_committed_or_refused_never_hung(
    settings: Settings, conn: psycopg.Connection
) -> None:
    key = make_key(conn, Role.COORDINATOR)
    names = [f"Firma {n} ApS" for n in range(20)]
    writes: list[Request] = [("POST", "/companies", {"name": name}) for name in names]
    with serve(_small(settings)) as url:
        requests: list[Request] = [("GET", "/trials", None)] * READERS
        requests += writes
        results = asyncio.run(_burst(url, requests, key))
        assert all(hasattr(r, "status_code") for r, _ in results), "a request got no answer"
        accepted = {
            body["name"]
            for (response, _), (_, _, body) in zip(results, requests, strict=True)
            if body and response.status_code == 201
        }
        refused = [
            r
            for (r, _), req in zip(results, requests, strict=True)
            if req[2] and r.status_code == 503
        ]
        assert len(accepted) + len(refused) == len(names)
        # What was answered 201 is committed; what was refused 503 left nothing behind.
        stored = {row[0] for row in conn.execute("SELECT name FROM companies").fetchall()}
        assert accepted == stored & set(names)


# /app/ looks the session up (none here: a 303 to sign-in when served).
@pytest.mark.parametrize(("path", "served"), [("/trials", 200), ("/app/", 303)])
def test_a_full_queue_is_a_fast_503_with_retry_after_in_the_api_and_the_web_app(
    settings: Settings, conn: psycopg.Connection, path: str, served: int
) -> None:
    """With no room to wait, a request is refused at once: JSON for the API, a page in Danish."""
    key = make_key(conn, Role.COORDINATOR)
    tight = _small(settings, db_pool_max=1, api_queue_limit=0)
    with serve(tight) as url:
        results = asyncio.run(_burst(url, [("GET", path, None)] * 30, key))
        refused = [(r, s) for r, s in results if getattr(r, "status_code", None) == 503]
        assert refused, "30 at once through one connection and no queue: some must be refused"
        for response, seconds in refused:
            assert seconds < NOT_HUNG
            assert response.headers["Retry-After"] == "1"
            if path.startswith("/app"):
                assert 'lang="da"' in response.text
                assert "travlt" in response.text  # "Systemet har travlt lige nu …"
        assert all(getattr(r, "status_code", None) in (served, 503) for r, _ in results)


def test_a_statement_that_runs_too_long_is_a_503_and_gives_its_connection_back(
    settings: Settings, conn: psycopg.Connection, db_url: str
) -> None:
    key = make_key(conn, Role.COORDINATOR)
    impatient = _small(settings, db_pool_max=1, api_statement_timeout_ms=300)
    with serve(impatient) as url, psycopg.connect(db_url) as blocker:
        blocker.execute("LOCK TABLE companies IN ACCESS EXCLUSIVE MODE")  # /companies waits on it
        started = time.monotonic()
        stuck = httpx.get(f"{url}/companies", headers=bearer(key), timeout=CLIENT_TIMEOUT)
        assert stuck.status_code == 503, stuck.text
        assert stuck.json()["detail"] == "the request took too long; try again in a moment"
        assert stuck.headers["Retry-After"] == "1"
        assert time.monotonic() - started < NOT_HUNG
        blocker.rollback()
        # The one connection came back to the pool, rolled back and usable.
        assert httpx.get(f"{url}/companies", headers=bearer(key)).status_code == 200


def test_a_download_being_read_slowly_holds_no_database_connection(
    settings: Settings, conn: psycopg.Connection
) -> None:
    from tests.evidence.seed import constructed_trial

    seeded = constructed_trial(conn)
    conn.execute(  # 200,000 room readings: a CSV far larger than the socket's buffers
        "INSERT INTO telemetry_readings (ts, device_id, metric, value, trial_id, site_id, unit_id)"
        " SELECT now() - make_interval(secs => i), %s, 'movement', i %% 7, %s, %s, %s"
        " FROM generate_series(1, 200000) i",
        (seeded.room_device, seeded.trial_id, seeded.site_id, seeded.unit_ids[0]),
    )
    conn.commit()
    evaluator = make_key(conn, Role.EVALUATOR)
    with serve(_small(settings, db_pool_max=1)) as url, httpx.Client(base_url=url) as client:
        path = f"/trials/{seeded.trial_id}/exports/readings.csv"
        with client.stream("GET", path, headers=bearer(evaluator), timeout=60) as download:
            assert download.status_code == 200
            first = next(download.iter_bytes())  # then the reader stalls, mid-download
            assert first.startswith(b"ts,")
            # The only connection is free: the export was spooled before the first byte left
            # (held, it would leave this request a 503 after the queue's half second).
            other = httpx.get(f"{url}/trials", headers=bearer(evaluator), timeout=CLIENT_TIMEOUT)
            assert other.status_code == 200
