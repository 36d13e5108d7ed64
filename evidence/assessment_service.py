"""The assessment's rules: success criteria kept per trial, and MAST surveys summarised.

Judging the criteria against live data happens in evaluation_service, which gathers the numbers
(evidence/criteria.py says what each metric means). Never commits; the caller owns the transaction.
"""

from __future__ import annotations

from decimal import Decimal

import psycopg
from pydantic import BaseModel, Field

from access.schemas import Principal, Role
from access.service import record
from evidence import assessment_repository as repo
from evidence.schemas import (
    ACTIVITY_FOR_METRIC,
    Respondent,
    SuccessCriterion,
    SuccessCriterionCreate,
    SuccessCriterionUpdate,
    SurveyResponse,
    SurveyResponseCreate,
    activity_problem,
)
from evidence.surveys import QUESTIONS, SCALE
from i18n import Message
from infra.errors import Conflict, Invalid, NotFound
from trials import service as trials_service
from trials.lifecycle import FINISHED
from trials.schemas import Phase


# ------------------------------------------------------------------------ success criteria
def _trial_open_for_criteria(conn: psycopg.Connection, actor: Principal, trial_id: int) -> None:
    # Once decided, the criteria the decision was judged by stay as they were.
    trial = trials_service.get_trial_for(conn, actor, trial_id)
    if trial.status in FINISHED:
        raise Conflict(
            "trial %(trial)s is %(status)s: its success criteria are final",
            {"trial": trial_id, "status": Message(trial.status.value)},
        )


def _check_activity(conn: psycopg.Connection, trial_id: int, activity_id: int | None) -> None:
    if activity_id is not None and not repo.activity_in_trial(conn, trial_id, activity_id):
        raise Invalid(
            "activity %(activity)s is not one of trial %(trial)s's activities",
            {"activity": activity_id, "trial": trial_id},
        )


def add_criterion(
    conn: psycopg.Connection, actor: Principal, trial_id: int, request: SuccessCriterionCreate
) -> SuccessCriterion:
    _trial_open_for_criteria(conn, actor, trial_id)
    _check_activity(conn, trial_id, request.activity_id)
    criterion = repo.insert_criterion(conn, trial_id, request.model_dump())
    record(
        conn,
        actor,
        "success_criterion.create",
        "trial",
        trial_id,
        after=criterion.model_dump(mode="json"),
    )
    return criterion


def _criterion(conn: psycopg.Connection, trial_id: int, criterion_id: int) -> SuccessCriterion:
    criterion = repo.get_criterion(conn, trial_id, criterion_id)
    if criterion is None:
        raise NotFound(
            "trial %(trial)s has no success criterion %(criterion)s",
            {"trial": trial_id, "criterion": criterion_id},
        )
    return criterion


def edit_criterion(
    conn: psycopg.Connection,
    actor: Principal,
    trial_id: int,
    criterion_id: int,
    request: SuccessCriterionUpdate,
) -> SuccessCriterion:
    _trial_open_for_criteria(conn, actor, trial_id)
    before = _criterion(conn, trial_id, criterion_id)
    merged = {**before.model_dump(), **request.model_dump(exclude_unset=True)}
    metrics = activity_problem(merged["metric"], merged["activity_id"])
    if metrics:
        raise Invalid(ACTIVITY_FOR_METRIC.message, {"metrics": metrics})
    _check_activity(conn, trial_id, merged["activity_id"])
    after = repo.update_criterion(conn, criterion_id, merged)
    record(
        conn,
        actor,
        "success_criterion.edit",
        "trial",
        trial_id,
        before=before.model_dump(mode="json"),
        after=after.model_dump(mode="json"),
    )
    return after


def remove_criterion(
    conn: psycopg.Connection, actor: Principal, trial_id: int, criterion_id: int
) -> None:
    _trial_open_for_criteria(conn, actor, trial_id)
    before = _criterion(conn, trial_id, criterion_id)
    repo.delete_criterion(conn, criterion_id)
    record(
        conn,
        actor,
        "success_criterion.delete",
        "trial",
        trial_id,
        before=before.model_dump(mode="json"),
    )


# ----------------------------------------------------------------------------- surveys
def add_survey_response(
    conn: psycopg.Connection, actor: Principal, trial_id: int, request: SurveyResponseCreate
) -> SurveyResponse:
    trials_service.get_trial_for(conn, actor, trial_id)
    return repo.insert_survey_response(conn, trial_id, request.model_dump())


# A company knows whom the lab asked: from fewer answers than this it could read one resident's,
# relative's or staff member's own answer off the median, so it is withheld from companies.
MIN_ANSWERS_FOR_COMPANIES = 3


class PhaseTally(BaseModel):
    answers: int
    median: Decimal | None
    withheld: bool = Field(
        False,
        description=f"the median exists but is not shown to a company: under"
        f" {MIN_ANSWERS_FOR_COMPANIES} answers",
    )


class QuestionSummary(BaseModel):
    question: str
    statement: str
    baseline: PhaseTally
    intervention: PhaseTally


class RespondentSummary(BaseModel):
    respondent: Respondent
    responses_baseline: int
    responses_intervention: int
    questions: list[QuestionSummary]


class SurveySummary(BaseModel):
    trial_id: int
    scale: str = SCALE
    groups: list[RespondentSummary]

    @property
    def withheld_under(self) -> int | None:
        """The minimum of answers when some median is withheld from this reader, else None."""
        tallies = [
            t for g in self.groups for q in g.questions for t in (q.baseline, q.intervention)
        ]
        return MIN_ANSWERS_FOR_COMPANIES if any(t.withheld for t in tallies) else None


def survey_summary(
    conn: psycopg.Connection, trial_id: int, for_company: bool = False
) -> SurveySummary:
    """Counts and medians per group, statement and phase; groups nobody answered are left out.
    For a company, medians of fewer than MIN_ANSWERS_FOR_COMPANIES answers are withheld."""
    tallies = {(t.respondent, t.phase, t.question): t for t in repo.survey_tallies(conn, trial_id)}
    responses = repo.survey_response_counts(conn, trial_id)
    groups = []
    for respondent in Respondent:
        counts = [responses.get((respondent.value, phase.value), 0) for phase in Phase]
        if not any(counts):
            continue
        questions = []
        for question, statement in QUESTIONS[respondent.value].items():
            per_phase = {}
            for phase in Phase:
                tally = tallies.get((respondent.value, phase.value, question))
                answers = tally.answers if tally else 0
                withheld = for_company and 0 < answers < MIN_ANSWERS_FOR_COMPANIES
                median = tally.median.quantize(Decimal("0.1")) if tally else None
                per_phase[phase.value] = PhaseTally(
                    answers=answers, median=None if withheld else median, withheld=withheld
                )
            questions.append(QuestionSummary(question=question, statement=statement, **per_phase))
        groups.append(
            RespondentSummary(
                respondent=respondent,
                responses_baseline=counts[0],
                responses_intervention=counts[1],
                questions=questions,
            )
        )
    return SurveySummary(trial_id=trial_id, groups=groups)


def survey_summary_for(
    conn: psycopg.Connection, principal: Principal, trial_id: int
) -> SurveySummary:
    trials_service.get_trial_for(conn, principal, trial_id)
    return survey_summary(conn, trial_id, for_company=principal.role == Role.COMPANY)
