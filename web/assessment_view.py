"""What the trial page shows of a trial's assessment: criteria verdicts, MAST surveys, the forms.

The verdicts come from evaluation_service and are worded as the report words them (one home for
that: evidence/report.py's `criterion_cells`, the `report` catalog), so page and report agree.
"""

from __future__ import annotations

from typing import Any

from access.schemas import Principal
from evidence import assessment_service as assessment
from evidence import service as evaluation_service
from evidence.caveats import render as render_caveat
from evidence.criteria import CriterionResult
from evidence.report import criterion_cells
from evidence.report_text import Reader
from evidence.schemas import PER_ACTIVITY_METRICS, CriterionMetric, Respondent
from evidence.surveys import QUESTIONS, STAFF_QUESTIONS
from infra.http import Conn, PageParams
from trials import service as trials
from trials.schemas import Trial
from web.ui import Ui

ALL = PageParams(limit=500, offset=0)


def basis_text(ui: Ui, c: CriterionResult, currency: str) -> str:
    """What a measured value rests on, in the reader's words (the service's `evidence` sentence
    is English; this says the same from its counts)."""
    b = c.basis
    if c.verdict == "not_measurable" or not b:
        return ""
    n = ui.number
    if c.metric == CriterionMetric.TIME_SAVED_PCT:
        return ui.gettext(
            "%(before)s → %(after)s min per occurrence (n = %(n_before)s and %(n_after)s)",
            before=n(b["baseline_minutes"], 1),
            after=n(b["with_technology_minutes"], 1),
            n_before=n(b["baseline_n"]),
            n_after=n(b["with_technology_n"]),
        )
    if c.metric == CriterionMetric.OCCURRENCES_PER_DAY:
        return ui.gettext(
            "%(count)s times in %(days)s days", count=n(b["occurrences"]), days=n(b["days"], 1)
        )
    if c.metric == CriterionMetric.USAGE_HOURS_PER_DAY:
        hours, days = n(b["hours_with_data"]), n(b["days"], 1)
        return ui.gettext("%(hours)s hours with data in %(days)s days", hours=hours, days=days)
    if c.metric == CriterionMetric.DATA_COMPLETENESS_PCT:
        return ui.gettext(
            "%(stored)s stored, %(lost)s lost", stored=n(b["stored"]), lost=n(b["lost"])
        )
    return ui.gettext(
        "one-off costs %(costs)s, net benefit %(benefit)s a year",
        costs=ui.money(b["one_off_costs"], currency),
        benefit=ui.money(b["net_benefit_per_year"], currency),
    )


def assessment_context(
    ui: Ui, conn: Conn, who: Principal, trial: Trial, *, coordinator: bool
) -> dict[str, Any]:
    """The verdicts, caveats and survey summary; for coordinators also the forms' choices (the
    metrics' and comparisons' explanations are in the template, in the web catalog)."""
    reader = Reader(ui.locale)
    trial_id = trial.id
    judged = evaluation_service.success_criteria_for(conn, who, trial_id)
    context: dict[str, Any] = {
        "reader": reader,
        "criteria": [
            (c, criterion_cells(reader, c), basis_text(ui, c, trial.currency))
            for c in judged.criteria
        ],
        "criteria_tally": judged.tally,
        "criteria_caveats": [render_caveat(c, reader._, reader.fmt) for c in judged.caveats],
        "survey_summary": assessment.survey_summary_for(conn, who, trial_id),
    }
    if coordinator:
        context |= {
            "metric_options": [(m.value, reader.label(m.value)) for m in CriterionMetric],
            "per_activity": ", ".join(reader.label(m) for m in sorted(PER_ACTIVITY_METRICS)),
            "activity_options": [
                (a.id, a.name) for a in trials.list_activities(conn, who, trial_id, ALL).items
            ],
            "survey_forms": [
                # Residents and relatives answer the same statements: one form, two groups.
                (
                    "staff",
                    [(Respondent.STAFF.value, reader.label("staff"))],
                    list(STAFF_QUESTIONS.items()),
                ),
                (
                    "resident",
                    [
                        (r.value, reader.label(r.value))
                        for r in (Respondent.RESIDENT, Respondent.RELATIVE)
                    ],
                    list(QUESTIONS[Respondent.RESIDENT.value].items()),
                ),
            ],
        }
    return context
