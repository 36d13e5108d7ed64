"""The report's charts, each answering one question, as inline SVG (text stays text).

- minutes: is the work faster? Minutes per occurrence before and with the technology.
- cumulative: how much time has it saved so far? Cumulative hours with their interval.
- use: is it used every day? Occurrences (mapped device events) per local day, per activity.
A chart with nothing to show is left out; the section's text says what is missing.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

import matplotlib.dates as mdates
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from evidence.report_text import Reader
from evidence.service import Evidence
from i18n import TIMEZONE

BASELINE, TECHNOLOGY, BAND = "#9aa5b1", "#1f7a74", "#9fd3cf"
ACTIVITY_COLOURS = ("#1f7a74", "#e07a1f", "#5b5fc7", "#b8336a", "#7a8b1f")
WIDTH = 7.2  # inches: the A4 text width


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none"}):  # text stays text: smaller and searchable
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _day_axis(axis: object, r: Reader, days: list[date]) -> None:
    """Ticks on whole local days, labelled in the reader's language, at most about eight."""
    step = max(1, (len(days) + 7) // 8)
    axis.xaxis.set_major_locator(mdates.DayLocator(interval=step))  # type: ignore[attr-defined]
    axis.xaxis.set_major_formatter(  # type: ignore[attr-defined]
        FuncFormatter(lambda x, _: r.short_date(mdates.num2date(x).date()))
    )


def _minutes(evidence: Evidence, r: Reader) -> Figure | None:
    activities = [
        a
        for a in evidence.time_saved.activities
        if a.baseline.mean_minutes is not None and a.with_technology.mean_minutes is not None
    ]
    if not activities:
        return None
    figure = Figure(figsize=(WIDTH, 0.9 + 0.55 * len(activities)), layout="constrained")
    axis = figure.subplots()
    height = 0.36
    for offset, phase, colour, label in (  # the y axis is inverted: baseline above
        (-height / 2, "baseline", BASELINE, r._("Baseline")),
        (height / 2, "with_technology", TECHNOLOGY, r._("With technology")),
    ):
        summaries = [getattr(a, phase) for a in activities]
        means = [float(s.mean_minutes) for s in summaries]
        errors = [
            [
                m - float(s.ci95_low) if s.ci95_low is not None else 0
                for m, s in zip(means, summaries, strict=True)
            ],
            [
                float(s.ci95_high) - m if s.ci95_high is not None else 0
                for m, s in zip(means, summaries, strict=True)
            ],
        ]
        positions = [i + offset for i in range(len(activities))]
        axis.barh(positions, means, height=height, color=colour, label=label)
        axis.errorbar(
            means, positions, xerr=errors, fmt="none", ecolor="#1d2733", capsize=3, lw=0.8
        )
    axis.set_yticks(range(len(activities)), [a.name for a in activities])
    axis.invert_yaxis()
    axis.set_xlabel(r._("minutes per occurrence (95 % interval)"))
    axis.set_title(r._("Is the work faster? Minutes per occurrence"), fontsize=10, loc="left")
    axis.legend(loc="lower left", bbox_to_anchor=(1.0, 0.0), fontsize=8, frameon=False)
    axis.spines[["top", "right"]].set_visible(False)
    return figure


def _cumulative(evidence: Evidence, r: Reader) -> Figure | None:
    totals: dict[date, tuple[Decimal, Decimal, Decimal]] = {}
    for activity in evidence.time_saved.activities:
        if activity.minutes_saved_per_occurrence is None or not activity.per_day:
            continue
        point = activity.minutes_saved_per_occurrence
        low, high = activity.minutes_saved_per_occurrence_ci95 or (point, point)
        for saving in activity.per_day:
            t = totals.get(saving.day, (Decimal(0), Decimal(0), Decimal(0)))
            totals[saving.day] = (
                t[0] + saving.occurrences * point,
                t[1] + saving.occurrences * low,
                t[2] + saving.occurrences * high,
            )
    if not totals:
        return None
    days = sorted(totals)
    # Each day's total counts at its end: the line starts at zero when the first day begins.
    x = [mdates.date2num(days[0]), *(mdates.date2num(day) + 1 for day in days)]
    running, series = [0.0, 0.0, 0.0], [[0.0], [0.0], [0.0]]
    for day in days:
        for i in range(3):
            running[i] += float(totals[day][i]) / 60
            series[i].append(running[i])
    figure = Figure(figsize=(WIDTH, 2.5), layout="constrained")
    axis = figure.subplots()
    axis.fill_between(x, series[1], series[2], color=BAND, alpha=0.6, label=r._("95 % interval"))
    axis.plot(x, series[0], color=TECHNOLOGY, lw=1.8, marker="o", ms=3, label=r._("hours saved"))
    axis.set_ylabel(r._("hours"))
    axis.set_ylim(bottom=min(0.0, min(series[1])))
    axis.set_title(
        r._("How much time has it saved so far? Cumulative hours"), fontsize=10, loc="left"
    )
    axis.legend(loc="upper left", fontsize=8, frameon=False)
    _day_axis(axis, r, days)
    axis.spines[["top", "right"]].set_visible(False)
    return figure


def _use(evidence: Evidence, r: Reader) -> Figure | None:
    by_type = {
        a.event_type: a.name for a in evidence.time_saved.activities if a.event_type is not None
    }
    totals = evidence.usage_totals
    first = totals.period_from.astimezone(TIMEZONE).date()
    days = [first + timedelta(days=i) for i in range(totals.days)]  # days without data show
    per_day = {u.bucket.astimezone(TIMEZONE).date(): u.events_by_type for u in evidence.daily_usage}
    counts = {
        name: [per_day.get(day, {}).get(event_type, 0) for day in days]
        for event_type, name in by_type.items()
    }
    counts = {name: values for name, values in counts.items() if any(values)}  # no empty bars
    if not counts:
        return None
    x = mdates.date2num(days)
    figure = Figure(figsize=(WIDTH, 2.5), layout="constrained")
    axis = figure.subplots()
    bottom = [0] * len(days)
    for (name, values), colour in zip(counts.items(), ACTIVITY_COLOURS * 4, strict=False):
        axis.bar(x, values, width=0.8, bottom=bottom, color=colour, label=name, align="center")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_ylim(0, max(bottom) * 1.3)  # room for the legend and the label above the bars
    start = evidence.facts.trial_from
    if start is not None and days[0] <= start.astimezone(TIMEZONE).date() <= days[-1]:
        edge = mdates.date2num(start.astimezone(TIMEZONE).date()) - 0.5
        axis.axvline(edge, color="#1d2733", lw=0.8, ls="--")
        axis.annotate(
            r._("technology from here"),
            (edge, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -4),
            textcoords="offset points",
            fontsize=8,
            va="top",
        )
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: whole numbers only
    axis.set_ylabel(r._("occurrences per day"))
    axis.set_title(
        r._("Is it used every day? Occurrences counted by the devices"), fontsize=10, loc="left"
    )
    axis.legend(loc="upper left", fontsize=8, frameon=False)
    _day_axis(axis, r, days)
    axis.set_xlim(x[0] - 0.6, x[-1] + 0.6)
    axis.spines[["top", "right"]].set_visible(False)
    return figure


def charts(evidence: Evidence, r: Reader) -> dict[str, str]:
    """The charts there is something to show for, as SVG."""
    figures = {
        "minutes": _minutes(evidence, r),
        "cumulative": _cumulative(evidence, r),
        "use": _use(evidence, r),
    }
    return {name: _svg(figure) for name, figure in figures.items() if figure is not None}
