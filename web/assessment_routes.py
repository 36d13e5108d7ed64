"""Forms for a trial's assessment: success criteria (add, change, delete) and MAST survey answers.

The rules stay in evidence/assessment_service.py; a refusal (a finished trial, an activity of
another trial, a bad target) comes back on the trial page, next to the form that caused it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from access.schemas import Principal
from evidence import assessment_service as assessment
from evidence.schemas import SuccessCriterionCreate, SuccessCriterionUpdate, SurveyResponseCreate
from infra.http import Conn
from infra.types import Id
from web.deps import CheckedForm, CoordinatorOnly, SignedIn
from web.forms import FormErrors, attempt, fields, submit, validate
from web.trial_routes import render_trial_page
from web.ui import Ui

router = APIRouter()
ANSWER_PREFIX = "answer_"


def _back(
    request: Request,
    ui: Ui,
    conn: Conn,
    who: Principal,
    trial_id: int,
    form_key: str,
    values: dict[str, Any],
    errors: FormErrors,
) -> Response:
    """The trial page again, the form's errors in place under its own prefix."""
    return render_trial_page(
        request, ui, conn, who, trial_id, status_code=422, errors=errors.prefixed(form_key),
        form_values={form_key: values},
    )  # fmt: skip


def _done(trial_id: int, anchor: str) -> Response:
    return RedirectResponse(f"/app/trials/{trial_id}#{anchor}", status_code=303)


@router.post("/trials/{trial_id}/criteria")
def add_criterion(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
) -> Response:
    values = fields(form)
    added, errors = submit(
        conn,
        SuccessCriterionCreate,
        values,
        lambda criterion: assessment.add_criterion(conn, who, trial_id, criterion),
    )
    if added is not None:
        return _done(trial_id, "criteria")
    return _back(request, ui, conn, who, trial_id, "criterion", values, errors)


@router.post("/trials/{trial_id}/criteria/{criterion_id}")
def edit_criterion(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
    criterion_id: Id,
) -> Response:
    """The whole criterion is sent: an empty activity or description is cleared."""
    values: dict[str, Any] = {"activity_id": None, "description": ""} | fields(form)
    saved, errors = submit(
        conn,
        SuccessCriterionUpdate,
        values,
        lambda change: assessment.edit_criterion(conn, who, trial_id, criterion_id, change),
    )
    if saved is not None:
        return _done(trial_id, "criteria")
    return _back(request, ui, conn, who, trial_id, f"criterion{criterion_id}", values, errors)


@router.post("/trials/{trial_id}/criteria/{criterion_id}/delete")
def delete_criterion(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
    criterion_id: Id,
) -> Response:
    def remove() -> bool:
        assessment.remove_criterion(conn, who, trial_id, criterion_id)
        return True

    done, errors = attempt(conn, remove)
    if done:
        return _done(trial_id, "criteria")
    return _back(request, ui, conn, who, trial_id, f"criterion{criterion_id}", {}, errors)


@router.post("/trials/{trial_id}/surveys")
def add_survey_response(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
) -> Response:
    """One questionnaire: statements left unanswered are skipped, as on paper."""
    values = fields(form)
    answers = {
        k.removeprefix(ANSWER_PREFIX): v for k, v in values.items() if k.startswith(ANSWER_PREFIX)
    }
    plain = {k: v for k, v in values.items() if not k.startswith(ANSWER_PREFIX) and k != "form"}
    form_key = "survey_resident" if values.get("form") == "resident" else "survey_staff"
    response, errors = validate(SurveyResponseCreate, plain | {"answers": answers})
    if response is not None:
        added, errors = attempt(
            conn, lambda: assessment.add_survey_response(conn, who, trial_id, response)
        )
        if added is not None:
            return _done(trial_id, "surveys")
    return _back(request, ui, conn, who, trial_id, form_key, values, errors)
