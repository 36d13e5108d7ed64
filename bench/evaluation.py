"""Evidence benchmark: the usage and time-saved endpoints over a month of telemetry.

Issue 6 asks for p95 < 100 ms over 30 days of telemetry from 200 devices (one reading per device
every 10 s: 51.8 million readings), with the raw-query time stated beside it. The telemetry is
generated inside PostgreSQL (generate_series), the rollups are refreshed the way `ldl ingest`
does, and the endpoints are called over real HTTP (uvicorn on a free port).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import uvicorn

from bench.common import machine, reader_keys, scratch_database, write_results
from evidence.rollup_scheduler import run_maintenance_once
from infra.settings import Settings
from ldl.app import create_app


def seed(conn: psycopg.Connection, devices: int, days: float) -> dict[str, Any]:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    company = conn.execute("INSERT INTO companies (name) VALUES ('Bench') RETURNING id").fetchone()[
        0
    ]  # type: ignore[index]
    site = conn.execute(
        "INSERT INTO sites (name, municipality) VALUES ('Bench', 'Kolding') RETURNING id"
    ).fetchone()[0]  # type: ignore[index]
    unit = conn.execute(
        "INSERT INTO units (site_id, name) VALUES (%s, 'A') RETURNING id", (site,)
    ).fetchone()[0]  # type: ignore[index]
    trial = conn.execute(
        "INSERT INTO trials (company_id, title, product, collaboration_form, status,"
        " baseline_from, baseline_until, trial_from, staff_hourly_cost)"
        " VALUES (%s, 'Bench', 'Beds', 'opi', 'running', %s, %s, %s, 385) RETURNING id",
        (company, start - timedelta(days=30), start, start),
    ).fetchone()[0]  # type: ignore[index]
    conn.execute("INSERT INTO trial_sites VALUES (%s, %s)", (trial, site))
    activity = conn.execute(
        "INSERT INTO activities (trial_id, name, event_type) VALUES (%s, 'Night check',"
        " 'night_check_avoided') RETURNING id",
        (trial,),
    ).fetchone()[0]  # type: ignore[index]
    for phase, minutes in (("baseline", 6.0), ("intervention", 1.5)):
        conn.execute(
            "INSERT INTO observations (trial_id, activity_id, phase, duration_minutes,"
            " staff_role, observed_at) SELECT %s, %s, %s, %s + (i %% 5) * 0.2, 'sosu', %s"
            " FROM generate_series(1, 20) i",
            (trial, activity, phase, minutes, start),
        )
    conn.execute(
        "INSERT INTO devices (id, device_type, company_id, registered_at)"
        " SELECT format('bench-%%s', lpad(i::text, 4, '0')), 'sensor_bed', %s, %s"
        " FROM generate_series(1, %s) i",
        (company, start - timedelta(days=1), devices),
    )
    worn = devices // 4  # a quarter are worn by consenting participants: the consent join counts
    conn.execute(
        "INSERT INTO participants (trial_id, pseudonym, site_id, unit_id)"
        " SELECT %s, format('P-%%s', i), %s, %s FROM generate_series(1, %s) i",
        (trial, site, unit, worn),
    )
    conn.execute(
        "INSERT INTO consents (participant_id, version, scopes, given_by, evidence_ref, valid_from)"
        " SELECT id, 1, '{telemetry,company_dashboards,evaluation}', 'participant', 'bench', %s"
        " FROM participants",
        (start - timedelta(days=1),),
    )
    conn.execute(
        "INSERT INTO deployments (device_id, trial_id, site_id, unit_id, participant_id, valid_from)"
        " SELECT d.id, %s, %s, %s, p.id, %s FROM devices d"
        " LEFT JOIN participants p ON p.pseudonym = format('P-%%s', ltrim(substr(d.id, 7), '0'))",
        (trial, site, unit, start - timedelta(days=1)),
    )
    conn.commit()
    return {"trial": trial, "company": company, "start": start}


def load_telemetry(conn: psycopg.Connection, start: datetime, days: float, every_s: int) -> int:
    """One heart-rate reading per device every `every_s` seconds; a few events per night."""
    end = start + timedelta(days=days)
    devices = [d for (d,) in conn.execute("SELECT device_id FROM deployments ORDER BY 1")]
    for first in range(0, len(devices), 20):
        conn.execute(
            "INSERT INTO telemetry_readings (ts, device_id, metric, value, trial_id, site_id,"
            " unit_id, participant_id)"
            " SELECT ts, d.device_id, 'heart_rate', 55 + random() * 30, d.trial_id, d.site_id,"
            " d.unit_id, d.participant_id FROM deployments d"
            " CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz - interval '1 ms',"
            " make_interval(secs => %s)) ts WHERE d.device_id = ANY(%s)",
            (start, end, every_s, devices[first : first + 20]),
        )
        conn.commit()
        print(f"  readings for {min(first + 20, len(devices))}/{len(devices)} devices", flush=True)
    conn.execute(
        "INSERT INTO telemetry_events (ts, device_id, event_type, trial_id, site_id, unit_id,"
        " participant_id)"
        " SELECT day + interval '22 hours' + n * interval '1 hour', d.device_id,"
        " 'night_check_avoided', d.trial_id, d.site_id, d.unit_id, d.participant_id"
        " FROM deployments d CROSS JOIN generate_series(%s::timestamptz, %s::timestamptz"
        " - interval '1 day', interval '1 day') day CROSS JOIN generate_series(0, 4) n",
        (start, end),
    )
    conn.commit()
    return int(conn.execute("SELECT count(*) FROM telemetry_readings").fetchone()[0])  # type: ignore[index]


def timed(call: Any, repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
        "max_ms": round(samples[-1], 1),
        "n": repeat,
    }


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--every", type=int, default=10, help="seconds between readings")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {
        "machine": machine(),
        "devices": args.devices,
        "days": args.days,
        "reading_every_s": args.every,
    }
    with scratch_database("ldl_bench_eval") as url:
        with psycopg.connect(url) as conn:
            seeded = seed(conn, args.devices, args.days)
            began = time.perf_counter()
            results["readings"] = load_telemetry(conn, seeded["start"], args.days, args.every)
            results["load_seconds"] = round(time.perf_counter() - began, 1)
            conn.commit()
            began = time.perf_counter()
            # As `ldl ingest` refreshes them: TimescaleDB's outside a transaction block.
            run_maintenance_once(url, 730, retention=False)
            results["rollup_refresh_seconds"] = round(time.perf_counter() - began, 1)
            keys = reader_keys(conn, seeded["company"], "bench")
            conn.commit()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            trial = seeded["trial"]
            raw = (
                "SELECT date_trunc('hour', ts), count(*), count(DISTINCT device_id),"
                " count(DISTINCT participant_id) FROM telemetry_readings"
                " WHERE trial_id = %s AND ts >= %s GROUP BY 1"
            )
            results["raw_hourly_usage_query"] = timed(
                lambda: conn.execute(raw, (trial, seeded["start"])).fetchall(), 3
            )
        settings = Settings(environment="test", database_url=url, db_pool_max=4)
        port = 18765
        server = _Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, name="bench-api", daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                for who, key in keys.items():
                    headers = {"Authorization": f"Bearer {key}"}
                    for name, path in (
                        ("usage_hourly_30d", f"/trials/{trial}/usage?granularity=hour&limit=500"),
                        ("usage_daily_30d", f"/trials/{trial}/usage?granularity=day"),
                        (
                            "usage_hourly_by_device",
                            f"/trials/{trial}/usage?granularity=hour&level=device&limit=500",
                        ),
                        ("time_saved", f"/trials/{trial}/time-saved"),
                    ):

                        def call(path: str = path, headers: dict[str, str] = headers) -> None:
                            response = http.get(path, headers=headers)
                            response.raise_for_status()

                        call()  # warm
                        results[f"{who}:{name}"] = timed(call, args.repeat)
        finally:
            server.should_exit = True
            thread.join(10)
    # The target is for the usage and time-saved answers; the per-device hourly drill-down over a
    # whole month (devices x 720 rows) is reported beside them, not counted.
    endpoint_p95 = [v["p95_ms"] for k, v in results.items() if ":" in k and "by_device" not in k]
    results["target_p95_under_100ms"] = max(endpoint_p95) < 100
    write_results("evaluation", results)
    for key, value in results.items():
        print(f"{key}: {value}")
    return results


if __name__ == "__main__":
    main()
