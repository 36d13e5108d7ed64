"""A trial: the setup form, its page (lifecycle, costs, participants, devices, data, evidence)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from access.schemas import Principal, Role
from devices import service as devices
from evidence import service as evaluation_service
from evidence.evaluation import activity_note
from evidence.report_html import render_html as render_report_html
from evidence.report_html import render_pdf as render_report_pdf
from evidence.report_text import Reader
from infra.http import Conn, PageParams
from infra.settings import Settings
from infra.types import Id
from ingest import service as ingest
from trials import service as trials
from trials.lifecycle import allowed_from
from trials.schemas import (
    NULLABLE_ON_UPDATE,
    CollaborationForm,
    CostCategory,
    CostCreate,
    Decision,
    TransitionRequest,
    Trial,
    TrialCreate,
    TrialUpdate,
)
from web import charts
from web.assessment_view import assessment_context
from web.deps import CheckedForm, CoordinatorOnly, SignedIn, Who
from web.forms import FormErrors, attempt, fields, submit, validate
from web.ui import Ui, render

router = APIRouter()
ALL = PageParams(limit=500, offset=0)
TRIAL_LISTS = ("site_ids", "unit_ids")
TRIAL_INSTANTS = ("baseline_from", "baseline_until", "trial_from", "trial_until")
COST_PREFIX = "cost_"


def _places(conn: Conn) -> list[tuple[Any, list[Any]]]:
    """Every care home with its units, for choosing where a trial runs."""
    return [
        (site, trials.list_units(conn, site.id, ALL).items)
        for site in trials.list_sites(conn, ALL).items
    ]


def _new_trial_page(
    request: Request,
    ui: Ui,
    conn: Conn,
    who: Principal,
    *,
    status_code: int = 200,
    values: dict[str, Any] | None = None,
    errors: FormErrors | None = None,
    editing: Trial | None = None,
) -> Response:
    return render(
        request, ui, "trial_new.html", status_code=status_code, editing=editing,
        companies=trials.list_companies(conn, who, ALL).items, places=_places(conn),
        company_options=[(c.id, c.name) for c in trials.list_companies(conn, who, ALL).items],
        form_options=[(f.value, ui.pgettext("collaboration form", f.value)) for f in CollaborationForm],
        category_options=_category_options(ui),
        values=values or {"currency": "DKK"}, errors=errors or FormErrors(),
    )  # fmt: skip


def _category_options(ui: Ui) -> list[tuple[str, str]]:
    return [(c.value, ui.gettext(c.value)) for c in CostCategory]


@router.get("/trials/new")
def new_trial(request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn) -> Response:
    return _new_trial_page(request, ui, conn, who)


@router.post("/trials")
def create_trial(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm
) -> Response:
    values = fields(form, lists=TRIAL_LISTS, instants=TRIAL_INSTANTS)
    plan = {k: v for k, v in values.items() if not k.startswith(COST_PREFIX)}
    trial_request, errors = validate(TrialCreate, plan)
    # The first cost is optional; when its amount is filled in, the whole line must be valid.
    cost_values = {
        k.removeprefix(COST_PREFIX): v for k, v in values.items() if k.startswith(COST_PREFIX)
    }
    cost_request = None
    if cost_values.get("amount"):
        cost_values["recurring"] = "cost_recurring" in form
        cost_request, cost_errors = validate(CostCreate, cost_values)
        errors.update(cost_errors.prefixed(COST_PREFIX.rstrip("_")))
    if trial_request is not None and not errors:

        def create() -> int:
            assert trial_request is not None
            trial = trials.create_trial(conn, who, trial_request)
            if cost_request is not None:
                trials.add_cost(conn, trial.id, cost_request)
            return trial.id

        trial_id, errors = attempt(conn, create)
        if trial_id is not None:
            return RedirectResponse(f"/app/trials/{trial_id}", status_code=303)
    return _new_trial_page(request, ui, conn, who, status_code=422, values=values, errors=errors)


@router.get("/trials/{trial_id}/plan")
def edit_plan(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, trial_id: Id
) -> Response:
    trial = trials.get_trial_for(conn, who, trial_id)
    values = trial.model_dump()
    values["site_ids"] = [str(i) for i in trial.site_ids]
    values["unit_ids"] = [str(i) for i in trial.unit_ids]
    return _new_trial_page(request, ui, conn, who, values=values, editing=trial)


@router.post("/trials/{trial_id}/plan")
def save_plan(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
) -> Response:
    """The whole plan is sent: a field left empty is cleared where it may be (periods, cost)."""
    trial = trials.get_trial_for(conn, who, trial_id)
    values = fields(form, lists=TRIAL_LISTS, instants=TRIAL_INSTANTS)
    changes = {name: values.get(name) for name in NULLABLE_ON_UPDATE} | values
    changes.setdefault("site_ids", [])
    changes.setdefault("unit_ids", [])
    saved, errors = submit(
        conn, TrialUpdate, changes, lambda update: trials.update_trial(conn, who, trial_id, update)
    )
    if saved is not None:
        return RedirectResponse(f"/app/trials/{trial_id}", status_code=303)
    return _new_trial_page(
        request, ui, conn, who, status_code=422, values=values, errors=errors, editing=trial
    )


# ------------------------------------------------------------------------- the trial page
def render_trial_page(
    request: Request,
    ui: Ui,
    conn: Conn,
    who: Principal,
    trial_id: Id,
    *,
    status_code: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
    form_values: dict[str, dict[str, Any]] | None = None,
) -> Response:
    """The trial page; `form_values` are what was posted to one of its keyed forms (criteria,
    surveys), whose fields share names with other forms on the page."""
    trial = trials.get_trial_for(conn, who, trial_id)  # another company's trial: 404
    evidence = evaluation_service.evidence_for(conn, who, trial_id)
    coordinator = who.role == Role.COORDINATOR
    staff = who.role != Role.COMPANY
    settings: Settings = request.app.state.settings
    health, _ = devices.trial_health(conn, who, trial_id, limit=500, offset=0)
    context: dict[str, Any] = {
        "trial": trial,
        "evidence": evidence,
        "coordinator": coordinator,
        "staff": staff,
        "transitions": allowed_from(trial.status) if coordinator else (),
        "decision_options": [(d.value, ui.pgettext("decision", d.value)) for d in Decision],
        "history": trials.trial_history(conn, who, trial_id),
        "costs": trials.list_costs(conn, who, trial_id, ALL).items,
        "category_options": _category_options(ui),
        "health": health,
        "completeness": ingest.data_completeness(conn, who, trial_id),
        "stored": evidence.completeness,
        "now": evidence.facts.now,
        "flow": evaluation_service.trial_flow(conn, who, trial_id) if staff else None,
        "usage_chart": charts.usage_svg(evidence.daily_usage, ui),
        "time_saved_chart": charts.time_saved_svg(evidence.time_saved, ui),
        "activity_notes": {
            a.activity_id: activity_note(a, Reader(ui.locale)._)
            for a in evidence.time_saved.activities
        },
        "grafana_url": settings.grafana_url,
        "errors": errors or FormErrors(),
        "values": values or {},
        "form_values": form_values or {},
        **assessment_context(ui, conn, who, trial, coordinator=coordinator),
    }
    if coordinator:
        sites = {s.id: s for s in trials.list_sites(conn, ALL).items}
        context["sites"] = sites
        context["units"] = {
            u.id: u
            for site_id in trial.site_ids
            for u in trials.list_units(conn, site_id, ALL).items
        }
        context["participants"] = trials.list_participants(conn, who, trial_id, ALL).items
        context["site_options"] = [(s, sites[s].name) for s in trial.site_ids]
        context["unit_options"] = [(u.id, u.name) for u in context["units"].values()]
    return render(request, ui, "trial.html", status_code=status_code, **context)


@router.get("/trials/{trial_id}")
def trial_page(request: Request, ui: SignedIn, who: Who, conn: Conn, trial_id: Id) -> Response:
    return render_trial_page(request, ui, conn, who, trial_id)


@router.get("/trials/{trial_id}/data")
def data_panel(request: Request, ui: SignedIn, who: Who, conn: Conn, trial_id: Id) -> Response:
    """The 'is data arriving' panel alone, which the trial page refreshes every few seconds."""
    trials.get_trial_for(conn, who, trial_id)
    staff = who.role != Role.COMPANY
    return render(
        request, ui, "trial_data.html",
        trial_id=trial_id,
        flow=evaluation_service.trial_flow(conn, who, trial_id) if staff else None,
        completeness=ingest.data_completeness(conn, who, trial_id),
        stored=evaluation_service.completeness_for(conn, who, trial_id),
        now=datetime.now(UTC),
        health=devices.trial_health(conn, who, trial_id, limit=500, offset=0)[0],
    )  # fmt: skip


@router.post("/trials/{trial_id}/transitions")
def transition(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
) -> Response:
    values = fields(form)
    moved, errors = submit(
        conn,
        TransitionRequest,
        values,
        lambda change: trials.transition_trial(conn, who, trial_id, change),
    )
    if moved is not None:
        return RedirectResponse(f"/app/trials/{trial_id}#lifecycle", status_code=303)
    errors = FormErrors({"transition": errors.get("") or next(iter(errors.values()), "")})
    return render_trial_page(
        request, ui, conn, who, trial_id, status_code=422, errors=errors, values=values
    )


@router.post("/trials/{trial_id}/costs")
def add_cost(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    trial_id: Id,
) -> Response:
    values = fields(form, flags=("recurring",))
    added, errors = submit(
        conn, CostCreate, values, lambda cost: trials.add_cost(conn, trial_id, cost)
    )
    if added is not None:
        return RedirectResponse(f"/app/trials/{trial_id}#costs", status_code=303)
    return render_trial_page(
        request, ui, conn, who, trial_id, status_code=422, errors=errors.prefixed("cost"),
        values=values,
    )  # fmt: skip


@router.get("/trials/{trial_id}/report")
def report_html(ui: SignedIn, who: Who, conn: Conn, trial_id: Id) -> Response:
    """The same report the API serves, in the reader's language (companies: their own trials)."""
    evidence = evaluation_service.evidence_for(conn, who, trial_id)
    return HTMLResponse(render_report_html(evidence, ui.locale))


@router.get("/trials/{trial_id}/report.pdf")
def report_pdf(ui: SignedIn, who: Who, conn: Conn, trial_id: Id) -> Response:
    pdf = render_report_pdf(evaluation_service.evidence_for(conn, who, trial_id), ui.locale)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="trial-{trial_id}-report.pdf"'},
    )
