from __future__ import annotations

import psycopg
import pytest

from infra.db import connect
from infra.errors import ConfigError
from infra.migrate import apply_migrations, choose_timescale, timescale_enabled, timescale_preloaded

TELEMETRY_TABLES = ("telemetry_readings", "telemetry_events")


def test_migrate_twice_is_a_no_op(db_url: str) -> None:
    # db_url is already migrated (cloned from the template): nothing is left to apply.
    assert apply_migrations(db_url) == []
    with psycopg.connect(db_url) as conn:
        before = conn.execute("SELECT count(*) FROM _yoyo_migration").fetchone()
    assert apply_migrations(db_url) == []
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM _yoyo_migration").fetchone() == before


def test_migrate_creates_every_table_of_schema_v1(db_url: str) -> None:
    expected = {
        "companies",
        "sites",
        "units",
        "trials",
        "participants",
        "consents",
        "activities",
        "observations",
        "device_types",
        "devices",
        "deployments",
        "telemetry_readings",
        "telemetry_events",
        "dead_letters",
        "audit_log",
        "api_keys",
        "consent_drops",
    }
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert expected <= {name for (name,) in rows}


def test_deployments_of_one_device_cannot_overlap(conn: psycopg.Connection) -> None:
    company = conn.execute("INSERT INTO companies (name) VALUES ('A') RETURNING id").fetchone()[0]
    site = conn.execute(
        "INSERT INTO sites (name, municipality) VALUES ('S', 'Kolding') RETURNING id"
    ).fetchone()[0]
    trial = conn.execute(
        "INSERT INTO trials (company_id, title, product, collaboration_form)"
        " VALUES (%s, 'T', 'P', 'opi') RETURNING id",
        (company,),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO devices (id, device_type, company_id) VALUES ('bed-1', 'sensor_bed', %s)",
        (company,),
    )
    insert = (
        "INSERT INTO deployments (device_id, trial_id, site_id, valid_from, valid_until)"
        " VALUES ('bed-1', %s, %s, %s, %s)"
    )
    conn.execute(insert, (trial, site, "2026-01-01T00:00Z", "2026-02-01T00:00Z"))
    conn.execute(insert, (trial, site, "2026-02-01T00:00Z", None))  # touching ends are fine
    with pytest.raises(psycopg.errors.ExclusionViolation):
        conn.execute(insert, (trial, site, "2026-01-15T00:00Z", "2026-01-20T00:00Z"))


def test_app_role_cannot_rewrite_the_audit_log(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO audit_log (actor, actor_role, action, entity) VALUES ('t', 'coordinator',"
        " 'test', 'thing')"
    )
    conn.commit()
    for statement in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
        conn.rollback()


def test_audit_log_refuses_deletes_even_for_the_owner(db_url: str) -> None:
    with connect(db_url, as_app=False) as owner:
        owner.execute(
            "INSERT INTO audit_log (actor, actor_role, action, entity) VALUES ('t', 'c', 'a', 'e')"
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            owner.execute("DELETE FROM audit_log")


def test_telemetry_tables_have_the_same_shape_on_either_path(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_name = ANY(%s) ORDER BY table_name, ordinal_position",
            (list(TELEMETRY_TABLES),),
        ).fetchall()
    readings = [c for t, c in columns if t == "telemetry_readings"]
    assert readings[:4] == ["ts", "device_id", "metric", "value"]
    assert {"trial_id", "site_id", "unit_id", "participant_id", "seq"} <= set(readings)


@pytest.mark.timescale
def test_telemetry_tables_are_hypertables_where_timescaledb_exists(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        if not timescale_enabled(conn):
            pytest.skip("TimescaleDB is not installed on this PostgreSQL")
        rows = conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
        ).fetchall()
    assert {name for (name,) in rows} >= set(TELEMETRY_TABLES)


@pytest.mark.timescale
def test_only_the_worker_refreshes_the_continuous_aggregates(db_url: str) -> None:
    # TimescaleDB's own refresh jobs take no lock an erase knows of; compression and retention stay.
    with psycopg.connect(db_url) as conn:
        if not timescale_enabled(conn):
            pytest.skip("TimescaleDB is not installed on this PostgreSQL")
        jobs = conn.execute(
            "SELECT proc_name, count(*) FROM timescaledb_information.jobs"
            " WHERE hypertable_name IS NOT NULL GROUP BY proc_name"
        ).fetchall()
    assert dict(jobs) == {"policy_compression": 2, "policy_retention": 2}


def test_each_database_holds_the_path_ldl_timescale_chose(db_url: str, database_path: str) -> None:
    # Both templates were migrated on the same cluster: `off` never created the extension.
    with psycopg.connect(db_url) as conn:
        assert timescale_enabled(conn) == (database_path == "timescale")


def test_ldl_timescale_on_insists_and_off_declines(pg_admin_url: str) -> None:
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        usable = admin.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone() is not None and timescale_preloaded(admin)
        assert choose_timescale(admin, "off", "here") is False
        assert choose_timescale(admin, "auto", "here") is usable
        if usable:
            assert choose_timescale(admin, "on", "here") is True
        else:
            with pytest.raises(ConfigError, match="LDL_TIMESCALE=on: TimescaleDB is not"):
                choose_timescale(admin, "on", "here")
