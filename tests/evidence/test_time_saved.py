"""Time saved and the business case: numbers known in advance, matched to the cent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import psycopg
import pytest

from access.schemas import OPERATOR
from evidence.evaluation import ActivityInput, cents, estimate_activity, t_quantile
from evidence.service import business_case_for, time_saved_for
from tests.evidence.seed import T0, T_END, constructed_trial, refresh

D = Decimal


@pytest.mark.parametrize(
    ("df", "table_value"), [(1, 12.7062047), (4, 2.7764451), (8, 2.3060041), (30, 2.0422725)]
)
def test_t_quantile_matches_the_printed_t_table(df: int, table_value: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(table_value, abs=1e-7)


def _shown(pair: tuple[D, D] | None) -> tuple[D, D] | None:
    """The pair as the API shows it (to the cent); the models keep exact values."""
    return None if pair is None else (cents(pair[0]), cents(pair[1]))


def _activity(
    baseline: list[str], technology: list[str], per_day: list[int], event: str | None = "e"
):
    return ActivityInput(
        activity_id=1,
        name="a",
        event_type=event,
        baseline_minutes=[D(v) for v in baseline],
        technology_minutes=[D(v) for v in technology],
        occurrences_per_day=[(date(2025, 3, i + 1), n) for i, n in enumerate(per_day)],
    )


def test_slower_technology_gives_a_negative_saving_and_says_so() -> None:
    estimate = estimate_activity(
        _activity(["4", "5", "6", "7", "8"], ["10", "11", "12", "13", "14"], [3])
    )
    assert estimate.summary.status == "estimated"
    assert estimate.summary.minutes_saved_per_occurrence == D("-6.00")
    assert estimate.summary.minutes_saved == D("-18.00")
    assert "slower" in estimate.summary.note


def test_too_few_observations_gives_no_number() -> None:
    estimate = estimate_activity(_activity(["4", "5", "6"], ["1", "2", "3", "4", "5"], [3]))
    summary = estimate.summary
    assert summary.status == "too_few_observations"
    assert summary.minutes_saved_per_occurrence is None and summary.hours_saved is None
    assert "baseline has 3 observation(s)" in summary.note
    assert estimate.hours == 0


def test_no_events_reports_zero_occurrences() -> None:
    summary = estimate_activity(_activity(["9"] * 5, ["4"] * 5, [])).summary
    assert summary.status == "no_occurrences"
    assert summary.occurrences == 0 and summary.minutes_saved == D("0.00")


def test_activity_without_event_type_has_unknown_occurrences() -> None:
    summary = estimate_activity(_activity(["9"] * 5, ["4"] * 5, [], event=None)).summary
    assert summary.status == "no_event_type" and summary.occurrences is None


def test_constructed_trial_time_saved_matches_to_the_cent(conn: psycopg.Connection) -> None:
    seeded = constructed_trial(conn)
    refresh(conn)
    conn.commit()
    saved = time_saved_for(conn, OPERATOR, seeded.trial_id)
    assert (saved.period_from, saved.period_until) == (T0, T_END)
    night, medicine = saved.activities
    assert night.baseline.mean_minutes == D("12.00") and night.baseline.n == 5
    assert night.with_technology.mean_minutes == D("6.00")
    assert night.welch_df == 8.0
    assert night.minutes_saved_per_occurrence == D("6.00")
    # 6 ± 2.306004135 × 1
    assert _shown(night.minutes_saved_per_occurrence_ci95) == (D("3.69"), D("8.31"))
    assert night.occurrences == 100  # the event before the trial does not count
    assert [d.occurrences for d in night.per_day] == [10] * 10
    assert night.per_day[-1].cumulative_minutes_saved == D("600.00")
    assert night.hours_saved == D("10.00")
    assert _shown(night.hours_saved_ci95) == (D("6.16"), D("13.84"))
    assert medicine.status == "too_few_observations" and medicine.hours_saved is None
    assert saved.hours_saved == D("10.00")
    assert _shown(saved.hours_saved_ci95) == (D("6.16"), D("13.84"))


def test_constructed_trial_business_case_matches_to_the_cent(conn: psycopg.Connection) -> None:
    seeded = constructed_trial(conn)
    refresh(conn)
    conn.commit()
    case = business_case_for(conn, OPERATOR, seeded.trial_id)
    assert case.status == "complete"
    assert case.observed.days == D("10.00")
    assert case.observed.value_of_time_saved == D("3000.00")  # 10 h × 300.00
    ci = case.observed.value_of_time_saved_ci95
    assert ci is not None and _shown((ci.low, ci.high)) == (D("1847.00"), D("4153.00"))
    assert (case.costs.one_off, case.costs.recurring_per_year) == (D("50000.00"), D("12000.00"))

    trial_year = case.trial_units_full_year
    assert trial_year is not None
    assert trial_year.hours_saved_per_year == D("365.00")
    assert trial_year.value_per_year == D("109500.00")
    assert _shown((trial_year.value_per_year_ci95.low, trial_year.value_per_year_ci95.high)) == (
        D("67415.42"),
        D("151584.58"),
    )
    assert trial_year.net_benefit_per_year == D("97500.00")
    assert trial_year.net_benefit_first_year == D("47500.00")
    assert cents(trial_year.payback_months or D(0)) == D("6.15")  # 50 000 / (97 500 / 12)

    town = case.municipality_full_year
    assert town is not None
    assert (town.units, town.scale_factor) == (10, D("5.0000"))  # Vejle's 3 units do not count
    assert town.value_per_year == D("547500.00")
    assert town.one_off_costs == D("250000.00") and town.recurring_costs_per_year == D("60000.00")
    assert town.net_benefit_first_year == D("237500.00")
    assert cents(town.payback_months or D(0)) == D("6.15")
    assert any("Kolding" in line for line in case.assumptions)
