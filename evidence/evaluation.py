"""Time saved and the business case: pure functions over numbers the repository loaded.

Method (stated in every answer): per activity, the minutes per occurrence at baseline and with the
technology are observed durations; their difference gets a 95 % Welch t interval (unequal
variances, Welch–Satterthwaite degrees of freedom). Occurrences with the technology are counted
device events and taken as exact; so time saved = occurrences × difference, and its interval is
occurrences × the difference's interval. Numbers are exact Decimals in memory, and everything
computed from them (criteria, business case) uses the exact values: `Shown` fields round half-up
to 0.01 only when serialised (the API's JSON), and the report and the web app round as they format.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer

from i18n import N_

MIN_OBSERVATIONS = 5
CONFIDENCE = 0.95
METHOD = (
    "95 % Welch t interval for the difference of mean minutes per occurrence (baseline minus "
    "with technology); occurrences are counted device events, taken as exact"
)
CENT = Decimal("0.01")
DAYS_PER_YEAR = Decimal(365)
MONTHS_PER_YEAR = Decimal(12)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# An exact number that is shown (serialised) to the cent: never round before computing with it.
Shown = Annotated[Decimal, PlainSerializer(cents, return_type=Decimal)]


# ----------------------------------------------------------------- Student's t quantile
def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    # Lentz's method for the incomplete beta function's continued fraction.
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def _regularized_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _regularized_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@lru_cache(maxsize=1024)  # 200 bisection steps; a trial's pages ask for the same few again
def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with df (possibly fractional) degrees of freedom."""
    if not 0.5 <= p < 1.0:
        raise ValueError("p must be in [0.5, 1)")
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):  # bisection to machine precision
        middle = (low + high) / 2.0
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


# ------------------------------------------------------------------------- statistics
@dataclass(frozen=True, slots=True)
class SampleStats:
    n: int
    mean: Decimal
    variance: Decimal  # sample variance (n - 1); 0 for one value


def sample_stats(values: Sequence[Decimal]) -> SampleStats | None:
    if not values:
        return None
    with localcontext() as ctx:
        ctx.prec = 40
        n = len(values)
        mean = sum(values, Decimal(0)) / n
        variance = sum(((v - mean) ** 2 for v in values), Decimal(0)) / (n - 1) if n > 1 else 0
    return SampleStats(n, mean, Decimal(variance))


def mean_interval(stats: SampleStats) -> tuple[Decimal, Decimal] | None:
    if stats.n < 2:
        return None
    q = _dec(t_quantile(0.5 + CONFIDENCE / 2, stats.n - 1))
    half = q * (stats.variance / stats.n).sqrt()
    return stats.mean - half, stats.mean + half


@dataclass(frozen=True, slots=True)
class Difference:
    estimate: Decimal
    low: Decimal
    high: Decimal
    df: float


def welch_difference(baseline: SampleStats, technology: SampleStats) -> Difference:
    """baseline.mean − technology.mean with its Welch t interval (both n ≥ 2)."""
    with localcontext() as ctx:
        ctx.prec = 40
        va, vb = baseline.variance / baseline.n, technology.variance / technology.n
        estimate = baseline.mean - technology.mean
        se_squared = va + vb
        if se_squared == 0:
            return Difference(estimate, estimate, estimate, math.inf)
        df = float(se_squared**2 / (va**2 / (baseline.n - 1) + vb**2 / (technology.n - 1)))
        half = _dec(t_quantile(0.5 + CONFIDENCE / 2, df)) * se_squared.sqrt()
        return Difference(estimate, estimate - half, estimate + half, df)


# --------------------------------------------------------------------------- time saved
# An activity's note, as English msgids of the `report` catalog: the API's `note` is their
# English (its `status` is the key), the report and the web app word it for their reader.
NOTES = {
    "few_baseline": N_(
        "baseline has %(baseline_n)s observation(s); at least %(min_n)s per phase are needed, "
        "so no number is given"
    ),
    "few_technology": N_(
        "with technology has %(technology_n)s observation(s); at least %(min_n)s per phase are "
        "needed, so no number is given"
    ),
    "few_both": N_(
        "baseline has %(baseline_n)s observation(s) and with technology has %(technology_n)s "
        "observation(s); at least %(min_n)s per phase are needed, so no number is given"
    ),
    "no_event_type": N_(
        "No device event type is mapped to this activity, so occurrences are unknown."
    ),
    "no_occurrences": N_("No device events of this type in the period: zero occurrences."),
    "slower": N_("The technology was slower than baseline: the saving is negative."),
}


class PhaseSummary(BaseModel):
    n: int
    mean_minutes: Shown | None = Field(None, description="null when there are no observations")
    ci95_low: Shown | None = None
    ci95_high: Shown | None = None


class DailySaving(BaseModel):
    day: date
    occurrences: int
    minutes_saved: Shown | None
    cumulative_minutes_saved: Shown | None


Status = Literal["estimated", "too_few_observations", "no_event_type", "no_occurrences"]


class ActivityTimeSaved(BaseModel):
    activity_id: int
    name: str
    event_type: str | None
    status: Status
    note: str
    baseline: PhaseSummary
    with_technology: PhaseSummary
    minutes_saved_per_occurrence: Shown | None = None
    minutes_saved_per_occurrence_ci95: tuple[Shown, Shown] | None = None
    welch_df: float | None = None
    occurrences: int | None = Field(None, description="device events mapped to this activity")
    minutes_saved: Shown | None = None
    minutes_saved_ci95: tuple[Shown, Shown] | None = None
    hours_saved: Shown | None = None
    hours_saved_ci95: tuple[Shown, Shown] | None = None
    per_day: list[DailySaving] = []


class TimeSaved(BaseModel):
    trial_id: int
    method: str = METHOD
    min_observations_per_phase: int = MIN_OBSERVATIONS
    period_from: datetime | None
    period_until: datetime | None
    activities: list[ActivityTimeSaved]
    hours_saved: Shown = Field(description="sum over activities with an estimate")
    hours_saved_ci95: tuple[Shown, Shown] = Field(
        description="bounds added across activities: conservative (wider than a joint interval)"
    )


@dataclass(frozen=True, slots=True)
class ActivityInput:
    activity_id: int
    name: str
    event_type: str | None
    baseline_minutes: Sequence[Decimal]
    technology_minutes: Sequence[Decimal]
    occurrences_per_day: Sequence[tuple[date, int]]


@dataclass(frozen=True, slots=True)
class ActivityEstimate:
    """Unrounded numbers the business case builds on."""

    summary: ActivityTimeSaved
    hours: Decimal
    hours_low: Decimal
    hours_high: Decimal


def _phase_summary(stats: SampleStats | None) -> PhaseSummary:
    if stats is None:
        return PhaseSummary(n=0)
    interval = mean_interval(stats)
    return PhaseSummary(
        n=stats.n,
        mean_minutes=stats.mean,
        ci95_low=interval[0] if interval else None,
        ci95_high=interval[1] if interval else None,
    )


def estimate_activity(item: ActivityInput) -> ActivityEstimate:
    base, tech = sample_stats(item.baseline_minutes), sample_stats(item.technology_minutes)
    occurrences = sum(count for _, count in item.occurrences_per_day)
    summary = ActivityTimeSaved(
        activity_id=item.activity_id,
        name=item.name,
        event_type=item.event_type,
        status="estimated",
        note="",
        baseline=_phase_summary(base),
        with_technology=_phase_summary(tech),
        occurrences=occurrences if item.event_type else None,
    )
    zero = ActivityEstimate(summary, Decimal(0), Decimal(0), Decimal(0))
    if min(summary.baseline.n, summary.with_technology.n) < MIN_OBSERVATIONS:
        summary.status = "too_few_observations"
        summary.note = activity_note(summary)
        return zero
    assert base is not None and tech is not None
    difference = welch_difference(base, tech)
    summary.minutes_saved_per_occurrence = difference.estimate
    summary.minutes_saved_per_occurrence_ci95 = (difference.low, difference.high)
    summary.welch_df = round(difference.df, 3) if math.isfinite(difference.df) else None
    if not item.event_type:
        summary.status = "no_event_type"
        summary.note = activity_note(summary)
        return zero
    if occurrences == 0:
        summary.status = "no_occurrences"
    summary.note = activity_note(summary, slower=difference.estimate < 0)
    cumulative = Decimal(0)
    for day, count in item.occurrences_per_day:
        saved = count * difference.estimate
        cumulative += saved
        summary.per_day.append(
            DailySaving(
                day=day,
                occurrences=count,
                minutes_saved=saved,
                cumulative_minutes_saved=cumulative,
            )
        )
    minutes = occurrences * difference.estimate
    low, high = occurrences * difference.low, occurrences * difference.high
    summary.minutes_saved = minutes
    summary.minutes_saved_ci95 = (low, high)
    summary.hours_saved = minutes / 60
    summary.hours_saved_ci95 = (low / 60, high / 60)
    return ActivityEstimate(summary, minutes / 60, low / 60, high / 60)


def activity_note(
    activity: ActivityTimeSaved,
    gettext: Callable[[str], str] = str,
    *,
    slower: bool | None = None,
) -> str:
    """What the reader should know about an activity's estimate, in `gettext`'s language (the
    API's English by default). `slower` defaults to what the estimate says."""
    if slower is None:
        saved = activity.minutes_saved_per_occurrence
        slower = saved is not None and saved < 0
    counts = {
        "baseline_n": activity.baseline.n,
        "technology_n": activity.with_technology.n,
        "min_n": MIN_OBSERVATIONS,
    }
    keys: list[str] = []
    if activity.status == "too_few_observations":
        few_baseline = activity.baseline.n < MIN_OBSERVATIONS
        few_technology = activity.with_technology.n < MIN_OBSERVATIONS
        keys.append(
            "few_both"
            if few_baseline and few_technology
            else "few_baseline"
            if few_baseline
            else "few_technology"
        )
    elif activity.status == "no_event_type":
        keys.append("no_event_type")
    else:
        if activity.status == "no_occurrences":
            keys.append("no_occurrences")
        if slower:
            keys.append("slower")
    return " ".join(gettext(NOTES[key]) % counts for key in keys)


def time_saved(
    trial_id: int,
    period_from: datetime | None,
    period_until: datetime | None,
    activities: Sequence[ActivityInput],
) -> tuple[TimeSaved, list[ActivityEstimate]]:
    estimates = [estimate_activity(item) for item in activities]
    result = TimeSaved(
        trial_id=trial_id,
        period_from=period_from,
        period_until=period_until,
        activities=[e.summary for e in estimates],
        hours_saved=sum((e.hours for e in estimates), Decimal(0)),
        hours_saved_ci95=(
            sum((e.hours_low for e in estimates), Decimal(0)),
            sum((e.hours_high for e in estimates), Decimal(0)),
        ),
    )
    return result, estimates
