"""The report's words and formats for one reader: their language, numbers, money and dates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from babel.lists import format_list

from i18n import TIMEZONE, Formatter, translations

DOMAIN = "report"


def N_(message: str) -> str:
    """Marks an English msgid of the report domain for extraction; translated where shown."""
    return message


# Labels of the report's own enums (their English is the msgid).
LABELS: dict[str, str] = {
    # criterion metrics
    "time_saved_pct": N_("Time saved per occurrence"),
    "occurrences_per_day": N_("Occurrences per day"),
    "usage_hours_per_day": N_("Hours a day in use"),
    "data_completeness_pct": N_("Data completeness"),
    "payback_months": N_("Payback time"),
    # verdicts
    "met": N_("met"),
    "not_met": N_("not met"),
    "not_measurable": N_("not yet measurable"),
    # respondent groups
    "staff": N_("staff"),
    "resident": N_("residents"),
    "relative": N_("relatives"),
    # time saved per activity
    "estimated": N_("estimated"),
    "too_few_observations": N_("too few observations"),
    "no_event_type": N_("no device event mapped"),
    "no_occurrences": N_("no occurrences yet"),
    # units
    "%": "%",
    "occurrences/day": N_("a day"),
    "hours/day": N_("hours a day"),
    "months": N_("months"),
    # a survey median not shown to this reader
    "withheld": N_("withheld"),
}


# Proper names among the shared enums' values, for English (the source language has no catalog).
ENGLISH_NAMES = {"living_design_lab": "Living Design Lab", "opi": "OPI", "opp": "OPP"}


@dataclass(frozen=True)
class Reader:
    """`Reader("da")._("Summary")` is "Resumé"; numbers and dates in the reader's format."""

    locale: str
    fmt: Formatter = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmt", Formatter(self.locale))

    def _(self, message: str) -> str:
        return translations(self.locale, DOMAIN).gettext(message)

    def label(self, value: str) -> str:
        """A label of the report's own enums: metrics, verdicts, respondents, statuses, units."""
        return self._(LABELS[value])

    def common(self, context: str, message: str) -> str:
        """An enum's label from the shared catalog (trial status, decision, collaboration form)."""
        label = translations(self.locale, "common").pgettext(context, message)
        if label == message:  # the source language has no catalog: make the value readable
            label = ENGLISH_NAMES.get(message, message.replace("_", " "))
        return label

    def num(self, value: Decimal | int | float | None, digits: int = 0) -> str:
        return "—" if value is None else self.fmt.number(value, digits)

    def money(self, value: Decimal | int, currency: str = "DKK") -> str:
        """Whole kroner: a council reads 3.000 kr., not 2.999,85 kr."""
        return self.fmt.money(value, currency, digits=0)

    def rate(self, value: Decimal | int, currency: str = "DKK") -> str:
        """A price per hour as agreed: 385,50 kr., not 386 kr. (whole kroner when it is whole)."""
        whole = Decimal(value) == Decimal(value).to_integral_value()
        return self.fmt.money(value, currency, digits=0 if whole else 2)

    def minutes(self, value: Decimal | None) -> str:
        """Minutes to one decimal, or two where one would read as no difference (−0,02)."""
        if value is not None and value and abs(value) < Decimal("0.05"):
            return self.num(value, 2)
        return self.num(value, 1)

    def percent(self, fraction: Decimal) -> str:
        return self.fmt.percent(fraction, 1)

    def date(self, value: dt.date | dt.datetime) -> str:
        return self.fmt.date(value, "long")

    def last_day(self, end: dt.datetime) -> str:
        """The last day a period touches: one that ends at local midnight ended the day before
        (a trial until 5 December 00:00 ran through 4 December)."""
        local = end.astimezone(TIMEZONE)
        day = local.date() - dt.timedelta(days=1) if local.time() == dt.time(0) else local.date()
        return self.fmt.date(day, "long")

    def short_date(self, value: dt.date | dt.datetime) -> str:
        return self.fmt.date(value, "d. MMM" if self.locale == "da" else "d MMM")

    def join(self, items: Sequence[str]) -> str:
        return format_list(list(items), locale=self.fmt.babel_locale) if items else ""

    def unit(self, unit: str) -> str:
        return self.label(unit)

    def reason(self, reason: str) -> str:
        return self._(reason)

    def withheld_note(self, minimum: int) -> str:
        """Why a survey median says "withheld" (the report and the web app alike)."""
        return self._(
            "“withheld”: a median of fewer than %(n)s answers is not shown to the company, "
            "which knows whom the lab asked and could read one person's own answer off it."
        ) % {"n": minimum}
