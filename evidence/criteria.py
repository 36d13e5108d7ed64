"""Success criteria judged from live data: met, not met, or not yet measurable, with the evidence.

Pure: the service gathers the measurements (time saved, business case, usage, completeness) and
this file states what each metric means and compares it with its target.

- time_saved_pct: minutes saved per occurrence as a share of the baseline mean (the interval
  divides the Welch interval of the difference by the baseline mean).
- occurrences_per_day: device events mapped to the activity per day of the trial period.
- usage_hours_per_day: clock hours with any reading or event from the trial's devices, per day
  of the trial period (days without data count as zero).
- data_completeness_pct: of what the devices sent, the share stored: readings and events stored
  / (stored + messages rejected as dead letters + messages missing in sequence gaps). Readings
  refused for lack of consent are not counted as lost: they were never to be kept.
- payback_months: the one-off costs over the monthly net benefit, the trial's units, a full year.

Every value is computed and judged unrounded (a mean of 10.6333 min is not 10.63); only the
serialised answer and the words show it to 0.01.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from evidence.business_case import BusinessCase
from evidence.evaluation import ActivityTimeSaved, Shown, TimeSaved, cents
from evidence.report_text import N_
from evidence.schemas import Comparison, CriterionMetric, SuccessCriterion

Verdict = Literal["met", "not_met", "not_measurable"]
UNITS: dict[CriterionMetric, str] = {
    CriterionMetric.TIME_SAVED_PCT: "%",
    CriterionMetric.OCCURRENCES_PER_DAY: "occurrences/day",
    CriterionMetric.USAGE_HOURS_PER_DAY: "hours/day",
    CriterionMetric.DATA_COMPLETENESS_PCT: "%",
    CriterionMetric.PAYBACK_MONTHS: "months",
}
HUNDRED = Decimal(100)
# Why a criterion cannot be judged yet (msgids: the report words them in the reader's language).
GONE = N_("the activity no longer exists")
TOO_FEW = N_("too few time observations")
NO_EVENT_TYPE = N_("no device event type is mapped to the activity")
NOT_STARTED = N_("the trial period has not started")
NO_DATA = N_("no device data yet")
NOTHING_SAVED_YET = N_("no time saved measured yet")
NO_BUSINESS_CASE = N_("the business case is incomplete (staff cost or trial period missing)")


@dataclass(frozen=True, slots=True)
class Measurements:
    """The live numbers criteria are judged against (all data, not one audience's view)."""

    time_saved: TimeSaved
    business_case: BusinessCase
    period_days: Decimal | None  # the trial period observed so far
    hours_with_data: int  # clock hours with any reading or event in that period
    stored: int  # readings and events stored for the trial
    lost: int  # messages dead-lettered or missing in sequence gaps


class CriterionResult(BaseModel):
    criterion_id: int
    metric: CriterionMetric
    comparison: Comparison
    target: Decimal
    unit: str
    activity_id: int | None
    activity_name: str | None
    description: str
    verdict: Verdict
    observed: Shown | None = Field(description="the measured value, null when not measurable")
    observed_ci95: tuple[Shown, Shown] | None = Field(
        None, description="95 % interval of the measured value, where it has one"
    )
    interval_agrees: bool | None = Field(
        None, description="true when the whole interval falls on the verdict's side of the target"
    )
    basis: dict[str, Shown | int | None] = Field(
        description="the counts the value is built from (n per phase, days, hours, messages)"
    )
    reason: str | None = Field(None, description="why it is not (yet) measurable")
    evidence: str = Field(description="one English sentence: the value and what it rests on")


class CriteriaTally(BaseModel):
    total: int
    met: int
    not_met: int
    not_measurable: int


def tally(results: Sequence[CriterionResult]) -> CriteriaTally:
    verdicts = [r.verdict for r in results]
    return CriteriaTally(
        total=len(verdicts),
        met=verdicts.count("met"),
        not_met=verdicts.count("not_met"),
        not_measurable=verdicts.count("not_measurable"),
    )


@dataclass(frozen=True, slots=True)
class _Value:
    value: Decimal | None
    interval: tuple[Decimal, Decimal] | None
    basis: dict[str, Decimal | int | None]
    reason: str | None  # None when measured
    evidence: str


def _activity(saved: TimeSaved, activity_id: int | None) -> ActivityTimeSaved | None:
    return next((a for a in saved.activities if a.activity_id == activity_id), None)


def _time_saved_pct(m: Measurements, activity: ActivityTimeSaved | None) -> _Value:
    if activity is None:
        return _Value(None, None, {}, GONE, "")
    basis: dict[str, Decimal | int | None] = {
        "baseline_n": activity.baseline.n,
        "with_technology_n": activity.with_technology.n,
        "baseline_minutes": activity.baseline.mean_minutes,
        "with_technology_minutes": activity.with_technology.mean_minutes,
    }
    saved, base = activity.minutes_saved_per_occurrence, activity.baseline.mean_minutes
    if saved is None or not base:
        return _Value(None, None, basis, TOO_FEW, "")
    pct = saved / base * HUNDRED
    low, high = activity.minutes_saved_per_occurrence_ci95 or (saved, saved)
    interval = (low / base * HUNDRED, high / base * HUNDRED)
    technology = activity.with_technology.mean_minutes
    evidence = (
        f"{cents(pct)} % less time per occurrence ({cents(base)} → "
        f"{'—' if technology is None else cents(technology)} min; "
        f"n = {activity.baseline.n} and {activity.with_technology.n}; 95 % interval "
        f"{cents(interval[0])} % to {cents(interval[1])} %)"
    )
    return _Value(pct, interval, basis, None, evidence)


def _occurrences_per_day(m: Measurements, activity: ActivityTimeSaved | None) -> _Value:
    if activity is None:
        return _Value(None, None, {}, GONE, "")
    basis: dict[str, Decimal | int | None] = {
        "occurrences": activity.occurrences,
        "days": m.period_days,
    }
    if not activity.event_type:
        return _Value(None, None, basis, NO_EVENT_TYPE, "")
    if not m.period_days:
        return _Value(None, None, basis, NOT_STARTED, "")
    per_day = Decimal(activity.occurrences or 0) / m.period_days
    evidence = (
        f"{cents(per_day)} occurrences per day ({activity.occurrences} in "
        f"{cents(m.period_days)} days)"
    )
    return _Value(per_day, None, basis, None, evidence)


def _usage_hours_per_day(m: Measurements) -> _Value:
    basis: dict[str, Decimal | int | None] = {"hours_with_data": m.hours_with_data}
    basis["days"] = m.period_days
    if not m.period_days:
        return _Value(None, None, basis, NOT_STARTED, "")
    per_day = Decimal(m.hours_with_data) / m.period_days
    evidence = (
        f"{cents(per_day)} hours per day with device data ({m.hours_with_data} hours in "
        f"{cents(m.period_days)} days)"
    )
    return _Value(per_day, None, basis, None, evidence)


def _data_completeness_pct(m: Measurements) -> _Value:
    basis: dict[str, Decimal | int | None] = {"stored": m.stored, "lost": m.lost}
    if m.stored + m.lost == 0:
        return _Value(None, None, basis, NO_DATA, "")
    pct = Decimal(m.stored) / Decimal(m.stored + m.lost) * HUNDRED
    evidence = f"{cents(pct)} % of the data sent was stored ({m.stored} stored, {m.lost} lost)"
    return _Value(pct, None, basis, None, evidence)


def _payback_months(m: Measurements) -> _Value:
    projection = m.business_case.trial_units_full_year
    if projection is None:
        return _Value(None, None, {}, NO_BUSINESS_CASE, "")
    basis: dict[str, Decimal | int | None] = {
        "one_off_costs": projection.one_off_costs,
        "net_benefit_per_year": projection.net_benefit_per_year,
    }
    measured = [
        a for a in m.time_saved.activities if a.status == "estimated" and (a.occurrences or 0) > 0
    ]
    if not measured:  # no saving measured is not a saving of zero: too early to judge
        return _Value(None, None, basis, NOTHING_SAVED_YET, "")
    if projection.payback_months is None:
        # Never paid back: a definite answer, judged below as the worst possible value.
        return _Value(None, None, basis, None, projection.payback_note)
    evidence = (
        f"paid back after {cents(projection.payback_months)} months ({projection.payback_note})"
    )
    return _Value(projection.payback_months, None, basis, None, evidence)


def _meets(value: Decimal, comparison: Comparison, target: Decimal) -> bool:
    return value >= target if comparison == Comparison.AT_LEAST else value <= target


def judge(criterion: SuccessCriterion, measurements: Measurements) -> CriterionResult:
    """One criterion's verdict: judged on the point value; the interval says how sure it is."""
    activity = _activity(measurements.time_saved, criterion.activity_id)
    metric = criterion.metric
    if metric == CriterionMetric.TIME_SAVED_PCT:
        found = _time_saved_pct(measurements, activity)
    elif metric == CriterionMetric.OCCURRENCES_PER_DAY:
        found = _occurrences_per_day(measurements, activity)
    elif metric == CriterionMetric.USAGE_HOURS_PER_DAY:
        found = _usage_hours_per_day(measurements)
    elif metric == CriterionMetric.DATA_COMPLETENESS_PCT:
        found = _data_completeness_pct(measurements)
    else:
        found = _payback_months(measurements)
    verdict: Verdict
    agrees = None
    if found.reason is not None:
        verdict = "not_measurable"
    elif found.value is None:  # payback never reached
        verdict = "met" if criterion.comparison == Comparison.AT_LEAST else "not_met"
    else:
        verdict = (
            "met" if _meets(found.value, criterion.comparison, criterion.target) else "not_met"
        )
        if found.interval is not None:
            sides = {
                _meets(bound, criterion.comparison, criterion.target) for bound in found.interval
            }
            agrees = sides == {verdict == "met"}
    return CriterionResult(
        criterion_id=criterion.id,
        metric=metric,
        comparison=criterion.comparison,
        target=criterion.target,
        unit=UNITS[metric],
        activity_id=criterion.activity_id,
        activity_name=activity.name if activity else None,
        description=criterion.description,
        verdict=verdict,
        observed=found.value,
        observed_ci95=found.interval,
        interval_agrees=agrees,
        basis=found.basis,
        reason=found.reason,
        evidence=found.evidence or f"not measurable: {found.reason}",
    )


def judge_all(
    criteria: Sequence[SuccessCriterion], measurements: Measurements
) -> list[CriterionResult]:
    return [judge(criterion, measurements) for criterion in criteria]
