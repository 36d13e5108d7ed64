"""The HTTP face of the assessment: success criteria (judged from live data) and MAST surveys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from access.deps import Coordinator, CurrentPrincipal
from evidence import assessment_service as service
from evidence import service as evaluation_service
from evidence.assessment_service import SurveySummary
from evidence.schemas import (
    SuccessCriterion,
    SuccessCriterionCreate,
    SuccessCriterionUpdate,
    SurveyResponse,
    SurveyResponseCreate,
)
from evidence.service import CriteriaAnswer
from infra.http import Conn
from infra.types import Id
from trials.routes import TrialId

router = APIRouter(tags=["assessment"])
CriterionId = Annotated[Id, Path()]


@router.get("/trials/{trial_id}/success-criteria")
def success_criteria(conn: Conn, principal: CurrentPrincipal, trial_id: TrialId) -> CriteriaAnswer:
    """Each criterion judged from live data: met, not met or not measurable, with the evidence,
    and the caveats on how far the evidence carries (short span, few observations)."""
    return evaluation_service.success_criteria_for(conn, principal, trial_id)


@router.post("/trials/{trial_id}/success-criteria", status_code=status.HTTP_201_CREATED)
def add_success_criterion(
    conn: Conn, who: Coordinator, trial_id: TrialId, body: SuccessCriterionCreate
) -> SuccessCriterion:
    return service.add_criterion(conn, who, trial_id, body)


@router.patch("/trials/{trial_id}/success-criteria/{criterion_id}")
def edit_success_criterion(
    conn: Conn,
    who: Coordinator,
    trial_id: TrialId,
    criterion_id: CriterionId,
    body: SuccessCriterionUpdate,
) -> SuccessCriterion:
    return service.edit_criterion(conn, who, trial_id, criterion_id, body)


@router.delete(
    "/trials/{trial_id}/success-criteria/{criterion_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
def remove_success_criterion(
    conn: Conn, who: Coordinator, trial_id: TrialId, criterion_id: CriterionId
) -> None:
    service.remove_criterion(conn, who, trial_id, criterion_id)


@router.post("/trials/{trial_id}/surveys", status_code=status.HTTP_201_CREATED)
def add_survey_response(
    conn: Conn, who: Coordinator, trial_id: TrialId, body: SurveyResponseCreate
) -> SurveyResponse:
    """One anonymous questionnaire (staff, resident or relative; baseline or with technology)."""
    return service.add_survey_response(conn, who, trial_id, body)


@router.get("/trials/{trial_id}/surveys")
def survey_summary(conn: Conn, principal: CurrentPrincipal, trial_id: TrialId) -> SurveySummary:
    """How many answered and the median score per statement, group and phase (counts only)."""
    return service.survey_summary_for(conn, principal, trial_id)
