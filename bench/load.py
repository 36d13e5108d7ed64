"""Load benchmark: the API and the web app under 1 to 500 concurrent clients (issue 22).

One `ldl api` process (its own log, so PoolTimeout lines can be counted) on a scratch database
with the demo lab and two weeks of telemetry; an async httpx client runs a mix of a coordinator's
and a company's reads over the API and the web app, and coordinators' writes. A 503 is an answer
(shed load): the client waits its Retry-After and tries again, so every write is eventually
committed, and the run checks that each one is readable afterwards. Per level: throughput,
latency of every answer (p50/p99, 503s included, they are answers too), 503s, timeouts, other
errors, and how long the next single request takes once the burst is over.

python -m bench load [--path plain|timescale] [--workers N] [--levels 1,10,50,100,200,500]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from access.accounts import create_user
from access.schemas import Role, UserCreate
from bench.common import machine, reader_keys, scratch_database, write_results
from bench.evaluation import load_telemetry
from evidence.rollup_scheduler import run_maintenance_once
from infra.db import connection
from infra.migrate import TimescaleMode
from ldl.seed import seed_demo_lab

CLIENT_TIMEOUT = 10.0
CLIENT_PROCESSES = 4
PASSWORD = "bench load password"


def prepare(url: str) -> dict[str, Any]:
    """The demo lab, 14 days of one-minute telemetry, keys and accounts for both readers."""
    with connection(url) as conn:
        seed_demo_lab(conn)
        conn.commit()
        start = datetime.now(UTC) - timedelta(days=14)
        load_telemetry(conn, start, 14, 60)
        trial, company = conn.execute(
            "SELECT id, company_id FROM trials ORDER BY id LIMIT 1"
        ).fetchone()  # type: ignore[misc]
        keys = reader_keys(conn, company, "load")
        conn.commit()
        # The rollups, refreshed as `ldl ingest` refreshes them on either path.
        run_maintenance_once(url, 730, retention=False)
        accounts = {"coordinator": "load-koordinator@kolding.dk", "company": "load-firma@lab.dk"}
        for role, email in accounts.items():
            create_user(
                conn,
                UserCreate(
                    email=email,
                    role=Role(role),
                    company_id=company if role == "company" else None,
                    password=PASSWORD,
                ),
            )
    return {"trial": trial, "keys": keys, "accounts": accounts}


def request_mix(trial: int) -> list[tuple[str, str, str, int]]:
    """(who, method, path, weight): a coordinator's 15 reads, a company's 5, writes, web pages."""
    t = f"/trials/{trial}"
    coordinator_reads = [
        "/trials", t, "/portfolio", "/companies", "/sites", "/devices",
        f"{t}/usage?granularity=day", f"{t}/time-saved", f"{t}/business-case",
        f"{t}/devices/health", f"{t}/data-completeness", f"{t}/success-criteria",
        f"{t}/observations", f"{t}/participants", "/dead-letters",
    ]  # fmt: skip
    company_reads = ["/trials", t, f"{t}/usage?granularity=day", f"{t}/time-saved",
                     f"{t}/devices/health"]  # fmt: skip
    return (
        [("coordinator", "GET", path, 4) for path in coordinator_reads]
        + [("company", "GET", path, 4) for path in company_reads]
        + [("coordinator", "POST", "/companies", 12)]
        + [("web:coordinator", "GET", "/app/", 6), ("web:coordinator", "GET", f"/app{t}", 6)]
        + [("web:company", "GET", f"/app{t}", 6)]
    )


def sign_in(base: str, email: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/app/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, "no CSRF token on the sign-in page"
        answer = client.post(
            "/app/login",
            data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert answer.status_code == 303, answer.text[:300]
        return dict(client.cookies)


class Level:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.server_ms: list[float] = []
        self.by_path: dict[str, list[float]] = {}
        self.served = 0
        self.shed = 0
        self.timeouts = 0
        self.errors: list[str] = []
        self.written: list[str] = []


def run_level(
    base: str, clients: int, total: int, mix: list[tuple[str, str, str, int]], auth: dict[str, Any]
) -> tuple[Level, float]:
    """The level's clients spread over processes, so the load generator's own Python is not what
    is measured (one process of 200 httpx clients queued requests for seconds on this machine)."""
    processes = min(CLIENT_PROCESSES, clients)
    shares = [(clients + p) // processes for p in range(processes)]
    totals = [(total + p) // processes for p in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        parts = list(
            pool.map(
                _run_share,
                [
                    (base, n, t, mix, auth, f"{clients}-{p}")
                    for p, (n, t) in enumerate(zip(shares, totals, strict=True))
                ],
            )
        )
    level = Level()
    for part, _ in parts:
        for name, value in vars(part).items():
            if isinstance(value, list):
                getattr(level, name).extend(value)
            elif isinstance(value, dict):
                for path, samples in value.items():
                    level.by_path.setdefault(path, []).extend(samples)
            else:
                setattr(level, name, getattr(level, name) + value)
    return level, max(elapsed for _, elapsed in parts)


def _run_share(args: tuple[Any, ...]) -> tuple[Level, float]:
    return asyncio.run(_clients(*args))


async def _clients(
    base: str,
    clients: int,
    total: int,
    mix: list[tuple[str, str, str, int]],
    auth: dict[str, Any],
    tag: str,
) -> tuple[Level, float]:
    level = Level()
    weights = [weight for *_, weight in mix]
    names = (f"Load {tag}-{n} ApS" for n in itertools.count())
    remaining = iter(range(total))
    # Idle connections expire before the server's 5 s keep-alive does, so a request never races
    # the server closing the connection it is sent on (a ReadError, not the service's answer).
    limits = httpx.Limits(
        max_connections=clients + 10, max_keepalive_connections=clients + 10, keepalive_expiry=2
    )
    async with httpx.AsyncClient(base_url=base, timeout=CLIENT_TIMEOUT, limits=limits) as http:

        async def one_client(seed: int) -> None:
            rng = random.Random(seed)
            for _ in remaining:
                who, method, path, _ = rng.choices(mix, weights)[0]
                body = {"name": next(names)} if method == "POST" else None
                while True:  # a 503 is answered quickly: wait its Retry-After and try again
                    began = time.perf_counter()
                    try:
                        response = await http.request(
                            method,
                            path,
                            json=body,
                            headers=auth[who].get("headers"),
                            cookies=auth[who].get("cookies"),
                        )
                    except httpx.TimeoutException:
                        level.timeouts += 1
                        break
                    except httpx.HTTPError as exc:
                        level.errors.append(f"{method} {path}: {type(exc).__name__}")
                        break
                    level.latencies.append(time.perf_counter() - began)
                    timing = response.headers.get("server-timing", "app;dur=nan")
                    level.server_ms.append(float(timing.partition("dur=")[2]))
                    level.by_path.setdefault(f"{who} {method} {path}", []).append(
                        level.latencies[-1]
                    )
                    if response.status_code == 503:
                        level.shed += 1
                        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                        continue
                    if response.status_code >= 400:
                        level.errors.append(f"{method} {path}: {response.status_code}")
                    else:
                        level.served += 1
                        if body:
                            level.written.append(body["name"])
                    break

        began = time.perf_counter()
        await asyncio.gather(*(one_client(n) for n in range(clients)))
        elapsed = time.perf_counter() - began
    return level, elapsed


def summarise(clients: int, level: Level, elapsed: float, recovery_ms: float) -> dict[str, Any]:
    ordered = sorted(level.latencies) or [float("nan")]

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1)

    return {
        "clients": clients,
        "answers": len(level.latencies),
        "served": level.served,
        "req_per_s": round(len(level.latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "server_p50_ms": round(statistics.median(level.server_ms or [float("nan")]), 1),
        "server_p99_ms": round(
            sorted(level.server_ms or [float("nan")])[int(0.99 * max(len(level.server_ms) - 1, 0))],
            1,
        ),
        "shed_503": level.shed,
        "timeouts": level.timeouts,
        "errors": len(level.errors),
        "error_samples": level.errors[:5],
        "writes_committed": len(level.written),
        "next_request_after_burst_ms": recovery_ms,
        "median_ms_by_path": {
            path: round(statistics.median(samples) * 1000, 1)
            for path, samples in sorted(level.by_path.items())
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", choices=("plain", "timescale"), default="plain")
    parser.add_argument("--levels", default="1,10,50,100,200,500")
    parser.add_argument("--requests", type=int, default=400, help="per level (at least 2/client)")
    parser.add_argument("--port", type=int, default=18766)
    parser.add_argument("--workers", type=int, default=1, help="ldl api --workers")
    args = parser.parse_args(argv)
    levels = [int(n) for n in args.levels.split(",")]
    results: dict[str, Any] = {
        "machine": machine(),
        "path": args.path,
        "api_workers": args.workers,
        "levels": [],
    }
    mode: TimescaleMode = "on" if args.path == "timescale" else "off"
    with (
        scratch_database("ldl_bench_load", timescale=mode) as url,
        tempfile.TemporaryDirectory(prefix="ldl-bench-load-") as scratch,
    ):
        print(f"seeding the demo lab and 14 days of telemetry ({args.path})", flush=True)
        seeded = prepare(url)
        log_path = Path(scratch) / "api.log"
        env = {**os.environ, "LDL_DATABASE_URL": url, "LDL_API_PORT": str(args.port),
               "LDL_ENVIRONMENT": "test", "LDL_DATA_DIR": scratch}  # fmt: skip
        base = f"http://127.0.0.1:{args.port}"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "ldl", "api", "--workers", str(args.workers)],
                env=env,
                stdout=log,
                stderr=log,
            )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the API did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.1)
            auth: dict[str, Any] = {
                "coordinator": {"headers": {"Authorization": f"Bearer {seeded['keys']['coordinator']}"}},
                "company": {"headers": {"Authorization": f"Bearer {seeded['keys']['company']}"}},
                "web:coordinator": {"cookies": sign_in(base, seeded["accounts"]["coordinator"])},
                "web:company": {"cookies": sign_in(base, seeded["accounts"]["company"])},
            }  # fmt: skip
            mix = request_mix(seeded["trial"])
            written: list[str] = []
            for clients in levels:
                total = max(args.requests, 2 * clients)
                level, elapsed = run_level(base, clients, total, mix, auth)
                began = time.perf_counter()
                after = httpx.get(f"{base}/trials", headers=auth["coordinator"]["headers"])
                recovery_ms = round((time.perf_counter() - began) * 1000, 1)
                assert after.status_code == 200, after.text
                row = summarise(clients, level, elapsed, recovery_ms)
                results["levels"].append(row)
                written += level.written
                print(
                    f"{clients:>4} clients: {row['req_per_s']:>6} req/s  p50 {row['p50_ms']} ms"
                    f"  p99 {row['p99_ms']} ms (server {row['server_p50_ms']} / {row['server_p99_ms']})"
                    f"  503 {row['shed_503']}  timeouts"
                    f" {row['timeouts']}  errors {row['errors']}  next {recovery_ms} ms",
                    flush=True,
                )
            listed = httpx.get(
                f"{base}/companies",
                params={"limit": 500},
                headers=auth["coordinator"]["headers"],
                timeout=30,
            ).json()
            names: set[str] = {c["name"] for c in listed["items"]}
            offset = 500
            while offset < listed["total"]:
                more = httpx.get(
                    f"{base}/companies",
                    params={"limit": 500, "offset": offset},
                    headers=auth["coordinator"]["headers"],
                ).json()
                names |= {c["name"] for c in more["items"]}
                offset += 500
            results["writes_committed"] = len(written)
            results["writes_readable_afterwards"] = len(set(written) & names)
        finally:
            server.terminate()
            server.wait(10)
        server_log = log_path.read_text()
    results["pool_timeout_lines_in_server_log"] = server_log.count("PoolTimeout")
    results["tracebacks_in_server_log"] = server_log.count("Traceback")
    upto_200 = [row for row in results["levels"] if row["clients"] <= 200]
    results["targets_met"] = {
        "no_timeouts_or_errors": all(r["timeouts"] == 0 and r["errors"] == 0 for r in results["levels"]),
        "p99_under_1s_up_to_200_clients": all(r["p99_ms"] < 1000 for r in upto_200),
        "every_write_readable": results["writes_readable_afterwards"] == results["writes_committed"],
        "no_pool_timeout": results["pool_timeout_lines_in_server_log"] == 0,
        "next_request_under_200ms": all(
            r["next_request_after_burst_ms"] < 200 for r in results["levels"]
        ),
    }  # fmt: skip
    write_results(f"load-{args.path}-{args.workers}-worker", results)
    print(f"writes committed {results['writes_committed']}, readable afterwards"
          f" {results['writes_readable_afterwards']}; PoolTimeout lines"
          f" {results['pool_timeout_lines_in_server_log']}; targets {results['targets_met']}")  # fmt: skip
    return results


if __name__ == "__main__":
    main()
