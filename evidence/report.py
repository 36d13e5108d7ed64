"""The trial report: an evidence pack a municipal council can decide on, as HTML and as PDF.

The content is built here once, as sections of paragraphs, tables and charts; report_html.py
renders them as one HTML document, and the PDF is that HTML laid out on A4 by WeasyPrint. Danish by
default, English on request: strings are English msgids of the `report` domain, enum labels come
from `common`, numbers, money and dates from i18n.Formatter, days are Copenhagen days. The first
page answers the council's four questions: did it work, what does it cost, what does it save,
what do we decide. Participant pseudonyms never reach this module: it reads counts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from evidence.assessment_service import PhaseTally
from evidence.caveats import MIN_SPAN_DAYS, render
from evidence.criteria import CriterionResult
from evidence.evaluation import MIN_OBSERVATIONS, PhaseSummary
from evidence.report_text import Reader
from evidence.service import Evidence

Recommendation = Literal["no_criteria", "criteria_not_met", "too_early", "adopt", "met_but_costly"]


@dataclass
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    css: str = ""  # "facts" (label/value), "numbers" (right-aligned figures)
    cell_css: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) → class


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[str] = field(default_factory=list)  # keys into charts()
    notes: list[str] = field(default_factory=list)
    css: str = ""


# ------------------------------------------------------------------------ the verdict
def recommendation(evidence: Evidence) -> Recommendation:
    """What the evidence supports, before anyone decides (the council may decide otherwise)."""
    tally = evidence.criteria.tally
    days = evidence.business_case.observed.days
    if tally.total == 0:
        return "no_criteria"
    if tally.not_met:
        return "criteria_not_met"
    if tally.not_measurable or days is None or days < MIN_SPAN_DAYS:
        return "too_early"
    projection = evidence.business_case.trial_units_full_year
    if projection is not None and projection.net_benefit_per_year > 0:
        return "adopt"
    return "met_but_costly"


def _recommendation_text(r: Reader, code: Recommendation) -> str:
    return {
        "no_criteria": r._("No measurable success criteria are set: agree them before deciding."),
        "criteria_not_met": r._(
            "Not every success criterion is met: the evidence does not support adoption as the "
            "trial stands."
        ),
        "too_early": r._(
            "Too early to decide: continue until every criterion can be measured over at least "
            "four weeks."
        ),
        "adopt": r._(
            "Every success criterion is met and the time saved is worth more than the recurring "
            "costs: the evidence supports adoption."
        ),
        "met_but_costly": r._(
            "Every success criterion is met, but the time saved is worth less than the recurring "
            "costs: decide on the other benefits, or negotiate the costs."
        ),
    }[code]


def _decision_text(r: Reader, evidence: Evidence) -> str:
    facts = evidence.facts
    if not facts.decision:
        return r._("No decision recorded yet.")
    decided = r.date(facts.decided_at) if facts.decided_at else "—"
    text = r._("%(decision)s, decided %(date)s.") % {
        "decision": r.common("decision", facts.decision).capitalize(),
        "date": decided,
    }
    if facts.decision_rationale:
        text += " " + r._("Rationale: %(rationale)s") % {"rationale": facts.decision_rationale}
    return text


# ------------------------------------------------------------------------ page one
def _summary(r: Reader, evidence: Evidence) -> str:
    facts, saved, case = evidence.facts, evidence.time_saved, evidence.business_case
    tally = evidence.criteria.tally
    sentences = []
    if saved.period_from and saved.period_until:
        sentences.append(
            r._(
                "%(company)s tested %(product)s at %(sites)s from %(start)s through %(end)s "
                "(%(days)s days with the technology)."
            )
            % {
                "company": facts.company_name,
                "product": facts.product,
                "sites": r.join(facts.sites) or "—",
                "start": r.date(saved.period_from),
                "end": r.last_day(saved.period_until),
                "days": r.num(case.observed.days or 0, 1),
            }
        )
    else:
        sentences.append(
            r._("%(company)s's %(product)s has not started its trial period yet.")
            % {"company": facts.company_name, "product": facts.product}
        )
    if tally.total:
        sentences.append(
            r._(
                "Success criteria: %(met)s of %(total)s met, %(not_met)s not met, "
                "%(open)s not yet measurable."
            )
            % {
                "met": tally.met,
                "total": tally.total,
                "not_met": tally.not_met,
                "open": tally.not_measurable,
            }
        )
    if case.observed.value_of_time_saved is not None:
        sentences.append(
            r._(
                "Staff saved %(hours)s hours (95 %% interval %(low)s to %(high)s), worth "
                "%(value)s at %(rate)s an hour."
            )
            % {
                "hours": r.num(saved.hours_saved, 1),
                "low": r.num(saved.hours_saved_ci95[0], 1),
                "high": r.num(saved.hours_saved_ci95[1], 1),
                "value": r.money(case.observed.value_of_time_saved, case.currency),
                "rate": r.rate(case.staff_hourly_cost or 0, case.currency),
            }
        )
    sentences.append(
        r._("It costs %(one_off)s once and %(recurring)s a year.")
        % {
            "one_off": r.money(case.costs.one_off, case.currency),
            "recurring": r.money(case.costs.recurring_per_year, case.currency),
        }
    )
    projection = case.trial_units_full_year
    if projection is not None:
        net = {
            "net": r.money(projection.net_benefit_per_year, case.currency),
            "low": r.money(
                projection.value_per_year_ci95.low - projection.recurring_costs_per_year,
                case.currency,
            ),
            "high": r.money(
                projection.value_per_year_ci95.high - projection.recurring_costs_per_year,
                case.currency,
            ),
        }
        sentences.append(
            r._(
                "Projected to a full year for the trial's units, the net benefit is %(net)s a year "
                "(95 %% interval %(low)s to %(high)s)"
            )
            % net
            + (
                r._("; the one-off costs are paid back after %(months)s months.")
                % {"months": r.num(projection.payback_months, 1)}
                if projection.payback_months is not None
                else r._("; at these numbers the one-off costs are never paid back.")
            )
        )
    sentences.append(_recommendation_text(r, recommendation(evidence)))
    if evidence.facts.decision:
        sentences.append(r._("Decision:") + " " + _decision_text(r, evidence))
    return " ".join(sentences)


def _key_figures(r: Reader, evidence: Evidence) -> Table:
    case, saved, tally = evidence.business_case, evidence.time_saved, evidence.criteria.tally
    projection = case.trial_units_full_year
    worked = (
        r._("%(met)s of %(total)s success criteria met") % {"met": tally.met, "total": tally.total}
        if tally.total
        else r._("no measurable success criteria")
    )
    for verdict in ("not_met", "not_measurable"):
        names = [
            _criterion_name(r, c.metric, c.activity_name)
            for c in evidence.criteria.criteria
            if c.verdict == verdict
        ]
        if names:
            worked += f"; {r.label(verdict)}: {'; '.join(names)}"
    saves = r._("%(hours)s hours (%(value)s) in %(days)s days") % {
        "hours": r.num(saved.hours_saved, 1),
        "value": r.money(case.observed.value_of_time_saved or 0, case.currency),
        "days": r.num(case.observed.days or 0, 1),
    }
    if projection is not None:
        saves += "; " + r._("projected %(hours)s hours a year") % {
            "hours": r.num(projection.hours_saved_per_year, 0)
        }
    costs = r._("%(one_off)s once, %(recurring)s a year") % {
        "one_off": r.money(case.costs.one_off, case.currency),
        "recurring": r.money(case.costs.recurring_per_year, case.currency),
    }
    rows = [
        (r._("Did it work?"), worked),
        (r._("What does it save?"), saves),
        (r._("What does it cost?"), costs),
    ]
    if projection is not None:
        rows.append(
            (
                r._("Net benefit per year (projected)"),
                r.money(projection.net_benefit_per_year, case.currency)
                + " · "
                + (
                    r._("payback %(months)s months")
                    % {"months": r.num(projection.payback_months, 1)}
                    if projection.payback_months is not None
                    else r._("never paid back")
                ),
            )
        )
    decide = (
        _decision_text(r, evidence)
        if evidence.facts.decision
        else r._("Recommendation:") + " " + _recommendation_text(r, recommendation(evidence))
    )
    rows.append((r._("What do we decide?"), decide))
    return Table(("", ""), list(rows), css="facts key")


def _verdict(r: Reader, verdict: str) -> str:
    return r.label(verdict)


def _criterion_name(r: Reader, metric: str, activity: str | None) -> str:
    name = r.label(metric)
    return f"{name}: {activity}" if activity else name


def _target(r: Reader, comparison: str, target: Decimal, unit: str) -> str:
    sign = "≥" if comparison == "at_least" else "≤"
    return (
        f"{sign} {r.num(target, 0 if target == target.to_integral_value() else 1)} {r.unit(unit)}"
    )


def criterion_cells(r: Reader, c: CriterionResult) -> tuple[str, str, str, str]:
    """A judged criterion in the reader's words: name, target, result, verdict (the web app too)."""
    if c.verdict == "not_measurable":
        result = r._("not measurable: %(reason)s") % {"reason": r.reason(c.reason or "")}
    elif c.observed is None:
        result = r._("never paid back")
    else:
        result = f"{r.num(c.observed, 1)} {r.unit(c.unit)}"
        if c.observed_ci95:
            result += " " + r._("(95 %% interval %(low)s to %(high)s)") % {
                "low": r.num(c.observed_ci95[0], 1),
                "high": r.num(c.observed_ci95[1], 1),
            }
            if c.interval_agrees is False:
                result += " — " + r._("the interval straddles the target")
    return (
        _criterion_name(r, c.metric, c.activity_name),
        _target(r, c.comparison, c.target, c.unit),
        result,
        _verdict(r, c.verdict),
    )


def _criteria_table(r: Reader, evidence: Evidence) -> Table:
    return Table(
        (r._("Criterion"), r._("Target"), r._("Result"), r._("Verdict")),
        [criterion_cells(r, c) for c in evidence.criteria.criteria],
        css="criteria",
        cell_css={(i, 3): f"verdict-{c.verdict}" for i, c in enumerate(evidence.criteria.criteria)},
    )


def _page_one(r: Reader, evidence: Evidence) -> list[Section]:
    sections = [
        Section(
            r._("Summary"),
            paragraphs=[_summary(r, evidence)],
            tables=[_key_figures(r, evidence)],
            css="summary",
        )
    ]
    criteria = Section(r._("Success criteria"))
    if evidence.criteria.criteria:
        criteria.tables.append(_criteria_table(r, evidence))
    else:
        criteria.paragraphs.append(r._("No measurable success criteria are recorded."))
    if evidence.facts.success_criteria:
        criteria.notes.append(
            r._("Agreed in words: %(text)s") % {"text": evidence.facts.success_criteria}
        )
    sections.append(criteria)
    if evidence.criteria.caveats:
        sections.append(
            Section(
                r._("How far the numbers carry"),
                paragraphs=[render(c, r._, r.fmt) for c in evidence.criteria.caveats],
                css="caveats",
            )
        )
    return sections


# ------------------------------------------------------------------------ the evidence
def _phase(r: Reader, summary: PhaseSummary) -> str:
    if summary.n == 0 or summary.mean_minutes is None:
        return r._("no observations")
    return r._("%(minutes)s min (n = %(n)s)") % {
        "minutes": r.num(summary.mean_minutes, 1),
        "n": summary.n,
    }


def _interval(r: Reader, pair: tuple[Decimal, Decimal] | None, digits: int = 1) -> str:
    if pair is None:
        return ""
    return f" ({r.num(pair[0], digits)} – {r.num(pair[1], digits)})"


def _time_saved(r: Reader, evidence: Evidence) -> Section:
    saved = evidence.time_saved
    rows = []
    for a in saved.activities:
        per_occurrence = (
            "—"
            if a.minutes_saved_per_occurrence is None
            else r.minutes(a.minutes_saved_per_occurrence)
            + _interval(r, a.minutes_saved_per_occurrence_ci95)
        )
        hours = (
            "—"
            if a.hours_saved is None
            else r.num(a.hours_saved, 1) + _interval(r, a.hours_saved_ci95)
        )
        rows.append(
            (
                a.name,
                _phase(r, a.baseline),
                _phase(r, a.with_technology),
                per_occurrence,
                "—" if a.occurrences is None else r.num(a.occurrences),
                hours,
                r.label(a.status),
            )
        )
    section = Section(
        r._("Time saved"),
        paragraphs=[
            r._(
                "In the trial period so far %(hours)s hours saved (95 %% interval %(low)s to "
                "%(high)s hours; the activities' bounds are added, so the interval is conservative)."
            )
            % {
                "hours": r.num(saved.hours_saved, 1),
                "low": r.num(saved.hours_saved_ci95[0], 1),
                "high": r.num(saved.hours_saved_ci95[1], 1),
            }
        ],
        tables=[
            Table(
                (
                    r._("Activity"),
                    r._("Baseline, per occurrence"),
                    r._("With technology"),
                    r._("Minutes saved per occurrence (95 % interval)"),
                    r._("Occurrences (device events)"),
                    r._("Hours saved (95 % interval)"),
                    r._("Status"),
                ),
                rows,
                css="numbers activities",
            )
        ],
        charts=["minutes", "cumulative"],
        notes=[
            r._(
                "Method: the difference of mean minutes per occurrence (baseline minus with "
                "technology) with a 95 %% Welch t interval; occurrences are counted device events, "
                "taken as exact. An activity needs at least %(n)s observations per phase."
            )
            % {"n": MIN_OBSERVATIONS}
        ],
    )
    return section


def _projection_column(r: Reader, evidence: Evidence, which: str) -> list[str]:
    case = evidence.business_case
    p = case.trial_units_full_year if which == "trial" else case.municipality_full_year
    if p is None:
        return ["—"] * 8
    return [
        r.num(p.units),
        r.num(p.hours_saved_per_year, 0),
        r.money(p.value_per_year, case.currency),
        f"{r.money(p.value_per_year_ci95.low, case.currency)} – "
        f"{r.money(p.value_per_year_ci95.high, case.currency)}",
        r.money(p.one_off_costs, case.currency),
        r.money(p.recurring_costs_per_year, case.currency),
        r.money(p.net_benefit_per_year, case.currency),
        r._("%(months)s months") % {"months": r.num(p.payback_months, 1)}
        if p.payback_months is not None
        else r._("never"),
    ]


def _business_case(r: Reader, evidence: Evidence) -> Section:
    case = evidence.business_case
    observed = case.observed
    value_ci = observed.value_of_time_saved_ci95
    observed_column = [
        r.num(case.trial_units_full_year.units) if case.trial_units_full_year else "—",
        r.num(observed.hours_saved, 1),
        r.money(observed.value_of_time_saved, case.currency)
        if observed.value_of_time_saved is not None
        else "—",
        f"{r.money(value_ci.low, case.currency)} – {r.money(value_ci.high, case.currency)}"
        if value_ci
        else "—",
        r.money(case.costs.one_off, case.currency),
        "—",  # a yearly amount: it belongs to the full-year columns
        "—",
        "—",
    ]
    labels = [
        r._("Units"),
        r._("Hours saved"),
        r._("Value of the time saved"),
        r._("95 % interval of the value"),
        r._("One-off costs"),
        r._("Recurring costs per year"),
        r._("Net benefit per year"),
        r._("Payback"),
    ]
    trial_column = _projection_column(r, evidence, "trial")
    municipality_column = _projection_column(r, evidence, "municipality")
    rows = [
        (label, o, t, m)
        for label, o, t, m in zip(
            labels, observed_column, trial_column, municipality_column, strict=True
        )
    ]
    where = r.join(evidence.municipalities) or r._("the municipality")
    headers = (
        "",
        r._("Observed (%(days)s days)") % {"days": r.num(observed.days or 0, 1)},
        r._("Full year, the trial's units"),
        r._("Full year, every unit in %(where)s") % {"where": where},
    )
    notes = [
        r._(
            "The observed period is the trial period so far, from the start of the trial with the "
            "technology to its end or to today."
        ),
        r._(
            "A full year repeats the observed rate of time saved for 365 days, valued at the "
            "trial's staff cost of %(rate)s an hour; recurring costs are per year, one-off costs "
            "are paid once."
        )
        % {"rate": r.rate(case.staff_hourly_cost or 0, case.currency)},
        r._(
            "The municipality column assumes every unit of the care homes in %(where)s saves as "
            "much time as each of the trial's units, and that every cost grows with the number of "
            "units."
        )
        % {"where": where},
        r._("Projected amounts are rounded to whole kroner; the API gives them to the øre."),
    ]
    paragraphs = []
    if case.status != "complete":
        paragraphs.append(
            r._(
                "The business case cannot be projected yet: the trial has no staff hourly cost, "
                "or its trial period has not started."
            )
        )
    return Section(
        r._("Business case"),
        paragraphs=paragraphs,
        tables=[Table(headers, list(rows), css="numbers business")],
        notes=notes,
    )


def _usage(r: Reader, evidence: Evidence) -> Section:
    totals = evidence.usage_totals
    paragraphs = [
        r._(
            "From %(start)s through %(end)s (baseline and trial, %(days)s local days): device data on "
            "%(with_data)s of those days, %(readings)s readings and %(events)s device events from "
            "every participant with consent to telemetry."
        )
        % {
            "start": r.date(totals.period_from),
            "end": r.last_day(totals.period_until),
            "days": r.num(totals.days),
            "with_data": r.num(totals.days_with_data),
            "readings": r.num(totals.readings),
            "events": r.num(totals.events),
        }
    ]
    return Section(r._("Use of the technology"), paragraphs=paragraphs, charts=["use"])


def _surveys(r: Reader, evidence: Evidence) -> Section:
    section = Section(r._("Staff, residents and relatives (MAST)"))
    groups = evidence.surveys.groups
    if not groups:
        section.paragraphs.append(
            r._("No survey answers are recorded yet (POST /trials/{id}/surveys).")
        )
        return section
    section.paragraphs.append(
        r._(
            "Short anonymous surveys per phase: the organisational perspective (staff) and the "
            "user perspective (residents and relatives). Scores from 1 (strongly disagree) to 5 "
            "(strongly agree); the table gives how many answered and the median."
        )
    )

    def median(tally: PhaseTally) -> str:
        if tally.withheld:
            return r.label("withheld")
        return "—" if tally.median is None else r.num(tally.median, 1)

    for group in groups:
        rows = [
            (
                r._(q.statement),
                r.num(q.baseline.answers),
                median(q.baseline),
                r.num(q.intervention.answers),
                median(q.intervention),
            )
            for q in group.questions
        ]
        title = r._("%(group)s: %(baseline)s answers at baseline, %(trial)s with technology") % {
            "group": r.label(group.respondent).capitalize(),
            "baseline": r.num(group.responses_baseline),
            "trial": r.num(group.responses_intervention),
        }
        section.tables.append(
            Table(
                (
                    title,
                    r._("Baseline: answers"),
                    r._("Baseline: median"),
                    r._("With technology: answers"),
                    r._("With technology: median"),
                ),
                rows,
                css="numbers survey",
            )
        )
    if evidence.surveys.withheld_under:
        section.notes.append(r.withheld_note(evidence.surveys.withheld_under))
    return section


def _decision(r: Reader, evidence: Evidence) -> Section:
    return Section(r._("Decision and rationale"), paragraphs=[_decision_text(r, evidence)])


def _consent(r: Reader, evidence: Evidence) -> Section:
    cov = evidence.coverage
    return Section(
        r._("Consent (counts only)"),
        tables=[
            Table(
                (
                    r._("Participants"),
                    r._("Telemetry now"),
                    r._("Company dashboards now"),
                    r._("Evaluation now"),
                    r._("Withdrawn"),
                    r._("Left the trial"),
                ),
                [
                    [
                        r.num(n)
                        for n in (
                            cov.participants,
                            cov.telemetry_now,
                            cov.company_dashboards_now,
                            cov.evaluation_now,
                            cov.withdrawn,
                            cov.left,
                        )
                    ]
                ],
                css="counts",
            )
        ],
    )


def _completeness(r: Reader, evidence: Evidence) -> Section:
    data, totals = evidence.completeness, evidence.usage_totals
    rows = [
        (
            r._("Readings stored for the trial, every participant, since the first"),
            r.num(data.readings),
        ),
        (
            r._("of them in this report's period (as under use of the technology)"),
            r.num(totals.readings),
        ),
        (r._("Device events stored, every participant, since the first"), r.num(data.events)),
        (r._("of them in this report's period"), r.num(totals.events)),
        (r._("Messages rejected (dead letters)"), r.num(data.dead_letters)),
        (
            r._("Messages missing in sequence gaps"),
            r._("not tracked")
            if data.messages_missing_in_gaps is None
            else r.num(data.messages_missing_in_gaps),
        ),
        (
            r._("Readings refused for lack of consent (never kept, not counted as lost)"),
            r.num(data.consent_drops),
        ),
    ]
    lost = data.dead_letters + (data.messages_missing_in_gaps or 0)
    stored = data.readings + data.events
    if stored + lost:
        rows.append(
            (
                r._("Completeness: stored / (stored + rejected + missing)"),
                r.percent(Decimal(stored) / Decimal(stored + lost)),
            )
        )
    return Section(r._("Data completeness"), tables=[Table(("", ""), rows, css="facts")])


def _facts(r: Reader, evidence: Evidence) -> Section:
    facts = evidence.facts

    def period(start: datetime | None, end: datetime | None) -> str:
        return f"{r.date(start) if start else '—'} – {r.last_day(end) if end else '—'}"

    rows = [
        (r._("Company"), facts.company_name),
        (r._("Product"), facts.product),
        (r._("Status"), r.common("trial status", facts.status)),
        (r._("Collaboration form"), r.common("collaboration form", facts.collaboration_form)),
        (r._("Care homes"), r.join(facts.sites) or "—"),
        (r._("Municipality"), r.join(evidence.municipalities) or "—"),
        (r._("Baseline (before)"), period(facts.baseline_from, facts.baseline_until)),
        (r._("Trial with the technology"), period(facts.trial_from, facts.trial_until)),
        (r._("Need"), facts.need or "—"),
        (r._("Success criteria as agreed in words"), facts.success_criteria or "—"),
    ]
    return Section(r._("The trial"), tables=[Table(("", ""), rows, css="facts")])


def build_sections(evidence: Evidence, r: Reader) -> list[Section]:
    """The report's sections in order; page one ends after the caveats (a page break in print)."""
    page_one = _page_one(r, evidence)
    page_one[-1].css += " first-page-end"
    return [
        *page_one,
        _decision(r, evidence),
        _business_case(r, evidence),
        _time_saved(r, evidence),
        _usage(r, evidence),
        _surveys(r, evidence),
        _consent(r, evidence),
        _completeness(r, evidence),
        _facts(r, evidence),
    ]
