"""How far the evidence carries: warnings a reader must see before trusting a projection.

Pure. Each caveat is a code with its numbers; `render` words it in the reader's language (the
templates are English msgids of the `report` domain), so the API and the report say the same.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Final, Literal

from pydantic import BaseModel

from evidence.business_case import BusinessCase
from evidence.evaluation import MIN_OBSERVATIONS, TimeSaved, cents
from evidence.report_text import N_
from i18n import Formatter

MIN_SPAN_DAYS: Final = 28  # under four weeks a year's projection rests on too little
FEW_OBSERVATIONS: Final = 10  # an estimate from fewer per phase has a wide interval

CaveatCode = Literal[
    "no_period", "short_span", "not_estimated", "few_observations", "no_event_type", "may_lose"
]


TEMPLATES: Final[dict[str, str]] = {
    "no_period": N_("The trial period has not started: nothing is projected yet."),
    "short_span": N_(
        "Observed for %(days)s days only (under %(min_days)s): the yearly figures repeat so short "
        "a period 365 days over and are uncertain."
    ),
    "not_estimated": N_(
        "“%(activity)s” has too few time observations (%(baseline_n)s at baseline, "
        "%(technology_n)s with the technology; at least %(min_n)s each are needed): its time "
        "saved counts as zero."
    ),
    "few_observations": N_(
        "“%(activity)s” rests on few time observations (%(baseline_n)s at baseline, "
        "%(technology_n)s with the technology): its interval is wide."
    ),
    "no_event_type": N_(
        "“%(activity)s” has no device event mapped to it, so its occurrences are unknown and its "
        "time saved counts as zero."
    ),
    "may_lose": N_(
        "The projected net benefit per year for the trial's units lies between %(low)s and "
        "%(high)s: at the low end of the interval the technology costs more than it saves."
    ),
}


class Caveat(BaseModel):
    code: CaveatCode
    params: dict[str, str | int | Decimal]
    message: str  # in English; the report words it in the reader's language


def _caveat(code: CaveatCode, **params: str | int | Decimal) -> Caveat:
    caveat = Caveat(code=code, params=params, message="")
    caveat.message = render(caveat, lambda text: text, Formatter("en"))
    return caveat


def caveats(saved: TimeSaved, case: BusinessCase) -> list[Caveat]:
    found: list[Caveat] = []
    days = case.observed.days
    if days is None:
        found.append(_caveat("no_period"))
    elif days < MIN_SPAN_DAYS:
        found.append(_caveat("short_span", days=cents(days), min_days=MIN_SPAN_DAYS))
    for activity in saved.activities:
        counts: dict[str, str | int | Decimal] = {
            "activity": activity.name,
            "baseline_n": activity.baseline.n,
            "technology_n": activity.with_technology.n,
        }
        if activity.status == "too_few_observations":
            found.append(_caveat("not_estimated", **counts, min_n=MIN_OBSERVATIONS))
        elif min(activity.baseline.n, activity.with_technology.n) < FEW_OBSERVATIONS:
            found.append(_caveat("few_observations", **counts))
        if activity.status == "no_event_type":
            found.append(_caveat("no_event_type", activity=activity.name))
    projection = case.trial_units_full_year
    if projection is not None:
        low = projection.value_per_year_ci95.low - projection.recurring_costs_per_year
        high = projection.value_per_year_ci95.high - projection.recurring_costs_per_year
        if low < 0 < projection.net_benefit_per_year:
            found.append(
                _caveat("may_lose", low=cents(low), high=cents(high), currency=case.currency)
            )
    return found


MONEY = frozenset({"low", "high"})  # amounts in the caveat's `currency`


def render(caveat: Caveat, gettext: Callable[[str], str], fmt: Formatter) -> str:
    """The caveat in the reader's language: numbers and money in their format."""
    params: dict[str, str] = {}
    for name, value in caveat.params.items():
        if name in MONEY:
            params[name] = fmt.money(Decimal(value), str(caveat.params["currency"]), digits=0)
        elif isinstance(value, Decimal):
            params[name] = fmt.number(value, 1 if value != value.to_integral_value() else 0)
        elif isinstance(value, int):
            params[name] = fmt.number(value)
        else:
            params[name] = value
    return gettext(TEMPLATES[caveat.code]) % params
