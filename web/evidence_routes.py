"""Time-motion data (activities, one form per observation session) and the evaluator's exports."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError

from evidence.export import export_csv
from evidence.repository import ExportKind
from infra.http import Conn, PageParams
from infra.types import Id
from trials import service as trials
from trials.schemas import ActivityCreate, ObservationCreate, Phase
from web.deps import CheckedForm, CoordinatorOnly, SignedIn, StaffOnly
from web.forms import FormErrors, attempt, fields, submit, validation_errors
from web.ui import render

router = APIRouter()
ALL = PageParams(limit=500, offset=0)
SESSION_ROWS = 8  # durations one observer typically notes in a session


def _time_motion_page(
    request: Request, ui: SignedIn, conn: Conn, who: Any, trial_id: Id, *,
    status_code: int = 200, errors: FormErrors | None = None, values: dict[str, Any] | None = None,
) -> Response:  # fmt: skip
    trial = trials.get_trial_for(conn, who, trial_id)
    activities = trials.list_activities(conn, who, trial_id, ALL).items
    observations = trials.list_observations(conn, who, trial_id, ALL).items
    units = {
        unit.id: unit
        for site in trial.site_ids
        for unit in trials.list_units(conn, site, ALL).items
    }
    return render(
        request, ui, "time_motion.html", status_code=status_code, trial=trial,
        activities=activities, observations=observations,
        names={a.id: a.name for a in activities},
        activity_options=[(a.id, a.name) for a in activities],
        phase_options=[(p.value, ui.gettext(p.value)) for p in Phase],
        unit_options=[(u.id, u.name) for u in units.values()],
        rows=range(SESSION_ROWS), errors=errors or FormErrors(), values=values or {},
    )  # fmt: skip


@router.get("/trials/{trial_id}/time-motion")
def time_motion(
    request: Request, ui: SignedIn, who: StaffOnly, conn: Conn, trial_id: Id
) -> Response:
    return _time_motion_page(request, ui, conn, who, trial_id)


@router.post("/trials/{trial_id}/activities")
def add_activity(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
) -> Response:
    values = fields(form)
    added, errors = submit(
        conn, ActivityCreate, values, lambda activity: trials.add_activity(conn, trial_id, activity)
    )
    if added is not None:
        return RedirectResponse(f"/app/trials/{trial_id}/time-motion", status_code=303)
    return _time_motion_page(
        request, ui, conn, who, trial_id, status_code=422, errors=errors.prefixed("activity"),
        values=values,
    )  # fmt: skip


def _row_field(row: int, name: str) -> str:
    """A session's durations are one field per row; the shared fields are one."""
    return f"{name}-{row}" if name == "duration_minutes" else name


@router.post("/trials/{trial_id}/observations")
def record_session(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
) -> Response:
    """One observation session: shared activity, phase, place, observer; a duration per row."""
    values = fields(form, lists=("duration_minutes",), instants=("observed_at",))
    durations = values.pop("duration_minutes", [])
    errors = FormErrors()
    if not durations:
        errors["duration_minutes-0"] = ui.gettext("Write at least one duration in minutes.")
    sessions: list[ObservationCreate] = []
    for row, minutes in enumerate(durations):
        try:
            sessions.append(
                ObservationCreate.model_validate({**values, "duration_minutes": minutes})
            )
        except ValidationError as exc:
            in_row = validation_errors(exc, partial(_row_field, row))
            errors.update({k: v for k, v in in_row.items() if k not in errors})
    if not errors:

        def record_all() -> int:
            return len([trials.record_observation(conn, trial_id, s) for s in sessions])

        recorded, errors = attempt(conn, record_all)
        if recorded:
            return RedirectResponse(
                f"/app/trials/{trial_id}/time-motion#observations", status_code=303
            )
    values["duration_minutes"] = durations
    return _time_motion_page(
        request, ui, conn, who, trial_id, status_code=422, errors=errors, values=values
    )


@router.get("/trials/{trial_id}/exports/{kind}.csv")
def export(who: StaffOnly, conn: Conn, trial_id: Id, kind: ExportKind) -> StreamingResponse:
    """The evaluator's pseudonymised CSV, as in the API: consent-checked and audited."""
    result = export_csv(conn, who, trial_id, kind)
    conn.commit()  # the audit row is durable before any personal data leaves
    return StreamingResponse(
        result.chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{result.filename}"'},
    )
