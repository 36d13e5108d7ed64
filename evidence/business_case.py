"""The business case: value of the time saved against the trial's costs, and two projections.

Pure: the repository loads the numbers, this file states the assumptions and does the sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from evidence.evaluation import DAYS_PER_YEAR, MONTHS_PER_YEAR, ActivityEstimate, Shown, cents


@dataclass(frozen=True, slots=True)
class CostItem:
    category: str
    amount: Decimal
    recurring: bool  # per year when true, one-off otherwise


@dataclass(frozen=True, slots=True)
class BusinessCaseInput:
    trial_id: int
    currency: str
    staff_hourly_cost: Decimal | None
    period_from: datetime | None
    period_until: datetime | None
    estimates: Sequence[ActivityEstimate]
    costs: Sequence[CostItem]
    units_in_trial: int
    units_in_municipality: int
    municipalities: Sequence[str]


class Range(BaseModel):
    low: Shown
    high: Shown


class CostSummary(BaseModel):
    one_off: Shown
    recurring_per_year: Shown
    by_category: dict[str, dict[str, Shown]]


class Projection(BaseModel):
    scope: str
    units: int
    scale_factor: Decimal
    hours_saved_per_year: Shown
    value_per_year: Shown
    value_per_year_ci95: Range
    one_off_costs: Shown
    recurring_costs_per_year: Shown
    net_benefit_per_year: Shown = Field(description="value per year − recurring costs per year")
    net_benefit_first_year: Shown = Field(description="net benefit per year − one-off costs")
    payback_months: Shown | None = Field(
        description="one-off costs / monthly net benefit; null when the net benefit is not positive"
    )
    payback_note: str


class ObservedPeriod(BaseModel):
    period_from: datetime | None
    period_until: datetime | None
    days: Shown | None
    hours_saved: Shown
    hours_saved_ci95: Range
    value_of_time_saved: Shown | None
    value_of_time_saved_ci95: Range | None


class BusinessCase(BaseModel):
    trial_id: int
    currency: str
    staff_hourly_cost: Decimal | None
    status: str = Field(description="'complete', or what is missing")
    observed: ObservedPeriod
    costs: CostSummary
    trial_units_full_year: Projection | None
    municipality_full_year: Projection | None
    assumptions: list[str]


def summarise_costs(costs: Sequence[CostItem]) -> CostSummary:
    by_category: dict[str, dict[str, Decimal]] = {}
    for item in costs:
        entry = by_category.setdefault(
            item.category, {"one_off": Decimal(0), "recurring_per_year": Decimal(0)}
        )
        entry["recurring_per_year" if item.recurring else "one_off"] += item.amount
    return CostSummary(
        one_off=sum((c.amount for c in costs if not c.recurring), Decimal(0)),
        recurring_per_year=sum((c.amount for c in costs if c.recurring), Decimal(0)),
        by_category=by_category,
    )


def _projection(
    scope: str,
    units: int,
    factor: Decimal,
    hours_per_year: tuple[Decimal, Decimal, Decimal],
    hourly: Decimal,
    one_off: Decimal,
    recurring: Decimal,
) -> Projection:
    hours, low, high = (h * factor for h in hours_per_year)
    value, one_off, recurring = hours * hourly, one_off * factor, recurring * factor
    net_per_year = value - recurring
    if net_per_year > 0:
        payback = one_off / (net_per_year / MONTHS_PER_YEAR)
        note = f"one-off costs are paid back after {cents(payback)} months"
    else:
        payback = None
        note = "never at these numbers: the time saved is worth less than the recurring costs"
    return Projection(
        scope=scope,
        units=units,
        scale_factor=factor.quantize(Decimal("0.0001")),
        hours_saved_per_year=hours,
        value_per_year=value,
        value_per_year_ci95=Range(low=low * hourly, high=high * hourly),
        one_off_costs=one_off,
        recurring_costs_per_year=recurring,
        net_benefit_per_year=net_per_year,
        net_benefit_first_year=net_per_year - one_off,
        payback_months=payback,
        payback_note=note,
    )


def business_case(data: BusinessCaseInput) -> BusinessCase:
    hours = sum((e.hours for e in data.estimates), Decimal(0))
    low = sum((e.hours_low for e in data.estimates), Decimal(0))
    high = sum((e.hours_high for e in data.estimates), Decimal(0))
    hourly = data.staff_hourly_cost
    days = None
    if data.period_from and data.period_until and data.period_until > data.period_from:
        seconds = Decimal(str((data.period_until - data.period_from).total_seconds()))
        days = seconds / Decimal(86400)
    costs = summarise_costs(data.costs)
    observed = ObservedPeriod(
        period_from=data.period_from,
        period_until=data.period_until,
        days=days,
        hours_saved=hours,
        hours_saved_ci95=Range(low=low, high=high),
        value_of_time_saved=None if hourly is None else hours * hourly,
        value_of_time_saved_ci95=None
        if hourly is None
        else Range(low=low * hourly, high=high * hourly),
    )
    municipalities = ", ".join(data.municipalities) or "the trial's municipality"
    assumptions = [
        f"Time saved is valued at the trial's staff hourly cost ({hourly} {data.currency}).",
        "Time saved per activity = counted device events × (baseline − with-technology mean "
        "minutes); activities with too few observations or without a mapped event count as zero.",
        "A full year repeats the observed period's rate of time saved (365 days).",
        "Recurring costs are per year; one-off costs are paid once, in the first year.",
        f"The municipality projection assumes every unit of the care homes in {municipalities} "
        f"({data.units_in_municipality} units) saves as much time as each of the trial's "
        f"{data.units_in_trial} unit(s), and that all costs scale with the number of units.",
        "Amounts are rounded half-up to the øre (0.01) only when shown.",
    ]
    missing = []
    if hourly is None:
        missing.append("the trial has no staff hourly cost")
    if days is None:
        missing.append("the trial has no started period to project from")
    result = BusinessCase(
        trial_id=data.trial_id,
        currency=data.currency,
        staff_hourly_cost=hourly,
        status="complete" if not missing else "incomplete: " + "; ".join(missing),
        observed=observed,
        costs=costs,
        trial_units_full_year=None,
        municipality_full_year=None,
        assumptions=assumptions,
    )
    if missing:
        return result
    assert hourly is not None and days is not None
    to_year = DAYS_PER_YEAR / days
    per_year = (hours * to_year, low * to_year, high * to_year)
    one_off = sum((c.amount for c in data.costs if not c.recurring), Decimal(0))
    recurring = sum((c.amount for c in data.costs if c.recurring), Decimal(0))
    trial_units = max(data.units_in_trial, 1)
    result.trial_units_full_year = _projection(
        "the trial's units", trial_units, Decimal(1), per_year, hourly, one_off, recurring
    )
    factor = Decimal(max(data.units_in_municipality, trial_units)) / Decimal(trial_units)
    result.municipality_full_year = _projection(
        f"all units of the care homes in {municipalities}",
        max(data.units_in_municipality, trial_units),
        factor,
        per_year,
        hourly,
        one_off,
        recurring,
    )
    return result
