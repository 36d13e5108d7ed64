"""Participants (pseudonymised), their consent with scopes and proxy, and withdrawal keep/erase."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from access.schemas import Principal
from evidence import erase
from infra.http import Conn
from infra.types import Id
from trials import service as trials
from trials.consent import Scope
from trials.schemas import (
    ConsentCreate,
    GivenBy,
    ParticipantCreate,
    WithdrawalMode,
    WithdrawalRequest,
)
from web.deps import CheckedForm, CoordinatorOnly, SignedIn
from web.forms import FormErrors, attempt, fields, submit, validate
from web.trial_routes import render_trial_page
from web.ui import Ui, render

router = APIRouter()


@router.post("/trials/{trial_id}/participants")
def enrol(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
) -> Response:
    values = fields(form, instants=("enrolled_at",))
    participant, errors = submit(
        conn,
        ParticipantCreate,
        values,
        lambda enrolment: trials.enrol_participant(conn, who, trial_id, enrolment),
    )
    if participant is not None:
        return RedirectResponse(f"/app/participants/{participant.id}", status_code=303)
    return render_trial_page(
        request, ui, conn, who, trial_id, status_code=422, errors=errors.prefixed("participant"),
        values=values,
    )  # fmt: skip


def _participant_page(
    request: Request,
    ui: Ui,
    conn: Conn,
    who: Principal,
    participant_id: Id,
    *,
    template: str = "participant.html",
    status_code: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
    **extra: Any,
) -> Response:
    participant = trials.get_participant(conn, participant_id)
    consents = trials.consent_history(conn, participant_id)
    return render(
        request, ui, template, status_code=status_code,
        participant=participant,
        trial=trials.get_trial_for(conn, who, participant.trial_id),
        consents=consents,
        active=next((c for c in consents if c.valid_until is None), None),
        scopes=list(Scope),
        given_by=list(GivenBy),
        now=datetime.now(UTC),
        errors=errors or FormErrors(),
        values=values or {"given_by": "participant"},
        **extra,
    )  # fmt: skip


@router.get("/participants/{participant_id}")
def participant_page(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, participant_id: Id
) -> Response:
    return _participant_page(request, ui, conn, who, participant_id)


@router.post("/participants/{participant_id}/consents")
def give_consent(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm,
    participant_id: Id,
) -> Response:  # fmt: skip
    values = fields(form, lists=("scopes",), instants=("valid_from",))
    if values.get("given_by") != GivenBy.PROXY:
        values.pop("proxy_relation", None)  # the field stays on the page but is not the proxy's
    given, errors = submit(
        conn,
        ConsentCreate,
        values,
        lambda consent: trials.give_consent(conn, who, participant_id, consent),
    )
    if given is not None:
        return RedirectResponse(f"/app/participants/{participant_id}#consent", status_code=303)
    return _participant_page(
        request, ui, conn, who, participant_id, status_code=422, errors=errors, values=values
    )


@router.post("/participants/{participant_id}/withdrawal")
def withdraw(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm,
    participant_id: Id,
) -> Response:  # fmt: skip
    """Keep: withdraw at once. Erase: first a page that says what goes, then the erase itself."""
    values = fields(form, instants=("at",), skip=("csrf_token", "confirmed"))
    withdrawal, errors = validate(WithdrawalRequest, values)
    if withdrawal is None:
        return _participant_page(
            request, ui, conn, who, participant_id, status_code=422,
            errors=errors.prefixed("withdraw"), values=values,
        )  # fmt: skip
    if withdrawal.mode == WithdrawalMode.ERASE and form.get("confirmed") != "yes":
        return _participant_page(
            request, ui, conn, who, participant_id, template="withdraw_confirm.html",
            withdrawal=withdrawal, at_value=form.get("at"),
        )  # fmt: skip
    result, errors = attempt(
        conn,
        lambda: erase.withdraw_consent(
            conn, who, participant_id, withdrawal, request.app.state.settings.erasure_journal
        ),
    )
    if result is None:
        return _participant_page(
            request, ui, conn, who, participant_id, status_code=409,
            errors=FormErrors({"withdraw": errors.general or ""}), values=values,
        )  # fmt: skip
    return _participant_page(
        request, ui, conn, who, participant_id, template="withdrawn.html", result=result
    )
