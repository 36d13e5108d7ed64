"""All SQL for trials: the registry, the lifecycle, participants and consent, time-motion data.

psycopg's errors stop here: they leave as infra.errors, so services and routes never see them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from pydantic import BaseModel

from i18n import Message
from infra.db import fetch_all, fetch_one
from infra.errors import Conflict, Invalid
from trials.consent import ConsentPeriod, Scope, scope_active
from trials.schemas import (
    Activity,
    Company,
    Consent,
    Cost,
    Observation,
    Participant,
    Site,
    StatusChange,
    Trial,
    Unit,
)

M = TypeVar("M", bound=BaseModel)
Params = Mapping[str, Any]


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn the database's refusals into the project's errors, naming what was refused."""
    try:
        yield
    except psycopg.errors.UniqueViolation as exc:
        raise Conflict("%(what)s already exists: %(reason)s", _said(what, exc)) from None
    except psycopg.errors.ExclusionViolation as exc:
        raise Conflict("%(what)s overlaps an existing one: %(reason)s", _said(what, exc)) from None
    except psycopg.errors.ForeignKeyViolation as exc:
        raise Invalid(
            "%(what)s refers to something that does not exist: %(reason)s", _said(what, exc)
        ) from None
    except (psycopg.errors.CheckViolation, psycopg.errors.NotNullViolation) as exc:
        raise Invalid("%(what)s breaks a rule: %(reason)s", _said(what, exc)) from None
    except psycopg.errors.DataError as exc:
        raise Invalid("%(what)s: %(reason)s", _said(what, exc)) from None


def _said(what: str, exc: psycopg.Error) -> dict[str, Any]:
    # `what` is a msgid of the messages catalog; the database's reason stays its own English.
    return {"what": Message(what), "reason": _reason(exc)}


def _reason(exc: psycopg.Error) -> str:
    return exc.diag.message_detail or exc.diag.message_primary or type(exc).__name__


def write_returning(
    conn: psycopg.Connection, model: type[M], what: str, query: str, params: Params
) -> M:
    """An INSERT/UPDATE ... RETURNING, with this domain's constraint errors made its own."""
    with _translated(what):
        row = fetch_one(conn, model, query, params)
    assert row is not None, "a write with RETURNING returns its row"
    return row


def _page(
    conn: psycopg.Connection,
    model: type[M],
    select: str,
    where: str,
    order_by: str,
    params: Params,
    limit: int,
    offset: int,
) -> tuple[list[M], int]:
    with _translated("page"):
        rows = fetch_all(
            conn,
            model,
            f"{select} WHERE {where} ORDER BY {order_by} LIMIT %(limit)s OFFSET %(offset)s",
            {**params, "limit": limit, "offset": offset},
        )
    count_query = f"SELECT count(*) FROM ({select} WHERE {where}) AS matching"
    total = conn.execute(count_query, params).fetchone()
    return rows, int(total[0]) if total else 0


# ------------------------------------------------------------------------------ registry
COMPANY = "SELECT id, name, cvr, contact_email, created_at FROM companies"
SITE = "SELECT id, name, municipality, address, created_at FROM sites"
UNIT = "SELECT id, site_id, name, created_at FROM units"


def insert_company(conn: psycopg.Connection, fields: Params) -> Company:
    return write_returning(
        conn,
        Company,
        "company",
        "INSERT INTO companies (name, cvr, contact_email)"
        " VALUES (%(name)s, %(cvr)s, %(contact_email)s)"
        " RETURNING id, name, cvr, contact_email, created_at",
        fields,
    )


def get_company(conn: psycopg.Connection, company_id: int) -> Company | None:
    return fetch_one(conn, Company, f"{COMPANY} WHERE id = %(id)s", {"id": company_id})


def list_companies(
    conn: psycopg.Connection, *, only_id: int | None, limit: int, offset: int
) -> tuple[list[Company], int]:
    where = "(%(only_id)s::bigint IS NULL OR id = %(only_id)s)"
    return _page(conn, Company, COMPANY, where, "id", {"only_id": only_id}, limit, offset)


def insert_site(conn: psycopg.Connection, fields: Params) -> Site:
    return write_returning(
        conn,
        Site,
        "site",
        "INSERT INTO sites (name, municipality, address)"
        " VALUES (%(name)s, %(municipality)s, %(address)s)"
        " RETURNING id, name, municipality, address, created_at",
        fields,
    )


def get_site(conn: psycopg.Connection, site_id: int) -> Site | None:
    return fetch_one(conn, Site, f"{SITE} WHERE id = %(id)s", {"id": site_id})


def list_sites(conn: psycopg.Connection, *, limit: int, offset: int) -> tuple[list[Site], int]:
    return _page(conn, Site, SITE, "true", "id", {}, limit, offset)


def insert_unit(conn: psycopg.Connection, site_id: int, name: str) -> Unit:
    return write_returning(
        conn,
        Unit,
        "unit",
        "INSERT INTO units (site_id, name) VALUES (%(site_id)s, %(name)s)"
        " RETURNING id, site_id, name, created_at",
        {"site_id": site_id, "name": name},
    )


def list_units(
    conn: psycopg.Connection, site_id: int, *, limit: int, offset: int
) -> tuple[list[Unit], int]:
    return _page(
        conn, Unit, UNIT, "site_id = %(site_id)s", "id", {"site_id": site_id}, limit, offset
    )


def sites_of_units(conn: psycopg.Connection, unit_ids: list[int]) -> dict[int, int]:
    """unit id -> its site id, for the units that exist."""
    rows = conn.execute(
        "SELECT id, site_id FROM units WHERE id = ANY(%(ids)s)", {"ids": unit_ids}
    ).fetchall()
    return {unit_id: site_id for unit_id, site_id in rows}


def existing_sites(conn: psycopg.Connection, site_ids: list[int]) -> set[int]:
    rows = conn.execute("SELECT id FROM sites WHERE id = ANY(%(ids)s)", {"ids": site_ids})
    return {site_id for (site_id,) in rows.fetchall()}


# -------------------------------------------------------------------------------- trials
TRIAL = (
    "SELECT t.id, t.company_id, t.title, t.product, t.need, t.collaboration_form, t.status,"
    " ARRAY(SELECT s.site_id FROM trial_sites s WHERE s.trial_id = t.id ORDER BY 1) AS site_ids,"
    " ARRAY(SELECT u.unit_id FROM trial_units u WHERE u.trial_id = t.id ORDER BY 1) AS unit_ids,"
    " t.baseline_from, t.baseline_until, t.trial_from, t.trial_until, t.success_criteria,"
    " t.staff_hourly_cost, t.currency, t.decision, t.decision_rationale, t.decided_at,"
    " t.created_at, t.updated_at"
    " FROM trials t"
)
# The columns a coordinator may edit directly; status and decision change only by transition.
PLAN_COLUMNS = (
    "title",
    "product",
    "need",
    "collaboration_form",
    "baseline_from",
    "baseline_until",
    "trial_from",
    "trial_until",
    "success_criteria",
    "staff_hourly_cost",
    "currency",
)


def insert_trial(conn: psycopg.Connection, company_id: int, plan: Params) -> int:
    columns = [column for column in PLAN_COLUMNS if column in plan]
    query = sql.SQL(
        "INSERT INTO trials (company_id, {columns}) VALUES (%(company_id)s, {values}) RETURNING id"
    ).format(
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(sql.Placeholder(column) for column in columns),
    )
    with _translated("trial"):
        row = conn.execute(query, {**plan, "company_id": company_id}).fetchone()
    assert row is not None
    return int(row[0])


def update_trial_plan(conn: psycopg.Connection, trial_id: int, changes: Params) -> None:
    columns = [column for column in PLAN_COLUMNS if column in changes]
    assignments = [
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
        for column in columns
    ]
    query = sql.SQL("UPDATE trials SET {assignments}, updated_at = now() WHERE id = %(id)s").format(
        assignments=sql.SQL(", ").join(assignments)
    )
    with _translated("trial"):
        conn.execute(query, {**changes, "id": trial_id})


def replace_trial_places(
    conn: psycopg.Connection, trial_id: int, site_ids: list[int], unit_ids: list[int]
) -> None:
    params = {"trial": trial_id, "sites": site_ids, "units": unit_ids}
    with _translated("trial site or unit"):
        conn.execute("DELETE FROM trial_units WHERE trial_id = %(trial)s", params)
        conn.execute("DELETE FROM trial_sites WHERE trial_id = %(trial)s", params)
        conn.execute(
            "INSERT INTO trial_sites (trial_id, site_id)"
            " SELECT %(trial)s, unnest(%(sites)s::bigint[]) ON CONFLICT DO NOTHING",
            params,
        )
        conn.execute(
            "INSERT INTO trial_units (trial_id, unit_id)"
            " SELECT %(trial)s, unnest(%(units)s::bigint[]) ON CONFLICT DO NOTHING",
            params,
        )


def get_trial(conn: psycopg.Connection, trial_id: int, *, for_update: bool = False) -> Trial | None:
    # FOR UPDATE serialises transitions and edits of one trial.
    lock = " FOR UPDATE OF t" if for_update else ""
    return fetch_one(conn, Trial, f"{TRIAL} WHERE t.id = %(id)s{lock}", {"id": trial_id})


def list_trials(
    conn: psycopg.Connection,
    *,
    status: str | None,
    company_id: int | None,
    site_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[Trial], int]:
    where = (
        "(%(status)s::text IS NULL OR t.status = %(status)s)"
        " AND (%(company_id)s::bigint IS NULL OR t.company_id = %(company_id)s)"
        " AND (%(site_id)s::bigint IS NULL OR EXISTS (SELECT 1 FROM trial_sites s"
        "      WHERE s.trial_id = t.id AND s.site_id = %(site_id)s))"
    )
    params = {"status": status, "company_id": company_id, "site_id": site_id}
    return _page(conn, Trial, TRIAL, where, "t.id", params, limit, offset)


def set_status(
    conn: psycopg.Connection,
    trial_id: int,
    *,
    status: str,
    decision: str | None,
    rationale: str | None,
) -> None:
    conn.execute(
        "UPDATE trials SET status = %(status)s, updated_at = now(),"
        " decision = coalesce(%(decision)s, decision),"
        " decision_rationale = coalesce(%(rationale)s, decision_rationale),"
        " decided_at = CASE WHEN %(decision)s::text IS NULL THEN decided_at ELSE now() END"
        " WHERE id = %(id)s",
        {"id": trial_id, "status": status, "decision": decision, "rationale": rationale},
    )


def append_status_history(
    conn: psycopg.Connection, trial_id: int, from_status: str | None, to_status: str, actor: str
) -> None:
    conn.execute(
        "INSERT INTO trial_status_history (trial_id, from_status, to_status, actor)"
        " VALUES (%(trial)s, %(from)s, %(to)s, %(actor)s)",
        {"trial": trial_id, "from": from_status, "to": to_status, "actor": actor},
    )


def status_history(conn: psycopg.Connection, trial_id: int) -> list[StatusChange]:
    return fetch_all(
        conn,
        StatusChange,
        "SELECT id, trial_id, from_status, to_status, at, actor FROM trial_status_history"
        " WHERE trial_id = %(trial)s ORDER BY id",
        {"trial": trial_id},
    )


def insert_cost(conn: psycopg.Connection, trial_id: int, fields: Params) -> Cost:
    return write_returning(
        conn,
        Cost,
        "cost",
        "INSERT INTO trial_costs (trial_id, category, amount, recurring, description)"
        " VALUES (%(trial_id)s, %(category)s, %(amount)s, %(recurring)s, %(description)s)"
        " RETURNING id, trial_id, category, amount, recurring, description",
        {**fields, "trial_id": trial_id},
    )


def list_costs(
    conn: psycopg.Connection, trial_id: int, *, limit: int, offset: int
) -> tuple[list[Cost], int]:
    select = "SELECT id, trial_id, category, amount, recurring, description FROM trial_costs"
    return _page(conn, Cost, select, "trial_id = %(t)s", "id", {"t": trial_id}, limit, offset)


# ------------------------------------------------------------------ participants, consent
PARTICIPANT = (
    "SELECT id, trial_id, pseudonym, site_id, unit_id, enrolled_at, left_at, created_at"
    " FROM participants"
)
CONSENT_COLUMNS = (
    "id, participant_id, version, scopes, given_by, proxy_relation, evidence_ref, valid_from,"
    " valid_until, ended_by, withdrawal_mode, created_at"
)


def insert_participant(conn: psycopg.Connection, trial_id: int, fields: Params) -> Participant:
    return write_returning(
        conn,
        Participant,
        "participant",
        "INSERT INTO participants (trial_id, pseudonym, site_id, unit_id, enrolled_at)"
        " VALUES (%(trial_id)s, %(pseudonym)s, %(site_id)s, %(unit_id)s,"
        "         coalesce(%(enrolled_at)s, now()))"
        " RETURNING id, trial_id, pseudonym, site_id, unit_id, enrolled_at, left_at, created_at",
        {**fields, "trial_id": trial_id},
    )


def get_participant(
    conn: psycopg.Connection, participant_id: int, *, for_update: bool = False
) -> Participant | None:
    # FOR UPDATE serialises consent changes of one participant (versions are numbered in order).
    lock = " FOR UPDATE" if for_update else ""
    return fetch_one(
        conn, Participant, f"{PARTICIPANT} WHERE id = %(id)s{lock}", {"id": participant_id}
    )


def list_participants(
    conn: psycopg.Connection, trial_id: int, *, limit: int, offset: int
) -> tuple[list[Participant], int]:
    where = "trial_id = %(trial)s"
    return _page(conn, Participant, PARTICIPANT, where, "id", {"trial": trial_id}, limit, offset)


def trial_has_site(conn: psycopg.Connection, trial_id: int, site_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM trial_sites WHERE trial_id = %(t)s AND site_id = %(s)s",
        {"t": trial_id, "s": site_id},
    ).fetchone()
    return row is not None


def consent_versions(conn: psycopg.Connection, participant_id: int) -> list[Consent]:
    return fetch_all(
        conn,
        Consent,
        f"SELECT {CONSENT_COLUMNS} FROM consents WHERE participant_id = %(p)s ORDER BY version",
        {"p": participant_id},
    )


def insert_consent(
    conn: psycopg.Connection, participant_id: int, version: int, fields: Params
) -> Consent:
    return write_returning(
        conn,
        Consent,
        "consent",
        "INSERT INTO consents (participant_id, version, scopes, given_by, proxy_relation,"
        " evidence_ref, valid_from)"
        " VALUES (%(participant_id)s, %(version)s, %(scopes)s, %(given_by)s, %(proxy_relation)s,"
        "         %(evidence_ref)s, %(valid_from)s)"
        f" RETURNING {CONSENT_COLUMNS}",
        {**fields, "participant_id": participant_id, "version": version},
    )


def close_consent(
    conn: psycopg.Connection,
    consent_id: int,
    *,
    until: datetime,
    ended_by: str,
    withdrawal_mode: str | None = None,
) -> Consent:
    return write_returning(
        conn,
        Consent,
        "consent",
        "UPDATE consents SET valid_until = %(until)s, ended_by = %(ended_by)s,"
        " withdrawal_mode = %(mode)s WHERE id = %(id)s"
        f" RETURNING {CONSENT_COLUMNS}",
        {"id": consent_id, "until": until, "ended_by": ended_by, "mode": withdrawal_mode},
    )


def load_consent_periods(conn: psycopg.Connection, participant_id: int) -> list[ConsentPeriod]:
    rows = conn.execute(
        "SELECT scopes, valid_from, valid_until FROM consents WHERE participant_id = %(p)s",
        {"p": participant_id},
    ).fetchall()
    return [ConsentPeriod(frozenset(scopes), start, end) for scopes, start, end in rows]


def consent_active_at(
    conn: psycopg.Connection, participant_id: int, scope: Scope | str, at: datetime
) -> bool:
    """Was `scope` active for the participant at `at`? Asked of trials.consent, nowhere else."""
    return scope_active(load_consent_periods(conn, participant_id), scope, at)


# ------------------------------------------------------------- activities, observations
ACTIVITY = "SELECT id, trial_id, name, description, event_type FROM activities"
OBSERVATION = (
    "SELECT id, trial_id, activity_id, phase, duration_minutes, staff_role, observed_at,"
    " site_id, unit_id, note, created_at FROM observations"
)


def insert_activity(conn: psycopg.Connection, trial_id: int, fields: Params) -> Activity:
    return write_returning(
        conn,
        Activity,
        "activity",
        "INSERT INTO activities (trial_id, name, description, event_type)"
        " VALUES (%(trial_id)s, %(name)s, %(description)s, %(event_type)s)"
        " RETURNING id, trial_id, name, description, event_type",
        {**fields, "trial_id": trial_id},
    )


def list_activities(
    conn: psycopg.Connection, trial_id: int, *, limit: int, offset: int
) -> tuple[list[Activity], int]:
    return _page(conn, Activity, ACTIVITY, "trial_id = %(t)s", "id", {"t": trial_id}, limit, offset)


def insert_observation(conn: psycopg.Connection, trial_id: int, fields: Params) -> Observation:
    return write_returning(
        conn,
        Observation,
        "observation",
        "INSERT INTO observations (trial_id, activity_id, phase, duration_minutes, staff_role,"
        " observed_at, site_id, unit_id, note)"
        " VALUES (%(trial_id)s, %(activity_id)s, %(phase)s, %(duration_minutes)s,"
        "         %(staff_role)s, %(observed_at)s, %(site_id)s, %(unit_id)s, %(note)s)"
        " RETURNING id, trial_id, activity_id, phase, duration_minutes, staff_role, observed_at,"
        "           site_id, unit_id, note, created_at",
        {**fields, "trial_id": trial_id},
    )


def list_observations(
    conn: psycopg.Connection,
    trial_id: int,
    *,
    activity_id: int | None,
    phase: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Observation], int]:
    where = (
        "trial_id = %(t)s AND (%(activity)s::bigint IS NULL OR activity_id = %(activity)s)"
        " AND (%(phase)s::text IS NULL OR phase = %(phase)s)"
    )
    params = {"t": trial_id, "activity": activity_id, "phase": phase}
    return _page(conn, Observation, OBSERVATION, where, "observed_at, id", params, limit, offset)
