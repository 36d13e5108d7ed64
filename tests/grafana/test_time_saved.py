"""The dashboards' time saved and the API's are one number for the same trial and range.

The seed's night-check events run from 01:07 to 10:07 UTC on its day. Here trial A's baseline
runs up to 04:00 that day and the trial from then on, so the events of 01:00–03:59 belong to the
baseline and must count neither in the API nor on any dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import psycopg
import pytest

from access.schemas import OPERATOR, ApiKeyCreate, Role
from access.service import create_key
from infra.db import connect
from tests.grafana.conftest import BASELINE_MINUTES, WITH_TECH_MINUTES, Seed
from tests.grafana.test_dashboards import run_dashboard

TRIAL_STARTS_AT = timedelta(hours=4)
SAVED_PER_OCCURRENCE = Decimal(sum(BASELINE_MINUTES) - sum(WITH_TECH_MINUTES)) / 5
# Night checks at 04:07 … 10:07: seven by P-001 (company_dashboards consent), four by P-002
# (telemetry consent only, 04:07 … 07:07). Time saved is a trial-level figure: all eleven count,
# for the company as for the coordinator.
ALL_TRIAL_EVENTS = 7 + 4


@pytest.fixture
def baseline_then_trial(admin: psycopg.Connection, seed: Seed) -> Seed:
    trial_from = seed.day + TRIAL_STARTS_AT
    admin.execute(
        "UPDATE trials SET baseline_from = %s, baseline_until = %s, trial_from = %s WHERE id = %s",
        (seed.day - timedelta(days=5), trial_from, trial_from, seed.trial_a),
    )
    admin.commit()
    return seed


def _key(db_url: str, role: Role, company_id: int | None = None) -> dict[str, str]:
    with connect(db_url) as conn:
        created = create_key(
            conn, OPERATOR, ApiKeyCreate(name=f"t-{role}", role=role, company_id=company_id)
        )
        conn.commit()
    return {"Authorization": f"Bearer {created.key}"}


def _hours(value: object) -> Decimal:
    return Decimal(str(value))


def _whole_trial(seed: Seed) -> tuple[datetime, datetime]:
    """A dashboard range from the baseline's start to now: the whole of both periods."""
    return seed.day - timedelta(days=5), datetime.now(UTC)


def test_company_dashboard_and_api_give_the_coordinators_hours_without_the_baseline(
    baseline_then_trial: Seed,
    db_url: str,
    http: httpx.Client,
    login: Callable[[str, str], psycopg.Connection],
) -> None:
    seed = baseline_then_trial
    company_a = seed.access.companies[0]
    conn = login(company_a.login.role, company_a.login.password)
    panels = run_dashboard(conn, "company/trial.json", seed, _whole_trial(seed))

    path = f"/trials/{seed.trial_a}/time-saved"
    answer = http.get(path, headers=_key(db_url, Role.COMPANY, seed.company_a))
    assert answer.status_code == 200, answer.text
    api = answer.json()
    coordinators = http.get(path, headers=_key(db_url, Role.COORDINATOR)).json()
    del api["period_until"], coordinators["period_until"]  # now: the trial runs
    assert api == coordinators  # one evidence, whoever reads it
    expected = round(ALL_TRIAL_EVENTS * SAVED_PER_OCCURRENCE / 60, 2)  # 1.39
    assert _hours(coordinators["hours_saved"]) == expected
    [in_range] = panels["Time saved in range (hours, 95 % interval)"]
    assert in_range["hours saved"] == expected  # the company's panel: the coordinator's figure

    # Day by day too: the API's minutes per day are the panel's hours × 60.
    [activity] = api["activities"]
    assert activity["occurrences"] == ALL_TRIAL_EVENTS
    per_day = panels["Time saved per day (hours, 95 % interval)"]
    assert [round(row["hours saved"] * 60, 2) for row in per_day] == [
        _hours(day["minutes_saved"]) for day in activity["per_day"]
    ]
    coordinator = seed.access.coordinator
    portfolio = run_dashboard(
        login(coordinator.role, coordinator.password),
        "coordinator/portfolio.json",
        seed,
        _whole_trial(seed),
    )
    by_trial = {
        r["trial"]: r["hours saved"] for r in portfolio["Time saved in range by trial (hours)"]
    }
    assert by_trial["Bed sensors"] == in_range["hours saved"]


def test_coordinator_portfolio_and_api_give_the_same_hours_without_the_baseline(
    baseline_then_trial: Seed,
    db_url: str,
    http: httpx.Client,
    login: Callable[[str, str], psycopg.Connection],
) -> None:
    seed = baseline_then_trial
    coordinator = seed.access.coordinator
    conn = login(coordinator.role, coordinator.password)
    portfolio = run_dashboard(conn, "coordinator/portfolio.json", seed, _whole_trial(seed))
    by_trial = {
        row["trial"]: row["hours saved"]
        for row in portfolio["Time saved in range by trial (hours)"]
    }

    headers = _key(db_url, Role.COORDINATOR)
    api = http.get(f"/trials/{seed.trial_a}/time-saved", headers=headers).json()
    expected = round(ALL_TRIAL_EVENTS * SAVED_PER_OCCURRENCE / 60, 2)  # 1.39
    assert _hours(api["hours_saved"]) == expected
    assert by_trial["Bed sensors"] == expected
    listed = http.get("/portfolio", headers=headers).json()["items"]
    assert {i["trial_id"]: _hours(i["hours_saved"]) for i in listed}[seed.trial_a] == expected


def test_no_time_is_saved_before_the_trial_starts(
    admin: psycopg.Connection, seed: Seed, login: Callable[[str, str], psycopg.Connection]
) -> None:
    admin.execute(
        "UPDATE trials SET status = 'baseline', trial_from = now() + interval '1 day'"
        " WHERE id = %s",
        (seed.trial_a,),
    )
    admin.commit()
    company_a = seed.access.companies[0]
    panels = run_dashboard(
        login(company_a.login.role, company_a.login.password), "company/trial.json", seed
    )
    assert panels["Time saved in range (hours, 95 % interval)"] == [
        {"hours saved": None, "low": None, "high": None}
    ]
    assert panels["Time saved per day (hours, 95 % interval)"] == []
