"""The HTTP face of this domain: thin handlers that parse, authorise, call the service, return.

Roles: coordinators do everything; evaluators read trials, activities and observations but never
participants or consent; a company reads its own trials only (another company's is a 404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from access.deps import AnyRole, Coordinator, CoordinatorOrEvaluator
from infra.http import Conn, Page, Paging
from infra.types import Id
from trials import service
from trials.consent import Scope
from trials.lifecycle import TrialStatus
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
    Instant,
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
)

router = APIRouter()
CREATED = status.HTTP_201_CREATED

SiteId = Annotated[Id, Path()]
TrialId = Annotated[Id, Path()]
ParticipantId = Annotated[Id, Path()]
IdFilter = Annotated[Id | None, Query()]


# ------------------------------------------------------------------------------ registry
@router.post("/companies", status_code=CREATED, tags=["registry"])
def register_company(body: CompanyCreate, conn: Conn, who: Coordinator) -> Company:
    return service.register_company(conn, body)


@router.get("/companies", tags=["registry"])
def list_companies(conn: Conn, who: AnyRole, paging: Paging) -> Page[Company]:
    """A company key sees only its own company."""
    return service.list_companies(conn, who, paging)


@router.post("/sites", status_code=CREATED, tags=["registry"])
def register_site(body: SiteCreate, conn: Conn, who: Coordinator) -> Site:
    return service.register_site(conn, body)


@router.get("/sites", tags=["registry"])
def list_sites(conn: Conn, who: AnyRole, paging: Paging) -> Page[Site]:
    return service.list_sites(conn, paging)


@router.get("/sites/{site_id}", tags=["registry"])
def get_site(site_id: SiteId, conn: Conn, who: AnyRole) -> Site:
    return service.get_site(conn, site_id)


@router.post("/sites/{site_id}/units", status_code=CREATED, tags=["registry"])
def add_unit(site_id: SiteId, body: UnitCreate, conn: Conn, who: Coordinator) -> Unit:
    return service.add_unit(conn, site_id, body)


@router.get("/sites/{site_id}/units", tags=["registry"])
def list_units(site_id: SiteId, conn: Conn, who: AnyRole, paging: Paging) -> Page[Unit]:
    return service.list_units(conn, site_id, paging)


# -------------------------------------------------------------------------------- trials
@router.post("/trials", status_code=CREATED, tags=["trials"])
def create_trial(body: TrialCreate, conn: Conn, who: Coordinator) -> Trial:
    """A new trial starts as a draft."""
    return service.create_trial(conn, who, body)


@router.get("/trials", tags=["trials"])
def list_trials(
    conn: Conn,
    who: AnyRole,
    paging: Paging,
    status: TrialStatus | None = None,
    company_id: IdFilter = None,
    site_id: IdFilter = None,
) -> Page[Trial]:
    """A company key sees only its own trials."""
    return service.list_trials(
        conn, who, paging, status=status, company_id=company_id, site_id=site_id
    )


@router.get("/trials/{trial_id}", tags=["trials"])
def get_trial(trial_id: TrialId, conn: Conn, who: AnyRole) -> Trial:
    return service.get_trial_for(conn, who, trial_id)


@router.patch("/trials/{trial_id}", tags=["trials"])
def update_trial(trial_id: TrialId, body: TrialUpdate, conn: Conn, who: Coordinator) -> Trial:
    """Change the plan; only the fields sent change. Status changes go through transitions."""
    return service.update_trial(conn, who, trial_id, body)


@router.post("/trials/{trial_id}/transitions", tags=["trials"])
def transition_trial(
    trial_id: TrialId, body: TransitionRequest, conn: Conn, who: Coordinator
) -> Trial:
    """draft → baseline → running → evaluating → concluded (with a decision), or stopped from
    baseline, running or evaluating. A 409 names the transitions allowed from the current status."""
    return service.transition_trial(conn, who, trial_id, body)


@router.get("/trials/{trial_id}/history", tags=["trials"])
def trial_history(trial_id: TrialId, conn: Conn, who: AnyRole) -> list[StatusChange]:
    return service.trial_history(conn, who, trial_id)


@router.post("/trials/{trial_id}/costs", status_code=CREATED, tags=["trials"])
def add_cost(trial_id: TrialId, body: CostCreate, conn: Conn, who: Coordinator) -> Cost:
    return service.add_cost(conn, trial_id, body)


@router.get("/trials/{trial_id}/costs", tags=["trials"])
def list_costs(trial_id: TrialId, conn: Conn, who: AnyRole, paging: Paging) -> Page[Cost]:
    return service.list_costs(conn, who, trial_id, paging)


# ------------------------------------------------------------------ participants, consent
@router.post("/trials/{trial_id}/participants", status_code=CREATED, tags=["participants"])
def enrol_participant(
    trial_id: TrialId, body: ParticipantCreate, conn: Conn, who: Coordinator
) -> Participant:
    """A pseudonym only: input that looks like a CPR number or a name is refused (422)."""
    return service.enrol_participant(conn, who, trial_id, body)


@router.get("/trials/{trial_id}/participants", tags=["participants"])
def list_participants(
    trial_id: TrialId, conn: Conn, who: Coordinator, paging: Paging
) -> Page[Participant]:
    return service.list_participants(conn, who, trial_id, paging)


@router.get("/participants/{participant_id}", tags=["participants"])
def get_participant(participant_id: ParticipantId, conn: Conn, who: Coordinator) -> Participant:
    return service.get_participant(conn, participant_id)


@router.post("/participants/{participant_id}/consents", status_code=CREATED, tags=["participants"])
def give_consent(
    participant_id: ParticipantId, body: ConsentCreate, conn: Conn, who: Coordinator
) -> Consent:
    """A new consent version; the active one ends where this one starts."""
    return service.give_consent(conn, who, participant_id, body)


@router.get("/participants/{participant_id}/consents", tags=["participants"])
def consent_history(participant_id: ParticipantId, conn: Conn, who: Coordinator) -> list[Consent]:
    """Every version, oldest first (a participant has a handful at most)."""
    return service.consent_history(conn, participant_id)


@router.get("/participants/{participant_id}/consent-check", tags=["participants"])
def consent_check(
    participant_id: ParticipantId,
    conn: Conn,
    who: Coordinator,
    scope: Scope,
    at: Annotated[Instant, Query(examples=["2026-02-10T03:00:00+01:00"])],
) -> ConsentAnswer:
    """Was this scope active at this time? Versions are active on [valid_from, valid_until)."""
    return service.consent_answer(conn, participant_id, scope, at)


# ------------------------------------------------------------- activities, observations
@router.post("/trials/{trial_id}/activities", status_code=CREATED, tags=["time-motion"])
def add_activity(trial_id: TrialId, body: ActivityCreate, conn: Conn, who: Coordinator) -> Activity:
    return service.add_activity(conn, trial_id, body)


@router.get("/trials/{trial_id}/activities", tags=["time-motion"])
def list_activities(trial_id: TrialId, conn: Conn, who: AnyRole, paging: Paging) -> Page[Activity]:
    return service.list_activities(conn, who, trial_id, paging)


@router.post("/trials/{trial_id}/observations", status_code=CREATED, tags=["time-motion"])
def record_observation(
    trial_id: TrialId, body: ObservationCreate, conn: Conn, who: Coordinator
) -> Observation:
    return service.record_observation(conn, trial_id, body)


@router.get("/trials/{trial_id}/observations", tags=["time-motion"])
def list_observations(
    trial_id: TrialId,
    conn: Conn,
    who: CoordinatorOrEvaluator,
    paging: Paging,
    activity_id: IdFilter = None,
    phase: Phase | None = None,
) -> Page[Observation]:
    return service.list_observations(
        conn, who, trial_id, paging, activity_id=activity_id, phase=phase
    )
