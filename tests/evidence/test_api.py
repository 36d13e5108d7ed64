"""The evaluation over real HTTP: access, exports under consent, erase, report, portfolio."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import httpx
import psycopg
import pytest

from access.schemas import OPERATOR, ApiKeyCreate, Role
from access.service import create_key
from evidence.repository import purge_participant_rollups
from tests.evidence.seed import T0, Seeded, constructed_trial, device, reading, refresh
from trials.consent import ConsentPeriod, Scope, scope_active


def _key(conn: psycopg.Connection, role: Role, company_id: int | None = None) -> dict[str, str]:
    created = create_key(
        conn, OPERATOR, ApiKeyCreate(name=f"t-{role}", role=role, company_id=company_id)
    )
    conn.commit()
    return {"Authorization": f"Bearer {created.key}"}


@pytest.fixture
def seeded(conn: psycopg.Connection) -> Seeded:
    seeded = constructed_trial(conn)
    refresh(conn)
    conn.commit()
    return seeded


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def test_company_sees_its_own_evidence_and_gets_404_for_another(
    conn: psycopg.Connection, http: httpx.Client, seeded: Seeded
) -> None:
    own, rival = (
        _key(conn, Role.COMPANY, seeded.company_a),
        _key(conn, Role.COMPANY, seeded.company_b),
    )
    t = seeded.trial_id
    for path in ("report", "report.pdf", "usage", "time-saved", "business-case"):
        assert http.get(f"/trials/{t}/{path}", headers=rival).status_code == 404, path
    page = http.get(f"/trials/{t}/report", headers=own)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "Sensor beds at Birkely" in page.text
    assert "P-001" not in page.text  # no pseudonyms in a report
    pdf = http.get(f"/trials/{t}/report.pdf", headers=own)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert http.get(f"/trials/{t}/exports/readings.csv", headers=own).status_code == 403
    assert http.get("/portfolio", headers=own).status_code == 403


def test_time_saved_and_business_case_over_http_to_the_cent(
    conn: psycopg.Connection, http: httpx.Client, seeded: Seeded
) -> None:
    evaluator = _key(conn, Role.EVALUATOR)
    saved = http.get(f"/trials/{seeded.trial_id}/time-saved", headers=evaluator).json()
    night = saved["activities"][0]
    assert night["minutes_saved_per_occurrence_ci95"] == ["3.69", "8.31"]
    assert saved["hours_saved"] == "10.00" and "Welch" in saved["method"]
    case = http.get(f"/trials/{seeded.trial_id}/business-case", headers=evaluator).json()
    assert case["observed"]["value_of_time_saved"] == "3000.00"
    assert case["trial_units_full_year"]["payback_months"] == "6.15"
    assert case["municipality_full_year"]["net_benefit_first_year"] == "237500.00"


def test_usage_reads_rollups_per_day_and_hour(
    conn: psycopg.Connection, http: httpx.Client, seeded: Seeded
) -> None:
    coordinator = _key(conn, Role.COORDINATOR)
    params = {"from": T0.isoformat(), "to": (T0 + timedelta(days=2)).isoformat()}
    daily = http.get(f"/trials/{seeded.trial_id}/usage", headers=coordinator, params=params).json()
    first = daily["items"][0]
    # Local days: the first day starts at 23:00 UTC the evening before T0, so it holds T0's noon.
    assert first["events_by_type"] == {"door_open": 1, "night_check_avoided": 10}
    assert first["readings"] == 4 and first["active_devices"] == 2
    assert first["active_participants"] == 1
    hourly = http.get(
        f"/trials/{seeded.trial_id}/usage",
        headers=coordinator,
        params={**params, "granularity": "hour", "level": "device"},
    ).json()
    assert sum(b["events"] for b in hourly["items"]) == 21
    assert {b["group"] for b in hourly["items"]} == {"bed-1", "door-1"}


def test_usage_pages_in_the_database_add_up_to_the_whole(
    conn: psycopg.Connection, http: httpx.Client, seeded: Seeded
) -> None:
    coordinator = _key(conn, Role.COORDINATOR)
    path = f"/trials/{seeded.trial_id}/usage"
    params = {
        "from": T0.isoformat(),
        "to": (T0 + timedelta(days=2)).isoformat(),
        "granularity": "hour",
        "level": "device",
    }
    whole = http.get(path, headers=coordinator, params={**params, "limit": 500}).json()
    assert whole["total"] == len(whole["items"]) > 6
    pages = [
        http.get(path, headers=coordinator, params={**params, "limit": 3, "offset": at}).json()
        for at in range(0, whole["total"], 3)
    ]
    assert [item for page in pages for item in page["items"]] == whole["items"]
    assert {page["total"] for page in pages} == {whole["total"]}
    past = http.get(path, headers=coordinator, params={**params, "offset": 1000}).json()
    assert past["items"] == [] and past["total"] == whole["total"]


def test_export_holds_only_rows_with_evaluation_consent_at_their_time(
    conn: psycopg.Connection, http: httpx.Client, seeded: Seeded
) -> None:
    # A participant whose evaluation consent covered only days 1–3 of five.
    pid = conn.execute(
        "INSERT INTO participants (trial_id, pseudonym, site_id) VALUES (%s, 'P-002', %s)"
        " RETURNING id",
        (seeded.trial_id, seeded.site_id),
    ).fetchone()[0]
    versions = [
        (1, ["telemetry"], T0 - timedelta(days=30), T0 + timedelta(days=1), "superseded"),
        (
            2,
            ["telemetry", "evaluation"],
            T0 + timedelta(days=1),
            T0 + timedelta(days=3),
            "superseded",
        ),
        (3, ["telemetry"], T0 + timedelta(days=3), None, None),
    ]
    for version, scopes, start, until, ended in versions:
        conn.execute(
            "INSERT INTO consents (participant_id, version, scopes, given_by, evidence_ref,"
            " valid_from, valid_until, ended_by) VALUES (%s, %s, %s, 'participant', 'D', %s, %s, %s)",
            (pid, version, scopes, start, until, ended),
        )
    device(conn, "bed-2", "sensor_bed", seeded.company_a)
    for hour in range(0, 5 * 24, 3):
        reading(
            conn,
            seeded.trial_id,
            seeded.site_id,
            "bed-2",
            T0 + timedelta(hours=hour),
            pid,
            metric="respiration_rate",
        )
        reading(
            conn,
            seeded.trial_id,
            seeded.site_id,
            seeded.room_device,
            T0 + timedelta(hours=hour),
            None,
            metric="movement",
        )
    conn.commit()
    evaluator = _key(conn, Role.EVALUATOR)

    rows = _csv(http.get(f"/trials/{seeded.trial_id}/exports/readings.csv", headers=evaluator))
    periods = [ConsentPeriod(frozenset(s), f, u) for _, s, f, u, _ in versions]
    raw = conn.execute(
        "SELECT ts FROM telemetry_readings WHERE participant_id = %s ORDER BY ts", (pid,)
    ).fetchall()
    allowed = [ts for (ts,) in raw if scope_active(periods, Scope.EVALUATION, ts)]
    exported = sorted(r["ts"] for r in rows if r["metric"] == "respiration_rate")
    assert exported == [ts.isoformat() for ts in allowed] and len(allowed) == 16
    assert sum(r["metric"] == "movement" for r in rows) == 40  # room device: all rows
    assert sum(r["metric"] == "heart_rate" for r in rows) == 8  # P-001 consented throughout
    assert all(re.fullmatch(r"(p_[0-9a-f]{16})?", r["participant"]) for r in rows)
    assert all(re.fullmatch(r"d_[0-9a-f]{16}", r["device"]) for r in rows)
    assert "participant_id" not in rows[0] and "device_id" not in rows[0]

    again = _csv(http.get(f"/trials/{seeded.trial_id}/exports/readings.csv", headers=evaluator))
    first_people = {r["participant"] for r in rows} - {""}
    second_people = {r["participant"] for r in again} - {""}
    assert len(first_people) == 2 and first_people.isdisjoint(second_people)  # per-export key

    audited = conn.execute(
        "SELECT count(*), min(after->>'rows') FROM audit_log WHERE action = 'export.readings'"
        " AND entity_id = %s",
        (str(seeded.trial_id),),
    ).fetchone()
    assert audited == (2, str(len(rows)))
    observations = _csv(
        http.get(f"/trials/{seeded.trial_id}/exports/observations.csv", headers=evaluator)
    )
    assert len(observations) == 18 and "note" not in observations[0]


def test_erased_participant_leaves_no_trace_in_report_exports_or_usage(
    conn: psycopg.Connection, http: httpx.Client, seeded: Seeded
) -> None:
    for table in ("telemetry_readings", "telemetry_events"):
        conn.execute(f"DELETE FROM {table} WHERE participant_id = %s", (seeded.participant,))
    purge_participant_rollups(conn, seeded.participant)
    conn.commit()
    evaluator = _key(conn, Role.EVALUATOR)
    t = seeded.trial_id
    events = _csv(http.get(f"/trials/{t}/exports/events.csv", headers=evaluator))
    assert [(e["event_type"], e["participant"]) for e in events] == [("door_open", "")]
    assert _csv(http.get(f"/trials/{t}/exports/readings.csv", headers=evaluator)) == []
    usage = http.get(
        f"/trials/{t}/usage", headers=evaluator, params={"from": T0.isoformat()}
    ).json()
    assert sum(b["active_participants"] for b in usage["items"]) == 0
    assert sum(b["readings"] for b in usage["items"]) == 0
    saved = http.get(f"/trials/{t}/time-saved", headers=evaluator).json()
    assert saved["activities"][0]["occurrences"] == 0 and saved["hours_saved"] == "0.00"
    report = http.get(f"/trials/{t}/report", headers=evaluator).text
    assert "P-001" not in report and "endnu ingen gange" in report  # Night check: none left


def test_portfolio_lists_every_trial_sortable(
    conn: psycopg.Connection, http: httpx.Client, seeded: Seeded
) -> None:
    coordinator = _key(conn, Role.COORDINATOR)
    page = http.get("/portfolio", headers=coordinator, params={"sort": "-hours_saved"}).json()
    assert page["total"] == 2
    top = page["items"][0]
    assert top["trial_id"] == seeded.trial_id and top["hours_saved"] == "10.00"
    assert top["consent"]["participants"] == 1 and top["consent"]["evaluation_now"] == 1
    assert top["sites"] == ["Plejecenter Birkely"] and top["data_flowing"] is False
    by_title = http.get("/portfolio", headers=coordinator, params={"sort": "title"}).json()
    assert [i["title"] for i in by_title["items"]] == ["Rival trial", "Sensor beds at Birkely"]
    assert http.get("/portfolio", headers=coordinator, params={"sort": "nope"}).status_code == 422
