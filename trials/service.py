"""The rules of a trial: who may see it, how its status moves, how consent versions follow each other.

Services never commit: the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import psycopg

from access.schemas import Principal, Role
from access.service import record
from i18n import Message
from infra.errors import Conflict, Invalid, NotFound
from infra.http import Page, PageParams
from trials import repository
from trials.consent import Scope
from trials.lifecycle import FINISHED, TrialStatus, allowed_from, is_allowed
from trials.schemas import (
    Activity,
    ActivityCreate,
    Company,
    CompanyCreate,
    Consent,
    ConsentAnswer,
    ConsentCreate,
    Cost,
    CostCreate,
    Decision,
    Observation,
    ObservationCreate,
    Participant,
    ParticipantCreate,
    Phase,
    Site,
    SiteCreate,
    StatusChange,
    TransitionRequest,
    Trial,
    TrialCreate,
    TrialUpdate,
    Unit,
    UnitCreate,
    WithdrawalRequest,
    periods_out_of_order,
)

T = TypeVar("T")


def _page(found: tuple[list[T], int], paging: PageParams) -> Page[T]:
    rows, total = found
    return Page(items=rows, total=total, limit=paging.limit, offset=paging.offset)


# ------------------------------------------------------------------------------ registry
def register_company(conn: psycopg.Connection, request: CompanyCreate) -> Company:
    return repository.insert_company(conn, request.model_dump())


def list_companies(
    conn: psycopg.Connection, principal: Principal, paging: PageParams
) -> Page[Company]:
    # A company sees itself, never its competitors in the same lab.
    only = principal.company_id if principal.role == Role.COMPANY else None
    found = repository.list_companies(conn, only_id=only, limit=paging.limit, offset=paging.offset)
    return _page(found, paging)


def register_site(conn: psycopg.Connection, request: SiteCreate) -> Site:
    return repository.insert_site(conn, request.model_dump())


def get_site(conn: psycopg.Connection, site_id: int) -> Site:
    site = repository.get_site(conn, site_id)
    if site is None:
        raise NotFound("site %(site)s does not exist", {"site": site_id})
    return site


def list_sites(conn: psycopg.Connection, paging: PageParams) -> Page[Site]:
    return _page(repository.list_sites(conn, limit=paging.limit, offset=paging.offset), paging)


def add_unit(conn: psycopg.Connection, site_id: int, request: UnitCreate) -> Unit:
    get_site(conn, site_id)
    return repository.insert_unit(conn, site_id, request.name)


def list_units(conn: psycopg.Connection, site_id: int, paging: PageParams) -> Page[Unit]:
    get_site(conn, site_id)
    found = repository.list_units(conn, site_id, limit=paging.limit, offset=paging.offset)
    return _page(found, paging)


# -------------------------------------------------------------------------------- trials
def get_trial_for(conn: psycopg.Connection, principal: Principal, trial_id: int) -> Trial:
    """The trial, if this principal may see it. Another company's trial does not exist for them."""
    trial = repository.get_trial(conn, trial_id)
    if trial is None or (
        principal.role == Role.COMPANY and trial.company_id != principal.company_id
    ):
        raise NotFound("trial %(trial)s does not exist", {"trial": trial_id})
    return trial


def _trial_to_change(conn: psycopg.Connection, trial_id: int) -> Trial:
    trial = repository.get_trial(conn, trial_id, for_update=True)
    if trial is None:
        raise NotFound("trial %(trial)s does not exist", {"trial": trial_id})
    return trial


def _check_places(conn: psycopg.Connection, site_ids: list[int], unit_ids: list[int]) -> None:
    """Every site exists, and every unit exists and belongs to one of the trial's sites."""
    problems = [
        Message("site %(site)s does not exist", {"site": s})
        for s in sorted(set(site_ids) - repository.existing_sites(conn, site_ids))
    ]
    unit_sites = repository.sites_of_units(conn, unit_ids)
    for unit_id in sorted(set(unit_ids)):
        if unit_id not in unit_sites:
            problems.append(Message("unit %(unit)s does not exist", {"unit": unit_id}))
        elif unit_sites[unit_id] not in site_ids:
            problems.append(
                Message(
                    "unit %(unit)s belongs to site %(site)s, not one of the trial's sites",
                    {"unit": unit_id, "site": unit_sites[unit_id]},
                )
            )
    if problems:
        raise Invalid("%(problems)s", {"problems": problems})


def create_trial(conn: psycopg.Connection, actor: Principal, request: TrialCreate) -> Trial:
    if repository.get_company(conn, request.company_id) is None:
        raise Invalid("company %(company)s does not exist", {"company": request.company_id})
    _check_places(conn, request.site_ids, request.unit_ids)
    plan = request.model_dump(exclude={"company_id", "site_ids", "unit_ids"})
    trial_id = repository.insert_trial(conn, request.company_id, plan)
    repository.replace_trial_places(conn, trial_id, request.site_ids, request.unit_ids)
    repository.append_status_history(conn, trial_id, None, TrialStatus.DRAFT, actor.actor)
    return _reloaded(conn, trial_id)


def _reloaded(conn: psycopg.Connection, trial_id: int) -> Trial:
    trial = repository.get_trial(conn, trial_id)
    assert trial is not None, "a trial changed in this transaction still exists"
    return trial


def list_trials(
    conn: psycopg.Connection,
    principal: Principal,
    paging: PageParams,
    *,
    status: TrialStatus | None = None,
    company_id: int | None = None,
    site_id: int | None = None,
) -> Page[Trial]:
    if principal.role == Role.COMPANY:
        if company_id not in (None, principal.company_id):
            return Page(items=[], total=0, limit=paging.limit, offset=paging.offset)
        company_id = principal.company_id
    found = repository.list_trials(
        conn,
        status=status,
        company_id=company_id,
        site_id=site_id,
        limit=paging.limit,
        offset=paging.offset,
    )
    return _page(found, paging)


def update_trial(
    conn: psycopg.Connection, actor: Principal, trial_id: int, request: TrialUpdate
) -> Trial:
    trial = _trial_to_change(conn, trial_id)
    if trial.status in FINISHED:
        raise Conflict(
            "trial %(trial)s is %(status)s: a finished trial is not edited",
            {"trial": trial_id, "status": Message(trial.status.value)},
        )
    changes = request.model_dump(exclude_unset=True)
    merged = {**trial.model_dump(), **changes}
    problems = periods_out_of_order(merged)
    if problems:
        raise Invalid(problems[0][0].message)
    if "site_ids" in changes or "unit_ids" in changes:
        _check_places(conn, merged["site_ids"], merged["unit_ids"])
        repository.replace_trial_places(conn, trial_id, merged["site_ids"], merged["unit_ids"])
    plan_changes = {k: v for k, v in changes.items() if k in repository.PLAN_COLUMNS}
    if plan_changes:
        repository.update_trial_plan(conn, trial_id, plan_changes)
    return _reloaded(conn, trial_id)


def transition_trial(
    conn: psycopg.Connection, actor: Principal, trial_id: int, request: TransitionRequest
) -> Trial:
    trial = _trial_to_change(conn, trial_id)
    current, target = trial.status, request.to
    if not is_allowed(current, target):
        allowed = [status.value for status in allowed_from(current)]
        raise Conflict(
            "trial %(trial)s cannot go from '%(current)s' to '%(target)s';"
            " allowed from '%(current)s': %(allowed)s"
            if allowed
            else "trial %(trial)s cannot go from '%(current)s' to '%(target)s';"
            " it is final",
            {"trial": trial_id, "current": Message(current.value), "target": Message(target.value),
             "allowed": ", ".join(allowed)},
            current=current.value,
            allowed=allowed,
        )  # fmt: skip
    # Stopping is itself the decision to stop.
    decision = Decision.STOP if target == TrialStatus.STOPPED else request.decision
    repository.set_status(
        conn, trial_id, status=target, decision=decision, rationale=request.rationale
    )
    repository.append_status_history(conn, trial_id, current, target, actor.actor)
    record(
        conn,
        actor,
        "trial.transition",
        "trial",
        trial_id,
        before={"status": current.value},
        after={"status": target.value, "decision": decision, "rationale": request.rationale},
    )
    return _reloaded(conn, trial_id)


def trial_history(
    conn: psycopg.Connection, principal: Principal, trial_id: int
) -> list[StatusChange]:
    get_trial_for(conn, principal, trial_id)
    return repository.status_history(conn, trial_id)


def add_cost(conn: psycopg.Connection, trial_id: int, request: CostCreate) -> Cost:
    _trial_to_change(conn, trial_id)
    return repository.insert_cost(conn, trial_id, request.model_dump())


def list_costs(
    conn: psycopg.Connection, principal: Principal, trial_id: int, paging: PageParams
) -> Page[Cost]:
    get_trial_for(conn, principal, trial_id)
    found = repository.list_costs(conn, trial_id, limit=paging.limit, offset=paging.offset)
    return _page(found, paging)


# ------------------------------------------------------------------------- participants
def enrol_participant(
    conn: psycopg.Connection, actor: Principal, trial_id: int, request: ParticipantCreate
) -> Participant:
    trial = _trial_to_change(conn, trial_id)
    if trial.status in FINISHED:
        raise Conflict(
            "trial %(trial)s is %(status)s: nobody is enrolled any more",
            {"trial": trial_id, "status": Message(trial.status.value)},
        )
    if request.site_id not in trial.site_ids:
        raise Invalid(
            "site %(site)s is not one of trial %(trial)s's sites",
            {"site": request.site_id, "trial": trial_id},
        )
    participant = repository.insert_participant(conn, trial_id, request.model_dump())
    record(
        conn,
        actor,
        "participant.enrol",
        "participant",
        participant.id,
        after=participant.model_dump(mode="json"),
    )
    return participant


def get_participant(conn: psycopg.Connection, participant_id: int) -> Participant:
    participant = repository.get_participant(conn, participant_id)
    if participant is None:
        raise NotFound(
            "participant %(participant)s does not exist", {"participant": participant_id}
        )
    return participant


def list_participants(
    conn: psycopg.Connection, principal: Principal, trial_id: int, paging: PageParams
) -> Page[Participant]:
    get_trial_for(conn, principal, trial_id)
    found = repository.list_participants(conn, trial_id, limit=paging.limit, offset=paging.offset)
    return _page(found, paging)


# ------------------------------------------------------------------------------ consent
def _consent_versions_locked(conn: psycopg.Connection, participant_id: int) -> list[Consent]:
    # Locking the participant makes version numbering and closing the active version atomic,
    # and serialises the change with ingest commits, which hold it FOR SHARE (ingest/writer.py).
    if repository.get_participant(conn, participant_id, for_update=True) is None:
        raise NotFound(
            "participant %(participant)s does not exist", {"participant": participant_id}
        )
    return repository.consent_versions(conn, participant_id)


def give_consent(
    conn: psycopg.Connection, actor: Principal, participant_id: int, request: ConsentCreate
) -> Consent:
    """A new version; it supersedes the active one from its own valid_from on."""
    versions = _consent_versions_locked(conn, participant_id)
    latest = versions[-1] if versions else None
    superseded = None
    if latest is not None and latest.valid_until is None:
        if request.valid_from <= latest.valid_from:
            raise Conflict(
                "a new version must start after the active version %(version)s"
                " (valid from %(valid_from)s)",
                {"version": latest.version, "valid_from": latest.valid_from},
            )
        superseded = repository.close_consent(
            conn, latest.id, until=request.valid_from, ended_by="superseded"
        )
    elif (
        latest is not None
        and latest.valid_until is not None
        and request.valid_from < latest.valid_until
    ):
        raise Conflict(
            "a new version must start at or after %(valid_until)s,"
            " when version %(version)s ended (%(ended_by)s)",
            {
                "valid_until": latest.valid_until,
                "version": latest.version,
                "ended_by": Message(str(latest.ended_by)),
            },
        )
    version = latest.version + 1 if latest else 1
    consent = repository.insert_consent(conn, participant_id, version, request.model_dump())
    record(
        conn,
        actor,
        "consent.give",
        "participant",
        participant_id,
        before=_dumped(superseded),
        after=consent.model_dump(mode="json"),
    )
    return consent


def _dumped(consent: Consent | None) -> dict[str, object] | None:
    return None if consent is None else consent.model_dump(mode="json")


def consent_history(conn: psycopg.Connection, participant_id: int) -> list[Consent]:
    get_participant(conn, participant_id)
    return repository.consent_versions(conn, participant_id)


def withdraw_consent(
    conn: psycopg.Connection, actor: Principal, participant_id: int, request: WithdrawalRequest
) -> Consent:
    """Close the active version at `at` and write it down. What was collected goes with it in
    the same transaction: the caller is evidence/erase.py, which owns the erase."""
    versions = _consent_versions_locked(conn, participant_id)
    active = next((v for v in versions if v.valid_until is None), None)
    if active is None:
        raise Conflict(
            "participant %(participant)s has no active consent to withdraw",
            {"participant": participant_id},
        )
    if request.at <= active.valid_from:
        raise Conflict(
            "the withdrawal must come after the active version's start (%(valid_from)s)",
            {"valid_from": active.valid_from},
        )
    withdrawn = repository.close_consent(
        conn, active.id, until=request.at, ended_by="withdrawn", withdrawal_mode=request.mode
    )
    record(
        conn,
        actor,
        "consent.withdraw",
        "participant",
        participant_id,
        before=_dumped(active),
        after=_dumped(withdrawn),
    )
    return withdrawn


def consent_answer(
    conn: psycopg.Connection, participant_id: int, scope: Scope, at: datetime
) -> ConsentAnswer:
    get_participant(conn, participant_id)
    active = repository.consent_active_at(conn, participant_id, scope, at)
    return ConsentAnswer(participant_id=participant_id, scope=scope, at=at, active=active)


# ------------------------------------------------------------- activities, observations
def add_activity(conn: psycopg.Connection, trial_id: int, request: ActivityCreate) -> Activity:
    _trial_to_change(conn, trial_id)
    return repository.insert_activity(conn, trial_id, request.model_dump())


def list_activities(
    conn: psycopg.Connection, principal: Principal, trial_id: int, paging: PageParams
) -> Page[Activity]:
    get_trial_for(conn, principal, trial_id)
    found = repository.list_activities(conn, trial_id, limit=paging.limit, offset=paging.offset)
    return _page(found, paging)


def _observed_place(
    conn: psycopg.Connection, site_id: int | None, unit_id: int | None
) -> tuple[int | None, int | None]:
    """A unit implies its site; a site given with it must be that site."""
    if unit_id is None:
        return site_id, None
    unit_site = repository.sites_of_units(conn, [unit_id]).get(unit_id)
    if unit_site is None:
        raise Invalid("unit %(unit)s does not exist", {"unit": unit_id})
    if site_id is not None and site_id != unit_site:
        raise Invalid(
            "unit %(unit)s belongs to site %(unit_site)s, not site %(site)s",
            {"unit": unit_id, "unit_site": unit_site, "site": site_id},
        )
    return unit_site, unit_id


def record_observation(
    conn: psycopg.Connection, trial_id: int, request: ObservationCreate
) -> Observation:
    _trial_to_change(conn, trial_id)
    fields = request.model_dump()
    fields["site_id"], fields["unit_id"] = _observed_place(conn, request.site_id, request.unit_id)
    return repository.insert_observation(conn, trial_id, fields)


def list_observations(
    conn: psycopg.Connection,
    principal: Principal,
    trial_id: int,
    paging: PageParams,
    *,
    activity_id: int | None = None,
    phase: Phase | None = None,
) -> Page[Observation]:
    get_trial_for(conn, principal, trial_id)
    found = repository.list_observations(
        conn,
        trial_id,
        activity_id=activity_id,
        phase=phase,
        limit=paging.limit,
        offset=paging.offset,
    )
    return _page(found, paging)
