"""All SQL for device types, devices, deployments, broker credentials and health.

psycopg's errors stop here: each becomes an infra.errors exception whose message names the field
to fix. Nothing here commits; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from devices.placement import Placement
from devices.schemas import (
    Deployment,
    Device,
    DeviceCreate,
    DeviceHealth,
    DeviceType,
    DeviceTypeCreate,
    FoldedHealth,
)
from i18n import Message
from infra.db import fetch_all, fetch_one
from infra.errors import Conflict, Invalid

T = TypeVar("T")

DEVICE_COLUMNS = sql.SQL(
    "id, kind, device_type, company_id, gateway_id, serial, firmware, registered_at, revoked_at"
)
DEPLOYMENT_COLUMNS = sql.SQL(
    "id, device_id, trial_id, site_id, unit_id, participant_id, valid_from, valid_until, note,"
    " created_at"
)
TYPE_COLUMNS = sql.SQL("code, name, metrics, event_types, expected_interval, description")


def _count(conn: psycopg.Connection, query: sql.SQL | sql.Composed, params: Any) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM ({}) AS counted").format(query), params)
    return int(row.fetchone()[0])  # type: ignore[index]


@contextmanager
def _savepoint(conn: psycopg.Connection) -> Iterator[None]:
    """Undo just the failed statement so the error can be explained with another query.

    Plain SQL rather than conn.transaction(): on an idle connection that would commit.
    """
    conn.execute("SAVEPOINT devices_statement")
    try:
        yield
    except psycopg.Error:
        conn.execute("ROLLBACK TO SAVEPOINT devices_statement")
        raise
    conn.execute("RELEASE SAVEPOINT devices_statement")


def _constraint(exc: psycopg.Error) -> str:
    return exc.diag.constraint_name or ""


# ------------------------------------------------------------------ device types
def list_device_types(conn: psycopg.Connection) -> list[DeviceType]:
    query = sql.SQL("SELECT {} FROM device_types ORDER BY code").format(TYPE_COLUMNS)
    return fetch_all(conn, DeviceType, query, {})


def insert_device_type(conn: psycopg.Connection, request: DeviceTypeCreate) -> DeviceType:
    query = sql.SQL(
        "INSERT INTO device_types (code, name, metrics, event_types, expected_interval,"
        " description) VALUES (%(code)s, %(name)s, %(metrics)s, %(event_types)s,"
        " %(expected_interval)s, %(description)s) RETURNING {}"
    ).format(TYPE_COLUMNS)
    try:
        with _savepoint(conn):
            created = fetch_one(conn, DeviceType, query, request.model_dump())
    except psycopg.errors.UniqueViolation:
        raise Conflict("device type '%(code)s' already exists", {"code": request.code}) from None
    assert created is not None
    return created


# ----------------------------------------------------------------------- devices
def insert_device(conn: psycopg.Connection, request: DeviceCreate, secret_hash: str) -> Device:
    query = sql.SQL(
        "INSERT INTO devices (id, kind, device_type, company_id, gateway_id, serial, firmware,"
        " secret_hash) VALUES (%(id)s, %(kind)s, %(device_type)s, %(company_id)s, %(gateway_id)s,"
        " %(serial)s, %(firmware)s, %(secret_hash)s) RETURNING {}"
    ).format(DEVICE_COLUMNS)
    params = {**request.model_dump(mode="json"), "secret_hash": secret_hash}
    try:
        with _savepoint(conn):
            device = fetch_one(conn, Device, query, params)
    except psycopg.errors.UniqueViolation:
        raise Conflict(
            "a device or gateway with id '%(device)s' is already registered", {"device": request.id}
        ) from None
    except psycopg.errors.ForeignKeyViolation as exc:
        problem = _device_reference_problem(request, _constraint(exc))
        raise Invalid(problem.text, problem.params) from None
    except psycopg.errors.CheckViolation as exc:
        raise Invalid("the device breaks the rule %(rule)s", {"rule": _constraint(exc)}) from None
    assert device is not None
    return device


def _device_reference_problem(request: DeviceCreate, constraint: str) -> Message:
    if constraint == "devices_device_type_fkey":
        return Message(
            "unknown device type '%(type)s'; see GET /device-types", {"type": request.device_type}
        )
    if constraint == "devices_company_id_fkey":
        return Message("company %(company)s does not exist", {"company": request.company_id})
    if constraint == "devices_gateway_id_fkey":
        return Message("gateway '%(gateway)s' is not registered", {"gateway": request.gateway_id})
    return Message("a reference does not exist (%(constraint)s)", {"constraint": constraint})


def get_device(conn: psycopg.Connection, device_id: str) -> Device | None:
    query = sql.SQL("SELECT {} FROM devices WHERE id = %(id)s").format(DEVICE_COLUMNS)
    return fetch_one(conn, Device, query, {"id": device_id})


def list_devices(
    conn: psycopg.Connection,
    *,
    company_id: int | None,
    kind: str | None,
    gateway_id: str | None,
    include_revoked: bool,
    limit: int,
    offset: int,
) -> tuple[list[Device], int]:
    filters = [
        sql.SQL("(%(company_id)s::bigint IS NULL OR company_id = %(company_id)s)"),
        sql.SQL("(%(kind)s::text IS NULL OR kind = %(kind)s)"),
        sql.SQL("(%(gateway_id)s::text IS NULL OR gateway_id = %(gateway_id)s)"),
    ]
    if not include_revoked:
        filters.append(sql.SQL("revoked_at IS NULL"))
    base = sql.SQL("SELECT {} FROM devices WHERE {}").format(
        DEVICE_COLUMNS, sql.SQL(" AND ").join(filters)
    )
    params = {
        "company_id": company_id,
        "kind": kind,
        "gateway_id": gateway_id,
        "limit": limit,
        "offset": offset,
    }
    page = base + sql.SQL(" ORDER BY id LIMIT %(limit)s OFFSET %(offset)s")
    return fetch_all(conn, Device, page, params), _count(conn, base, params)


def set_secret_hash(conn: psycopg.Connection, device_id: str, secret_hash: str) -> Device | None:
    query = sql.SQL(
        "UPDATE devices SET secret_hash = %(hash)s WHERE id = %(id)s AND revoked_at IS NULL"
        " RETURNING {}"
    ).format(DEVICE_COLUMNS)
    return fetch_one(conn, Device, query, {"id": device_id, "hash": secret_hash})


def revoke_device(conn: psycopg.Connection, device_id: str) -> Device | None:
    query = sql.SQL(
        "UPDATE devices SET revoked_at = coalesce(revoked_at, now()) WHERE id = %(id)s RETURNING {}"
    ).format(DEVICE_COLUMNS)
    return fetch_one(conn, Device, query, {"id": device_id})


@dataclass(frozen=True, slots=True)
class BrokerCredential:
    """An active device or gateway as the broker sees it."""

    id: str
    kind: str
    gateway_id: str | None
    secret_hash: str


def active_credentials(conn: psycopg.Connection) -> list[BrokerCredential]:
    query = sql.SQL(
        "SELECT id, kind, gateway_id, secret_hash FROM devices"
        " WHERE revoked_at IS NULL AND secret_hash IS NOT NULL ORDER BY id"
    )
    return fetch_all(conn, BrokerCredential, query, {})


def lock_broker_files(conn: psycopg.Connection) -> None:
    """Serialise regenerations: the last writer then always renders the newest committed state."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('ldl.broker_files'))")


# ------------------------------------------------------------------- deployments
@dataclass(frozen=True, slots=True)
class ParticipantHome:
    trial_id: int
    site_id: int
    unit_id: int | None


def participant_home(conn: psycopg.Connection, participant_id: int) -> ParticipantHome | None:
    query = sql.SQL("SELECT trial_id, site_id, unit_id FROM participants WHERE id = %(id)s")
    return fetch_one(conn, ParticipantHome, query, {"id": participant_id})


def insert_deployment(
    conn: psycopg.Connection,
    *,
    device_id: str,
    trial_id: int,
    site_id: int,
    unit_id: int | None,
    participant_id: int | None,
    valid_from: datetime,
    valid_until: datetime | None,
    note: str,
) -> Deployment:
    params = {
        "device_id": device_id,
        "trial_id": trial_id,
        "site_id": site_id,
        "unit_id": unit_id,
        "participant_id": participant_id,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "note": note,
    }
    query = sql.SQL(
        "INSERT INTO deployments (device_id, trial_id, site_id, unit_id, participant_id,"
        " valid_from, valid_until, note) VALUES (%(device_id)s, %(trial_id)s, %(site_id)s,"
        " %(unit_id)s, %(participant_id)s, %(valid_from)s, %(valid_until)s, %(note)s)"
        " RETURNING {}"
    ).format(DEPLOYMENT_COLUMNS)
    try:
        with _savepoint(conn):
            deployment = fetch_one(conn, Deployment, query, params)
    except psycopg.errors.ExclusionViolation:
        overlap = _overlap_message(conn, params)
        raise Conflict(overlap.text, overlap.params, device_id=device_id) from None
    except psycopg.errors.ForeignKeyViolation as exc:
        problem = _deployment_reference_problem(params, _constraint(exc))
        raise Invalid(problem.text, problem.params) from None
    except psycopg.errors.CheckViolation:
        raise Invalid("valid_until must be after valid_from") from None
    assert deployment is not None
    return deployment


def _overlap_message(conn: psycopg.Connection, params: dict[str, Any]) -> Message:
    clashes = fetch_all(
        conn,
        Deployment,
        sql.SQL(
            "SELECT {} FROM deployments WHERE device_id = %(device_id)s"
            " AND valid_during && tstzrange(%(valid_from)s, %(valid_until)s, '[)') ORDER BY valid_from"
        ).format(DEPLOYMENT_COLUMNS),
        params,
    )
    described = [
        Message(
            "#%(deployment)s (trial %(trial)s, %(valid_from)s until %(until)s)",
            {
                "deployment": d.id,
                "trial": d.trial_id,
                "valid_from": d.valid_from,
                "until": d.valid_until or Message("open-ended"),
            },
        )
        for d in clashes
    ]
    return Message(
        "device '%(device)s' is already deployed during that time: %(clashes)s;"
        " a device is in one place at a time: end that deployment or use POST"
        " /devices/%(device)s/move",
        {"device": params["device_id"], "clashes": described or "?"},
    )


def _deployment_reference_problem(params: dict[str, Any], constraint: str) -> Message:
    values = {
        "device": params.get("device_id"),
        "trial": params.get("trial_id"),
        "site": params.get("site_id"),
        "unit": params.get("unit_id"),
        "participant": params.get("participant_id"),
        "constraint": constraint,
    }
    problems = {
        "deployments_device_id_fkey": "device '%(device)s' is not registered",
        "deployments_trial_id_fkey": "trial %(trial)s does not exist",
        "deployments_site_id_fkey": "site %(site)s does not exist",
        "deployments_site_id_unit_id_fkey": "unit %(unit)s is not a unit of site %(site)s",
        "deployments_trial_id_participant_id_fkey": (
            "participant %(participant)s is not a participant of trial %(trial)s"
        ),
    }
    return Message(problems.get(constraint, "a reference does not exist (%(constraint)s)"), values)


def get_deployment(conn: psycopg.Connection, deployment_id: int) -> Deployment | None:
    query = sql.SQL("SELECT {} FROM deployments WHERE id = %(id)s").format(DEPLOYMENT_COLUMNS)
    return fetch_one(conn, Deployment, query, {"id": deployment_id})


def deployment_covering(
    conn: psycopg.Connection, device_id: str, at: datetime
) -> Deployment | None:
    query = sql.SQL(
        "SELECT {} FROM deployments WHERE device_id = %(device_id)s AND valid_during @> %(at)s"
        " FOR UPDATE"
    ).format(DEPLOYMENT_COLUMNS)
    return fetch_one(conn, Deployment, query, {"device_id": device_id, "at": at})


def end_deployment(conn: psycopg.Connection, deployment_id: int, at: datetime) -> Deployment | None:
    """Close a deployment at `at`; only one that covers `at` (past ends are history, kept)."""
    query = sql.SQL(
        "UPDATE deployments SET valid_until = %(at)s WHERE id = %(id)s"
        " AND valid_from < %(at)s AND (valid_until IS NULL OR valid_until > %(at)s) RETURNING {}"
    ).format(DEPLOYMENT_COLUMNS)
    return fetch_one(conn, Deployment, query, {"id": deployment_id, "at": at})


def list_deployments(conn: psycopg.Connection, device_id: str) -> list[Deployment]:
    query = sql.SQL(
        "SELECT {} FROM deployments WHERE device_id = %(device_id)s ORDER BY valid_from"
    ).format(DEPLOYMENT_COLUMNS)
    return fetch_all(conn, Deployment, query, {"device_id": device_id})


PLACEMENT_QUERY = sql.SQL(
    "SELECT id AS deployment_id, device_id, trial_id, site_id, unit_id, participant_id,"
    " valid_from, valid_until FROM deployments WHERE device_id = ANY(%(ids)s)"
    " ORDER BY device_id, valid_from"
)


def load_placements(conn: psycopg.Connection, device_id: str) -> list[Placement]:
    """Every deployment of one device, oldest first; ask `placement_at` which one covers t."""
    return fetch_all(conn, Placement, PLACEMENT_QUERY, {"ids": [device_id]})


def load_placements_for(
    conn: psycopg.Connection, device_ids: Iterable[str]
) -> dict[str, list[Placement]]:
    """The same for many devices in one query (the ingest worker's cache fill)."""
    ids = sorted(set(device_ids))
    found: dict[str, list[Placement]] = {device_id: [] for device_id in ids}
    for placement in fetch_all(conn, Placement, PLACEMENT_QUERY, {"ids": ids}):
        found[placement.device_id].append(placement)
    return found


# ------------------------------------------------------------------------ health
def upsert_health(conn: psycopg.Connection, rows: Sequence[FoldedHealth]) -> int:
    # One statement per batch; GREATEST ignores NULL, and an older status never wins.
    cursor = conn.execute(
        """
        INSERT INTO device_health AS h
            (device_id, last_seen_at, last_status_at, battery, rssi, firmware, updated_at)
        SELECT u.device_id, u.last_seen_at, u.last_status_at, u.battery, u.rssi, u.firmware, now()
        FROM unnest(%(ids)s::text[], %(seen)s::timestamptz[], %(status_at)s::timestamptz[],
                    %(battery)s::real[], %(rssi)s::real[], %(firmware)s::text[])
             AS u(device_id, last_seen_at, last_status_at, battery, rssi, firmware)
        JOIN devices d ON d.id = u.device_id
        ORDER BY u.device_id
        ON CONFLICT (device_id) DO UPDATE SET
            last_seen_at = GREATEST(h.last_seen_at, EXCLUDED.last_seen_at),
            last_status_at = GREATEST(h.last_status_at, EXCLUDED.last_status_at),
            battery = CASE WHEN EXCLUDED.last_status_at >= coalesce(h.last_status_at, '-infinity')
                           THEN coalesce(EXCLUDED.battery, h.battery) ELSE h.battery END,
            rssi = CASE WHEN EXCLUDED.last_status_at >= coalesce(h.last_status_at, '-infinity')
                        THEN coalesce(EXCLUDED.rssi, h.rssi) ELSE h.rssi END,
            firmware = CASE WHEN EXCLUDED.last_status_at >= coalesce(h.last_status_at, '-infinity')
                            THEN coalesce(EXCLUDED.firmware, h.firmware) ELSE h.firmware END,
            updated_at = now()
        """,
        {
            "ids": [r.device_id for r in rows],
            "seen": [r.last_seen_at for r in rows],
            "status_at": [r.last_status_at for r in rows],
            "battery": [r.battery for r in rows],
            "rssi": [r.rssi for r in rows],
            "firmware": [r.firmware for r in rows],
        },
    )
    return cursor.rowcount


def trial_owner(conn: psycopg.Connection, trial_id: int) -> int | None:
    """The company running a trial, or None when the trial does not exist."""
    row = conn.execute("SELECT company_id FROM trials WHERE id = %(id)s", {"id": trial_id})
    found = row.fetchone()
    return None if found is None else int(found[0])


def site_exists(conn: psycopg.Connection, site_id: int) -> bool:
    row = conn.execute("SELECT 1 FROM sites WHERE id = %(id)s", {"id": site_id})
    return row.fetchone() is not None


def list_health(
    conn: psycopg.Connection,
    *,
    trial_id: int | None = None,
    site_id: int | None = None,
    company_id: int | None = None,
    limit: int,
    offset: int,
) -> tuple[list[DeviceHealth], int]:
    """Devices deployed now in a trial or at a site, offline first, then longest silent first.

    With company_id, only devices deployed in that company's trials (a company's view).
    """
    base = sql.SQL(
        "SELECT s.device_id, s.kind, s.device_type, s.trial_id, s.site_id, s.unit_id,"
        " s.last_seen_at, s.battery, s.rssi, s.firmware, s.expected_interval, s.online"
        " FROM device_health_status s JOIN trials t ON t.id = s.trial_id"
        " WHERE (%(trial_id)s::bigint IS NULL OR s.trial_id = %(trial_id)s)"
        " AND (%(site_id)s::bigint IS NULL OR s.site_id = %(site_id)s)"
        " AND (%(company_id)s::bigint IS NULL OR t.company_id = %(company_id)s)"
    )
    params = {
        "trial_id": trial_id,
        "site_id": site_id,
        "company_id": company_id,
        "limit": limit,
        "offset": offset,
    }
    page = base + sql.SQL(
        " ORDER BY s.online, s.last_seen_at NULLS FIRST, s.device_id"
        " LIMIT %(limit)s OFFSET %(offset)s"
    )
    return fetch_all(conn, DeviceHealth, page, params), _count(conn, base, params)
