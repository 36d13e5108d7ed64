from __future__ import annotations

import psycopg

from tests.evidence.seed import refresh
from tests.trials.lab import Lab


def _telemetry(
    conn: psycopg.Connection,
    trial_id: int,
    site_id: int,
    participant: int | None,
    device: str,
    n: int,
) -> None:
    for i in range(n):
        conn.execute(
            "INSERT INTO telemetry_readings (ts, device_id, metric, value, trial_id, site_id,"
            " participant_id) VALUES (%s, %s, 'heart_rate', 60, %s, %s, %s)",
            (f"2026-01-10T00:0{i}:00+00", device, trial_id, site_id, participant),
        )
        conn.execute(
            "INSERT INTO telemetry_events (ts, device_id, event_type, trial_id, site_id,"
            " participant_id) VALUES (%s, %s, 'bed_exit', %s, %s, %s)",
            (f"2026-01-10T00:0{i}:00+00", device, trial_id, site_id, participant),
        )
    conn.commit()


def _count(conn: psycopg.Connection, table: str, participant: int | None) -> int:
    row = conn.execute(
        f"SELECT count(*) FROM {table} WHERE participant_id IS NOT DISTINCT FROM %s",
        (participant,),
    ).fetchone()
    return int(row[0])


def test_withdrawal_with_erase_deletes_exactly_that_participants_rows(
    lab: Lab, conn: psycopg.Connection
) -> None:
    trial = lab.trial()
    leaving = lab.participant(trial["id"], "P-001")["id"]
    staying = lab.participant(trial["id"], "P-002")["id"]
    for pid in (leaving, staying):
        lab.consent(pid)
    _telemetry(conn, trial["id"], lab.site_id, leaving, "bed-1", 3)
    _telemetry(conn, trial["id"], lab.site_id, staying, "bed-2", 2)
    _telemetry(conn, trial["id"], lab.site_id, None, "door-1", 4)  # a room device

    result = lab.post(
        f"/participants/{leaving}/consent-withdrawal",
        {"at": "2026-03-01T00:00:00+00:00", "mode": "erase"},
    )

    assert result["erased_rows"]["telemetry_readings"] == 3
    assert result["erased_rows"]["telemetry_events"] == 3
    assert result["consent"]["ended_by"] == "withdrawn"
    assert result["consent"]["withdrawal_mode"] == "erase"
    for table in ("telemetry_readings", "telemetry_events"):
        assert _count(conn, table, leaving) == 0
        assert _count(conn, table, staying) == 2
        assert _count(conn, table, None) == 4

    audit = lab.get("/audit", entity="participant", entity_id=str(leaving)).json()["items"]
    actions = [entry["action"] for entry in audit]
    assert "participant.erase" in actions and "consent.withdraw" in actions
    erase = next(entry for entry in audit if entry["action"] == "participant.erase")
    assert erase["after"]["erased_rows"]["telemetry_readings"] == 3


def test_withdrawal_with_keep_deletes_only_what_was_stored_from_its_time_on(
    lab: Lab, conn: psycopg.Connection
) -> None:
    trial = lab.trial()
    pid = lab.participant(trial["id"])["id"]
    lab.consent(pid)
    _telemetry(conn, trial["id"], lab.site_id, pid, "bed-1", 3)  # 00:00, 00:01, 00:02
    result = lab.post(
        f"/participants/{pid}/consent-withdrawal",
        {"at": "2026-01-10T00:01:00+00:00", "mode": "keep"},
    )
    # Stored before the withdrawal was recorded, but stamped after it: without consent.
    assert result["erased_rows"] == {"telemetry_readings": 2, "telemetry_events": 2}
    assert _count(conn, "telemetry_readings", pid) == 1
    assert _count(conn, "telemetry_events", pid) == 1
    audit = lab.get("/audit", entity="participant", entity_id=str(pid)).json()["items"]
    erase = next(entry for entry in audit if entry["action"] == "participant.erase")
    assert erase["after"]["erased_rows"]["telemetry_readings"] == 2


def test_erase_leaves_no_trace_in_usage_answers_before_any_refresh(
    lab: Lab, conn: psycopg.Connection
) -> None:
    trial = lab.trial()
    leaving = lab.participant(trial["id"], "P-001")["id"]
    staying = lab.participant(trial["id"], "P-002")["id"]
    for pid in (leaving, staying):
        lab.consent(pid)
    _telemetry(conn, trial["id"], lab.site_id, leaving, "bed-1", 3)
    _telemetry(conn, trial["id"], lab.site_id, staying, "bed-2", 2)
    refresh(conn)  # the rollups hold the participant's hours; no worker runs afterwards

    lab.post(
        f"/participants/{leaving}/consent-withdrawal",
        {"at": "2026-03-01T00:00:00+00:00", "mode": "erase"},
    )

    window = {"from": "2026-01-09T00:00:00+00:00", "to": "2026-01-11T00:00:00+00:00"}
    for granularity in ("hour", "day"):
        for level in ("trial", "device"):
            params = {**window, "granularity": granularity, "level": level}
            page = lab.http.get(
                f"/trials/{trial['id']}/usage", params=params, headers=lab.coordinator
            ).json()
            assert sum(row["readings"] for row in page["items"]) == 2, (granularity, level)
            assert max(row["active_participants"] for row in page["items"]) == 1
            assert "bed-1" not in {row["group"] for row in page["items"]}
    for view in ("usage_hourly", "usage_daily", "usage_events_hourly"):
        assert _count(conn, view, leaving) == 0, view


def _hourly_readings(lab: Lab, trial_id: int) -> dict[str, int]:
    params = {
        "from": "2026-01-10T00:00:00+00:00",
        "to": "2026-01-10T04:00:00+00:00",
        "granularity": "hour",
        "level": "trial",
    }
    page = lab.http.get(f"/trials/{trial_id}/usage", params=params, headers=lab.coordinator)
    return {row["bucket"][11:16]: row["readings"] for row in page.json()["items"]}


def test_withdrawal_with_keep_takes_its_later_readings_out_of_the_rollups_at_once(
    lab: Lab, conn: psycopg.Connection
) -> None:
    trial = lab.trial()
    pid = lab.participant(trial["id"])["id"]
    lab.consent(pid)
    for stamp in ("00:30", "01:30", "02:30"):
        conn.execute(
            "INSERT INTO telemetry_readings (ts, device_id, metric, value, trial_id, site_id,"
            " participant_id) VALUES (%s, 'bed-1', 'heart_rate', 60, %s, %s, %s)",
            (f"2026-01-10T{stamp}:00+00", trial["id"], lab.site_id, pid),
        )
    conn.commit()
    refresh(conn)
    assert sum(_hourly_readings(lab, trial["id"]).values()) == 3

    # Backdated: the 02:30 reading was taken after it and goes, with its hour in the rollups.
    lab.post(
        f"/participants/{pid}/consent-withdrawal",
        {"at": "2026-01-10T01:45:00+00:00", "mode": "keep"},
    )
    before_refresh = _hourly_readings(lab, trial["id"])
    assert before_refresh.get("02:00", 0) == 0
    assert before_refresh.get("00:00") == 1
    # TimescaleDB may undercount the withdrawal's own hour until the worker's refresh.
    assert before_refresh.get("01:00", 0) <= 1

    refresh(conn)
    after = _hourly_readings(lab, trial["id"])
    assert after == {"00:00": 1, "01:00": 1}
