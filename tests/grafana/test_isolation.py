"""Isolation holds in the database: logged in as company A's role, only A's views answer."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from access.schemas import Principal, Role
from evidence.erase import erase_participant_data
from grafana.roles import (
    OWNER_ROLE,
    company_schema,
    drop_company_access,
    provision_company_roles,
    scram_verifier,
)
from infra.db import connect
from infra.migrate import timescale_enabled
from ingest.repository import create_stage_tables
from tests.grafana.conftest import A_CONSENTED_EVENTS, A_ROOM_EVENTS, Seed

FORBIDDEN = [
    "public.trials",
    "public.participants",
    "public.consents",
    "public.telemetry_readings",
    "public.telemetry_events",
    "public.usage_events_hourly",
    "public.device_health_status",
    "public.time_saved_occurrences",
    "public.activity_saving_estimates",
    "public.companies",
    "ldl_grafana.usage_hourly",
    "grafana_coordinator.trial_portfolio",
    "ldl_grafana_private.role_credentials",
]


@pytest.fixture
def company_a(seed: Seed, login: Callable[[str, str], psycopg.Connection]) -> psycopg.Connection:
    access = seed.access.companies[0]
    assert access.company_id == seed.company_a
    return login(access.login.role, access.login.password)


def test_company_role_reads_its_own_rows_and_none_of_another_company(
    seed: Seed, company_a: psycopg.Connection
) -> None:
    def count(query: str) -> int:
        row = company_a.execute(query).fetchone()
        return int(row[0])

    assert count("SELECT sum(events) FROM usage_hourly") == A_CONSENTED_EVENTS + A_ROOM_EVENTS
    assert count(f"SELECT count(*) FROM usage_hourly WHERE trial_id = {seed.trial_b}") == 0
    assert count(f"SELECT count(*) FROM trial_info WHERE trial_id = {seed.trial_b}") == 0
    assert count("SELECT count(*) FROM device_health WHERE device_id = 'bed-b1'") == 0
    assert count("SELECT count(DISTINCT company_id) FROM usage_daily") == 1


def test_company_and_coordinator_roles_read_every_view_of_their_schema(
    admin: psycopg.Connection,
    seed: Seed,
    company_a: psycopg.Connection,
    login: Callable[[str, str], psycopg.Connection],
) -> None:
    coordinator = seed.access.coordinator
    for conn, schema in (
        (company_a, company_schema(seed.company_a)),
        (login(coordinator.role, coordinator.password), coordinator.schema),
    ):
        views = admin.execute(
            "SELECT table_name FROM information_schema.views WHERE table_schema = %s", (schema,)
        ).fetchall()
        assert len(views) > 3, schema
        for (view,) in views:
            conn.execute(f"SELECT * FROM {view} LIMIT 1").fetchall()  # no error, either path


def test_an_erased_participant_leaves_the_company_views_at_once(
    db_url: str, seed: Seed, company_a: psycopg.Connection
) -> None:
    def consented_events() -> int:
        row = company_a.execute(
            "SELECT coalesce(sum(events), 0) FROM usage_hourly WHERE device_id = 'bed-a1'"
        ).fetchone()
        return int(row[0])

    assert consented_events() == A_CONSENTED_EVENTS
    with connect(db_url) as app:  # the erase as the API runs it; no refresh follows
        pid = app.execute("SELECT id FROM participants WHERE pseudonym = 'P-001'").fetchone()[0]
        erase_participant_data(app, Principal("test", Role.COORDINATOR), pid)
        app.commit()
    assert consented_events() == 0
    total = company_a.execute("SELECT sum(events) FROM usage_daily").fetchone()
    assert total == (A_ROOM_EVENTS,)


@pytest.mark.parametrize("relation", FORBIDDEN)
def test_company_role_is_refused_base_tables_and_other_schemas(
    company_a: psycopg.Connection, relation: str
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        company_a.execute(f"SELECT 1 FROM {relation} LIMIT 1")


def test_company_role_cannot_read_another_companys_schema_or_become_the_owner(
    seed: Seed, company_a: psycopg.Connection
) -> None:
    other = company_schema(seed.company_b)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        company_a.execute(f"SELECT * FROM {other}.usage_hourly")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        company_a.execute(f"SET ROLE {OWNER_ROLE}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        company_a.execute("CREATE VIEW sneaky AS SELECT 1")
    row = company_a.execute(
        "SELECT pg_has_role(current_user, %s, 'MEMBER'), current_setting('search_path')",
        (OWNER_ROLE,),
    ).fetchone()
    # `public` only for extension functions: the role has no SELECT on anything there.
    assert row == (False, f"{company_schema(seed.company_a)}, public")
    readable = company_a.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p', 'f')"
        " AND has_table_privilege(c.oid, 'SELECT')"
    ).fetchone()
    assert readable == (0,)


def test_company_role_cannot_create_temp_tables(company_a: psycopg.Connection) -> None:
    with pytest.raises(
        psycopg.errors.InsufficientPrivilege, match="permission denied to create temporary tables"
    ):
        company_a.execute("CREATE TEMP TABLE scratch (x int)")


def test_the_app_role_keeps_temp_tables_for_the_ingest_stage(db_url: str, seed: Seed) -> None:
    with connect(db_url) as app:  # acts as ldl_app, like the worker
        create_stage_tables(app)
        row = app.execute("SELECT count(*) FROM ingest_stage_readings").fetchone()
    assert row == (0,)


@pytest.mark.timescale
def test_company_role_has_no_way_into_timescale_chunks(
    admin: psycopg.Connection, seed: Seed, company_a: psycopg.Connection
) -> None:
    assert timescale_enabled(admin)
    # The chunk schema stays open (TimescaleDB reads its catalog there on a session's first
    # query); the chunks themselves carry their hypertable's grants, which a company has none of.
    chunks = admin.execute(
        "SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks"
        " UNION ALL SELECT format('%I.%I', materialization_hypertable_schema,"
        " materialization_hypertable_name) FROM timescaledb_information.continuous_aggregates"
    ).fetchall()
    assert len(chunks) > 4, "the seeded telemetry must have made chunks"
    for (chunk,) in chunks:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            company_a.execute(f"SELECT 1 FROM {chunk} LIMIT 1")


@pytest.mark.timescale
def test_company_role_runs_grafanas_unqualified_time_bucket_on_its_own_views(
    seed: Seed, company_a: psycopg.Connection
) -> None:
    rows = company_a.execute(
        "SELECT time_bucket('1 day', bucket) AS time, sum(readings) FROM usage_hourly"
        " GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert rows and all(total > 0 for _, total in rows)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        company_a.execute("SELECT time_bucket('1 hour', ts) FROM telemetry_readings LIMIT 1")


def test_password_is_stored_as_a_scram_verifier_of_the_data_sources_password(
    admin: psycopg.Connection, seed: Seed
) -> None:
    login = seed.access.companies[0].login
    row = admin.execute(
        "SELECT rolpassword FROM pg_authid WHERE rolname = %s", (login.role,)
    ).fetchone()
    verifier = row[0]
    iterations, salt = verifier.split("$")[1].split(":")
    import base64

    assert verifier == scram_verifier(
        login.password, salt=base64.b64decode(salt), iterations=int(iterations)
    )


def test_provisioning_twice_changes_nothing_and_removal_closes_the_door(
    admin: psycopg.Connection, db_url: str, seed: Seed
) -> None:
    again = provision_company_roles(admin)
    admin.commit()
    assert again.changes == ()
    assert again.companies == seed.access.companies

    login = seed.access.companies[1].login
    drop_company_access(admin, seed.company_b)
    admin.commit()
    from tests.grafana.conftest import login_url

    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(login_url(db_url, login.role, login.password)).close()
    row = admin.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (company_schema(seed.company_b),)
    ).fetchone()
    assert row == (0,)
