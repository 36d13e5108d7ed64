"""Every dashboard is well formed, and every panel's SQL, expanded as Grafana would, runs as the
role Grafana logs in as and gives the numbers the seeded data says it must."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from grafana.macros import ALL_VALUE, QueryContext, Variable, expand
from grafana.plan import (
    COMPANY_DASHBOARDS,
    COMPANY_DATASOURCE_UID,
    COORDINATOR_DASHBOARDS,
    COORDINATOR_DATASOURCE_UID,
    DASHBOARDS_DIR,
    DATASOURCE_TYPE,
)
from infra.migrate import timescale_enabled
from tests.grafana.conftest import (
    A_CONSENTED_EVENTS,
    A_READINGS,
    A_ROOM_EVENTS,
    A_UNCONSENTED_EVENTS,
    B_EVENTS,
    BASELINE_MINUTES,
    WITH_TECH_MINUTES,
    Seed,
)

PANEL_TYPES = {
    "timeseries",
    "barchart",
    "stat",
    "table",
    "bargauge",
    "piechart",
    "gauge",
    "text",
    "row",
}
OUR_UIDS = {COMPANY_DATASOURCE_UID, COORDINATOR_DATASOURCE_UID}
RAW_TELEMETRY = re.compile(r"\btelemetry_(readings|events)\b")
Rows = list[dict[str, Any]]


def load(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARDS_DIR / name).read_text())


ALL_DASHBOARDS = sorted(str(p.relative_to(DASHBOARDS_DIR)) for p in DASHBOARDS_DIR.glob("*/*.json"))


@pytest.mark.parametrize("name", ALL_DASHBOARDS)
def test_dashboard_is_well_formed_for_grafana(name: str) -> None:
    board = load(name)
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    variables = {v["name"] for v in board["templating"]["list"]}
    all_sql = [v["query"] for v in board["templating"]["list"]]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] in OUR_UIDS
        for target in panel["targets"]:
            assert target["datasource"] == {
                "type": DATASOURCE_TYPE,
                "uid": panel["datasource"]["uid"],
            }
            assert target["format"] in {"time_series", "table"}
            assert target["rawQuery"] and target["rawSql"].strip()
            assert not RAW_TELEMETRY.search(target["rawSql"]), (
                "read rollups and views, not raw telemetry"
            )
            used = set(re.findall(r"\$\{?(\w+)", target["rawSql"])) - {"__interval"}
            assert {u for u in used if not u.startswith("__")} <= variables, panel["title"]
            all_sql.append(target["rawSql"])
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] in OUR_UIDS
        others = " ".join(s for s in all_sql if s != variable["query"])
        assert re.search(rf"\$\{{?{variable['name']}\b", others), f"${variable['name']} unused"
    if "ldl-company" in json.dumps(board):
        assert {"trial", "site", "unit"} <= variables


def test_company_dashboards_use_only_the_company_data_source() -> None:
    for name in COMPANY_DASHBOARDS:
        uids = set(re.findall(r'"uid": "(ldl-[a-z]+)"', json.dumps(load(name))))
        assert uids == {COMPANY_DATASOURCE_UID}
    for name in COORDINATOR_DASHBOARDS:
        panels = load(name)["panels"]
        assert {p["datasource"]["uid"] for p in panels} == {COORDINATOR_DATASOURCE_UID}


# ----------------------------------------------------------------------- running panels
def run(conn: psycopg.Connection, sql: str) -> Rows:
    cursor = conn.execute(sql)
    names = [c.name for c in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def resolve_variables(
    conn: psycopg.Connection, board: dict[str, Any], context: QueryContext
) -> dict[str, Variable]:
    """Run each variable's query as the role (in order, like Grafana) and select "All"."""
    resolved: dict[str, Variable] = {}
    for variable in board["templating"]["list"]:
        rows = run(conn, expand(variable["query"], context, resolved))
        options = [str(r["__value"]) for r in rows]
        resolved[variable["name"]] = Variable(
            ALL_VALUE, multi=True, include_all=True, options=options
        )
    return resolved


def run_dashboard(
    conn: psycopg.Connection,
    name: str,
    seed: Seed,
    time_range: tuple[datetime, datetime] | None = None,
) -> dict[str, Rows]:
    """Every panel's rows, for the seed's time range unless another is given."""
    board = load(name)
    start, end = time_range or (seed.time_from, seed.time_to)
    context = QueryContext(start, end, timescaledb=timescale_enabled(conn))
    variables = resolve_variables(conn, board, context)
    return {
        panel["title"]: run(conn, expand(panel["targets"][0]["rawSql"], context, variables))
        for panel in board["panels"]
    }


def total(rows: Rows, column: str) -> Decimal:
    return sum((Decimal(r[column]) for r in rows if r[column] is not None), Decimal(0))


def test_company_dashboard_shows_its_own_consented_data_as_its_role(
    seed: Seed, login: Callable[[str, str], psycopg.Connection]
) -> None:
    company_a = seed.access.companies[0]
    conn = login(company_a.login.role, company_a.login.password)
    panels = run_dashboard(conn, "company/trial.json", seed)

    # The trial's own figures count every stored event, P-002's too (telemetry consent only) ...
    night_checks = A_CONSENTED_EVENTS + A_UNCONSENTED_EVENTS
    all_events = night_checks + A_ROOM_EVENTS
    assert panels["Events in range"] == [{"events": all_events, "readings": A_READINGS}]
    assert total(panels["Usage over time"], "events") == all_events
    assert total(panels["Usage over time"], "readings") == A_READINGS
    assert total(panels["Activity occurrences per day"], "occurrences") == night_checks
    # ... a breakdown by unit only the residents who consented to company dashboards.
    by_hour = panels["Usage by hour of day and unit"]
    assert total(by_hour, "events") == A_CONSENTED_EVENTS + A_ROOM_EVENTS
    assert {r["unit"] for r in by_hour} == {"Afdeling 1", "(whole care home)"}

    saved_per_occurrence = Decimal(sum(BASELINE_MINUTES) - sum(WITH_TECH_MINUTES)) / 5
    [saved] = panels["Time saved in range (hours, 95 % interval)"]
    assert saved["hours saved"] == round(night_checks * saved_per_occurrence / 60, 2)
    assert saved["low"] < saved["hours saved"] < saved["high"]
    cumulative = panels["Time saved, cumulative (hours, 95 % interval)"]
    assert cumulative[-1]["hours saved"] == total(
        panels["Time saved per day (hours, 95 % interval)"], "hours saved"
    )
    [stats] = panels["Minutes saved per occurrence (time-motion observations)"]
    assert stats["saved min"] == saved_per_occurrence

    health = panels["Device health"]
    assert {r["device"] for r in health} == {"bed-a1", "bed-a2", "bed-a3"}
    assert panels["Devices online / offline"] == [{"online": 1, "offline": 2}]
    assert [r["battery"] for r in panels["Battery"]] == [14, 81]
    [completeness] = panels["Data completeness in range"]
    assert 0 < completeness["completeness"] < 100


def test_company_b_sees_only_its_own_trial(
    seed: Seed, login: Callable[[str, str], psycopg.Connection]
) -> None:
    company_b = seed.access.companies[1]
    panels = run_dashboard(
        login(company_b.login.role, company_b.login.password), "company/trial.json", seed
    )
    assert panels["Events in range"] == [{"events": B_EVENTS, "readings": 0}]
    assert {r["device"] for r in panels["Device health"]} == {"bed-b1"}


def test_time_saved_interval_matches_the_evaluation_module(
    seed: Seed, login: Callable[[str, str], psycopg.Connection]
) -> None:
    from evidence.evaluation import sample_stats, welch_difference

    baseline = sample_stats([Decimal(v) for v in BASELINE_MINUTES])
    with_technology = sample_stats([Decimal(v) for v in WITH_TECH_MINUTES])
    assert baseline is not None and with_technology is not None
    expected = welch_difference(baseline, with_technology)
    company_a = seed.access.companies[0]
    conn = login(company_a.login.role, company_a.login.password)
    [row] = run(conn, "SELECT saved_low, saved_high FROM activity_time_stats")
    assert abs(row["saved_low"] - expected.low) <= Decimal("0.02")
    assert abs(row["saved_high"] - expected.high) <= Decimal("0.02")


def test_coordinator_dashboards_show_all_trials_and_data_quality(
    seed: Seed, login: Callable[[str, str], psycopg.Connection]
) -> None:
    coordinator = seed.access.coordinator
    conn = login(coordinator.role, coordinator.password)
    portfolio = run_dashboard(conn, "coordinator/portfolio.json", seed)
    all_events = A_CONSENTED_EVENTS + A_UNCONSENTED_EVENTS + A_ROOM_EVENTS + B_EVENTS
    assert total(portfolio["Events per day by trial"], "events") == all_events
    assert {r["trial"] for r in portfolio["Trials"]} == {"Bed sensors", "Robots"}
    assert portfolio["Trials by status"] == [
        {"preparing": 0, "running": 2, "evaluating": 0, "ended": 0}
    ]

    quality = run_dashboard(conn, "coordinator/data_quality.json", seed)
    assert total(quality["Dead letters by reason"], "dead letters") == 5
    assert {r["reason"]: r["dead letters"] for r in quality["Dead letters in range"]} == {
        "bad_json": 3,
        "unknown_device": 2,
    }
    assert total(quality["Missing messages (sequence gaps)"], "missing messages") == 4
    assert total(quality["Readings dropped by the consent gate"], "dropped") == 5
    # ingest lag reads the last two days only; the seeded rows arrived just now
    assert quality["Ingest lag, 95th percentile (last two days at most)"] == []
