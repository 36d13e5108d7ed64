"""A trial's charts as inline SVG, drawn on the server (no JavaScript, no CDN), in the reader's language.

Each chart comes with a text alternative (the same numbers as a table in the page), so a screen
reader user gets what the picture shows.
"""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from matplotlib import rc_context
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from evidence.evaluation import TimeSaved
from evidence.service import UsageBucket
from web.ui import Ui

BLUE, ORANGE, TEAL, DARK_TEAL = "#2E5C8A", "#B35900", "#4C9A96", "#1F5F5B"  # ≥ 3:1 on white


SVG_WITHOUT_METADATA: dict[str, Any] = {key: None for key in ("Creator", "Date", "Format", "Type")}
STYLE_ATTRIBUTE = re.compile(r'style="([^"]*)"')
STYLE_ELEMENT = re.compile(r"<style[^>]*>.*?</style>", re.DOTALL)


def _as_presentation_attributes(match: re.Match[str]) -> str:
    """`style="fill: #fff; stroke-width: 0.8"` as `fill="#fff" stroke-width="0.8"` (the value is
    already escaped for a double-quoted attribute, and stays so)."""
    declarations = (part.partition(":") for part in match.group(1).split(";") if part.strip())
    return " ".join(f'{name.strip()}="{value.strip()}"' for name, _, value in declarations)


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    # The same chart is the same SVG: no <metadata> (a timestamp) and clip-path ids hashed from
    # the clip's own shape, not a random salt (equal ids on one page mean equal clips).
    with rc_context({"svg.fonttype": "none", "font.size": 9, "svg.hashsalt": "ldl"}):
        figure.savefig(buffer, format="svg", metadata=SVG_WITHOUT_METADATA)
    text = buffer.getvalue()
    svg = text[text.index("<svg") :]
    # The page's Content-Security-Policy refuses inline style: matplotlib's style attributes
    # become SVG presentation attributes (every property it writes is one), and its one
    # <style> (round joins, butt caps for everything) becomes inherited attributes on <svg>.
    svg = STYLE_ATTRIBUTE.sub(_as_presentation_attributes, STYLE_ELEMENT.sub("", svg))
    # aria-hidden: the page gives the same numbers as a table right below the chart.
    return svg.replace(
        "<svg ",
        '<svg aria-hidden="true" focusable="false" stroke-linejoin="round" stroke-linecap="butt" ',
        1,
    )


# Numeric dates (6.3, 2025) read the same in Danish and English; month names would not.
DATE_FORMATS = ["%Y", "%-d.%-m", "%-d.%-m", "%H:%M", "%H:%M", "%S"]
OFFSET_FORMATS = ["", "%Y", "%Y", "%-d.%-m.%Y", "%-d.%-m.%Y", "%-d.%-m.%Y %H:%M"]


def _axes_in(axes: Any, ui: Ui, *, dates: bool, digits: int = 0) -> None:
    """Dates along x, numbers on y in the reader's format (1.234,5 in Danish)."""
    if dates:
        axes.xaxis_date()
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(
            ConciseDateFormatter(locator, formats=DATE_FORMATS, offset_formats=OFFSET_FORMATS)
        )
    axes.yaxis.set_major_locator(MaxNLocator(integer=digits == 0))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: ui.number(value, digits)))


# Drawing a chart costs 100-200 ms of CPU (most of a trial page's time), and many readers of one
# trial see the same picture: each is drawn once per language and series, then served from here.
CHARTS_KEPT = 128


def usage_svg(daily: list[UsageBucket], ui: Ui) -> str | None:
    """None when there is nothing to draw: an empty chart says less than a sentence."""
    if not any(u.readings or u.events for u in daily):
        return None
    return _usage_svg(ui.locale, tuple((u.bucket, u.readings, u.events) for u in daily))


@lru_cache(maxsize=CHARTS_KEPT)
def _usage_svg(locale: str, daily: tuple[tuple[Any, int, int], ...]) -> str:
    ui = Ui(locale)
    figure = Figure(figsize=(8, 2.8), layout="constrained")
    axes = figure.subplots()
    days = date2num([bucket for bucket, _, _ in daily])
    axes.bar(days, [readings for _, readings, _ in daily], color=BLUE,
             label=ui.gettext("readings"))  # fmt: skip
    twin = axes.twinx()
    twin.plot(days, [events for _, _, events in daily], color=ORANGE, marker="o", markersize=3,
              label=ui.gettext("events"))  # fmt: skip
    twin.set_ylabel(ui.gettext("events per day"))
    twin.set_ylim(bottom=0)
    _axes_in(twin, ui, dates=False)
    _axes_in(axes, ui, dates=True)
    axes.set_ylabel(ui.gettext("readings per day"))
    axes.spines[["top"]].set_visible(False)
    return _svg(figure)


def cumulative_hours(saved: TimeSaved) -> list[tuple[date, float, float, float]]:
    """Per day: hours saved so far, with the low and high end of its 95 % interval."""
    totals: dict[date, list[Decimal]] = {}
    for activity in saved.activities:
        if activity.minutes_saved_per_occurrence is None:
            continue
        point = activity.minutes_saved_per_occurrence
        low, high = activity.minutes_saved_per_occurrence_ci95 or (point, point)
        for saving in activity.per_day:
            minutes = totals.setdefault(saving.day, [Decimal(0)] * 3)
            for i, per_occurrence in enumerate((point, low, high)):
                minutes[i] += saving.occurrences * per_occurrence
    rows, running = [], [0.0, 0.0, 0.0]
    for day in sorted(totals):
        running = [r + float(m) / 60 for r, m in zip(running, totals[day], strict=True)]
        rows.append((day, running[0], running[1], running[2]))
    return rows


def time_saved_svg(saved: TimeSaved, ui: Ui) -> str | None:
    rows = cumulative_hours(saved)
    return _time_saved_svg(ui.locale, tuple(rows)) if rows else None


@lru_cache(maxsize=CHARTS_KEPT)
def _time_saved_svg(locale: str, rows: tuple[tuple[date, float, float, float], ...]) -> str:
    ui = Ui(locale)
    figure = Figure(figsize=(8, 2.8), layout="constrained")
    axes = figure.subplots()
    days = date2num([r[0] for r in rows])
    axes.fill_between(days, [r[2] for r in rows], [r[3] for r in rows], color=TEAL,
                      alpha=0.35, label=ui.gettext("95 % interval"))  # fmt: skip
    axes.plot(days, [r[1] for r in rows], color=DARK_TEAL, label=ui.gettext("hours saved"))
    axes.legend(loc="upper left", fontsize=8, frameon=False)
    _axes_in(axes, ui, dates=True, digits=1)
    axes.set_ylabel(ui.gettext("hours saved, cumulative"))
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure)
