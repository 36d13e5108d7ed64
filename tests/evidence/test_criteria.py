"""Criteria verdicts and caveats as pure functions, at the edges the constructed trial misses."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from evidence.business_case import BusinessCaseInput, CostItem, business_case
from evidence.caveats import caveats
from evidence.criteria import Measurements, judge
from evidence.evaluation import ActivityInput, time_saved
from evidence.schemas import Comparison, CriterionMetric, SuccessCriterion

START = datetime(2026, 1, 1, tzinfo=UTC)


def _measurements(
    baseline: list[str], technology: list[str], per_day: int, days: int, recurring: str
) -> Measurements:
    activity = ActivityInput(
        activity_id=1,
        name="Night check",
        event_type="night_check_avoided",
        baseline_minutes=[Decimal(v) for v in baseline],
        technology_minutes=[Decimal(v) for v in technology],
        occurrences_per_day=[(date(2026, 1, 1) + timedelta(days=d), per_day) for d in range(days)],
    )
    end = START + timedelta(days=days)
    saved, estimates = time_saved(1, START, end, [activity])
    case = business_case(
        BusinessCaseInput(
            trial_id=1,
            currency="DKK",
            staff_hourly_cost=Decimal("300"),
            period_from=START,
            period_until=end,
            estimates=estimates,
            costs=[
                CostItem("devices", Decimal("10000"), False),
                CostItem("licences", Decimal(recurring), True),
            ],
            units_in_trial=1,
            units_in_municipality=1,
            municipalities=["Kolding"],
        )
    )
    return Measurements(saved, case, case.observed.days, 0, 0, 0)


def _criterion(metric: CriterionMetric, comparison: Comparison, target: str) -> SuccessCriterion:
    return SuccessCriterion(
        id=1,
        trial_id=1,
        metric=metric,
        comparison=comparison,
        target=Decimal(target),
        activity_id=1 if metric == CriterionMetric.TIME_SAVED_PCT else None,
        description="",
        created_at=START,
        updated_at=START,
    )


def test_a_payback_never_reached_fails_an_upper_bound() -> None:
    costly = _measurements(["10"] * 5, ["9"] * 5, per_day=1, days=60, recurring="100000")
    result = judge(_criterion(CriterionMetric.PAYBACK_MONTHS, Comparison.AT_MOST, "24"), costly)
    assert result.verdict == "not_met" and result.observed is None
    assert "never" in result.evidence


def test_a_verdict_whose_interval_straddles_the_target_says_so() -> None:
    noisy = _measurements(
        ["10", "14", "6", "12", "8"], ["7", "11", "3", "9", "5"], per_day=5, days=60, recurring="0"
    )
    result = judge(_criterion(CriterionMetric.TIME_SAVED_PCT, Comparison.AT_LEAST, "25"), noisy)
    assert result.verdict == "met" and result.observed == Decimal("30.00")
    assert result.observed_ci95 is not None and result.observed_ci95[0] < 25
    assert result.interval_agrees is False


def test_caveats_warn_of_a_possible_loss_but_not_of_a_long_well_observed_trial() -> None:
    noisy = _measurements(
        ["10", "14", "6", "12", "8"] * 2,
        ["7", "11", "3", "9", "5"] * 2,
        per_day=20,
        days=60,
        recurring="50000",
    )
    codes = [c.code for c in caveats(noisy.time_saved, noisy.business_case)]
    assert codes == ["may_lose"]


def test_criteria_are_judged_from_unrounded_means() -> None:
    # 4.2684 of 10.6333 min saved is 40.14 %; from means rounded first (4.27 / 10.63) it was
    # 40.17 %, which met a target of 40.15 % the unrounded evidence does not.
    exact = _measurements(["10.6333"] * 5, ["6.3649"] * 5, per_day=1, days=60, recurring="0")
    criterion = _criterion(CriterionMetric.TIME_SAVED_PCT, Comparison.AT_LEAST, "40.15")
    result = judge(criterion, exact)
    assert result.observed is not None and round(result.observed, 2) == Decimal("40.14")
    assert result.verdict == "not_met"
    assert "40.14 % less time per occurrence (10.63 → 6.36 min" in result.evidence
    shown = result.model_dump(mode="json")
    assert shown["observed"] == "40.14" and shown["basis"]["baseline_minutes"] == "10.63"
