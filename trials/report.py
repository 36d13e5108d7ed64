"""The trial report: one self-contained HTML page (inline SVG charts) and the same as a PDF.

The content is built once as sections of tables; HTML and PDF only render them. Participant
pseudonyms never reach this module: it reads counts and aggregates only.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from matplotlib import rc_context
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from trials.business_case import Projection
from trials.evaluation import METHOD, PhaseSummary
from trials.evaluation_service import Evidence

ZONE_NOTE = "days are local days (Europe/Copenhagen)"


@dataclass
class Table:
    headers: Sequence[str]
    rows: list[Sequence[str]]


@dataclass
class Section:
    title: str
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    chart: str = ""  # key into the charts


def _when(value: datetime | date | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z").strip()
    return value.isoformat()


def _num(value: Decimal | int | None, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return f"{value:,.2f}{suffix}".replace(",", "\u00a0")
    return f"{value:,}{suffix}".replace(",", "\u00a0")


def _range(pair: tuple[Decimal, Decimal] | None, suffix: str = "") -> str:
    return "—" if pair is None else f"{_num(pair[0])} to {_num(pair[1])}{suffix}"


def _phase(summary: PhaseSummary) -> str:
    if summary.n == 0:
        return "no observations"
    interval = (
        f" (95 % CI {_num(summary.ci95_low)}–{_num(summary.ci95_high)})"
        if summary.ci95_low is not None
        else ""
    )
    return f"{_num(summary.mean_minutes)} min, n={summary.n}{interval}"


def _projection_rows(projection: Projection | None, currency: str) -> list[str]:
    if projection is None:
        return ["—"] * 8
    return [
        f"{projection.units} ({projection.scope})",
        _num(projection.hours_saved_per_year, " h"),
        f"{_num(projection.value_per_year)} {currency}",
        f"{_num(projection.value_per_year_ci95.low)} to {_num(projection.value_per_year_ci95.high)}",
        f"{_num(projection.one_off_costs)} / {_num(projection.recurring_costs_per_year)}",
        f"{_num(projection.net_benefit_per_year)} {currency}",
        f"{_num(projection.net_benefit_first_year)} {currency}",
        projection.payback_note,
    ]


def build_sections(evidence: Evidence) -> list[Section]:
    facts, saved, case = evidence.facts, evidence.time_saved, evidence.business_case
    cov, data = evidence.coverage, evidence.completeness
    sections = [
        Section(
            "Trial",
            tables=[
                Table(
                    ("", ""),
                    [
                        ("Company", facts.company_name),
                        ("Product", facts.product),
                        ("Status", facts.status),
                        ("Collaboration form", facts.collaboration_form),
                        ("Care homes", ", ".join(facts.sites) or "—"),
                        (
                            "Baseline",
                            f"{_when(facts.baseline_from)} → {_when(facts.baseline_until)}",
                        ),
                        ("Trial", f"{_when(facts.trial_from)} → {_when(facts.trial_until)}"),
                        ("Need", facts.need or "—"),
                        ("Success criteria", facts.success_criteria or "—"),
                    ],
                )
            ],
        ),
        Section(
            "Decision",
            intro=(
                f"{facts.decision.upper()} — decided {_when(facts.decided_at)}. "
                f"{facts.decision_rationale or ''}"
                if facts.decision
                else "No decision recorded yet."
            ),
        ),
        Section(
            "Consent coverage (counts only)",
            tables=[
                Table(
                    (
                        "Participants",
                        "Telemetry now",
                        "Dashboards now",
                        "Evaluation now",
                        "Withdrawn",
                        "Left",
                    ),
                    [
                        [
                            _num(cov.participants),
                            _num(cov.telemetry_now),
                            _num(cov.company_dashboards_now),
                            _num(cov.evaluation_now),
                            _num(cov.withdrawn),
                            _num(cov.left),
                        ]
                    ],
                )
            ],
        ),
        Section(
            "Usage",
            intro=(
                f"{_num(sum(u.readings for u in evidence.daily_usage))} readings and "
                f"{_num(sum(u.events for u in evidence.daily_usage))} device events over "
                f"{len(evidence.daily_usage)} days with data; {ZONE_NOTE}."
            ),
            chart="usage",
        ),
        Section(
            "Time saved",
            intro=(
                f"Period {_when(saved.period_from)} → {_when(saved.period_until)}. "
                f"In total {_num(saved.hours_saved)} hours saved "
                f"(95 % interval {_range(saved.hours_saved_ci95, ' hours')}; bounds added across "
                "activities, so conservative)."
            ),
            tables=[
                Table(
                    (
                        "Activity",
                        "Baseline",
                        "With technology",
                        "Saved per occurrence",
                        "Occurrences",
                        "Hours saved",
                        "Note",
                    ),
                    [
                        [
                            a.name,
                            _phase(a.baseline),
                            _phase(a.with_technology),
                            "—"
                            if a.minutes_saved_per_occurrence is None
                            else f"{_num(a.minutes_saved_per_occurrence)} min "
                            f"({_range(a.minutes_saved_per_occurrence_ci95)})",
                            _num(a.occurrences),
                            "—"
                            if a.hours_saved is None
                            else f"{_num(a.hours_saved)} ({_range(a.hours_saved_ci95)})",
                            a.note or a.status.replace("_", " "),
                        ]
                        for a in saved.activities
                    ],
                )
            ],
            notes=[f"Method: {METHOD}."],
            chart="time_saved",
        ),
        Section(
            "Business case",
            intro=(
                f"Status: {case.status}. Observed {_num(case.observed.days)} days: "
                f"{_num(case.observed.hours_saved)} hours saved, worth "
                f"{_num(case.observed.value_of_time_saved)} {case.currency} at "
                f"{_num(case.staff_hourly_cost)} {case.currency}/hour. Costs: one-off "
                f"{_num(case.costs.one_off)}, recurring {_num(case.costs.recurring_per_year)} "
                f"{case.currency} per year."
            ),
            tables=[
                Table(
                    (
                        "Full year",
                        "Units",
                        "Hours saved",
                        "Value",
                        "Value 95 % interval",
                        "One-off / recurring costs",
                        "Net per year",
                        "Net first year",
                        "Payback",
                    ),
                    [
                        [
                            "The trial's units",
                            *_projection_rows(case.trial_units_full_year, case.currency),
                        ],
                        [
                            "Whole municipality",
                            *_projection_rows(case.municipality_full_year, case.currency),
                        ],
                    ],
                )
            ],
            notes=["Assumptions: " + " ".join(case.assumptions)],
        ),
        Section(
            "Data completeness",
            tables=[
                Table(
                    ("", ""),
                    [
                        ("Readings stored", _num(data.readings)),
                        ("Device events stored", _num(data.events)),
                        (
                            "Dead letters (rejected messages)",
                            _num(data.dead_letters)
                            + "".join(
                                f"; {reason}: {n}"
                                for reason, n in data.dead_letters_by_reason.items()
                            ),
                        ),
                        ("Readings refused for lack of consent", _num(data.consent_drops)),
                        (
                            "Sequence gaps",
                            "not tracked"
                            if data.gaps_recorded is None
                            else f"{_num(data.gaps_recorded)} gaps, "
                            f"{_num(data.messages_missing_in_gaps)} messages missing",
                        ),
                    ],
                )
            ],
        ),
    ]
    return sections


# --------------------------------------------------------------------------- charts
def _usage_figure(evidence: Evidence) -> Figure:
    figure = Figure(figsize=(9, 4.2), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    days = [u.bucket for u in evidence.daily_usage]
    top.bar(days, [u.readings for u in evidence.daily_usage], color="#4C78A8", label="readings")
    top.set_ylabel("readings / day")
    twin = top.twinx()
    twin.plot(
        days,
        [u.events for u in evidence.daily_usage],
        color="#F58518",
        marker="o",
        markersize=3,
        label="events",
    )
    twin.set_ylabel("events / day")
    top.set_title("Usage per day")
    bottom.plot(
        days,
        [u.active_devices for u in evidence.daily_usage],
        label="active devices",
        color="#54A24B",
    )
    bottom.plot(
        days,
        [u.active_participants for u in evidence.daily_usage],
        label="active participants",
        color="#B279A2",
    )
    bottom.set_ylabel("count")
    bottom.legend(loc="upper left", fontsize=8)
    if not days:
        top.text(0.5, 0.5, "no telemetry yet", ha="center", va="center", transform=top.transAxes)
    figure.autofmt_xdate()
    return figure


def _time_saved_figure(evidence: Evidence) -> Figure:
    figure = Figure(figsize=(9, 3.8), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=(1, 1.3))
    estimated = [
        a for a in evidence.time_saved.activities if a.minutes_saved_per_occurrence is not None
    ]
    names = [a.name for a in estimated]
    values = [float(a.minutes_saved_per_occurrence or 0) for a in estimated]
    errors = [
        [
            v - float(a.minutes_saved_per_occurrence_ci95[0])
            for v, a in zip(values, estimated, strict=True)
            if a.minutes_saved_per_occurrence_ci95
        ],
        [
            float(a.minutes_saved_per_occurrence_ci95[1]) - v
            for v, a in zip(values, estimated, strict=True)
            if a.minutes_saved_per_occurrence_ci95
        ],
    ]
    if estimated:
        left.barh(names, values, xerr=errors, color="#72B7B2", capsize=4, height=0.5)
        left.axvline(0, color="black", linewidth=0.8)
        left.set_ylim(-1, len(names))  # one activity still gets a slim bar
    else:
        left.text(
            0.5, 0.5, "too few observations", ha="center", va="center", transform=left.transAxes
        )
    left.set_title("Minutes saved per occurrence (95 % CI)", fontsize=10)
    totals: dict[date, tuple[Decimal, Decimal, Decimal]] = {}
    for activity in estimated:
        low, high = activity.minutes_saved_per_occurrence_ci95 or (Decimal(0), Decimal(0))
        point = activity.minutes_saved_per_occurrence or Decimal(0)
        for saving in activity.per_day:
            t = totals.get(saving.day, (Decimal(0), Decimal(0), Decimal(0)))
            totals[saving.day] = (
                t[0] + saving.occurrences * point,
                t[1] + saving.occurrences * low,
                t[2] + saving.occurrences * high,
            )
    days = sorted(totals)
    cumulative: list[list[float]] = [[], [], []]
    running = [0.0, 0.0, 0.0]
    for day in days:
        for i in range(3):
            running[i] += float(totals[day][i]) / 60
            cumulative[i].append(running[i])
    if days:
        right.fill_between(
            days, cumulative[1], cumulative[2], color="#72B7B2", alpha=0.3, label="95 % interval"
        )
        right.plot(days, cumulative[0], color="#1F6F6B", label="hours saved")
        right.legend(loc="upper left", fontsize=8)
    else:
        right.text(
            0.5, 0.5, "no occurrences yet", ha="center", va="center", transform=right.transAxes
        )
    right.set_title("Cumulative hours saved", fontsize=10)
    for label in right.get_xticklabels():
        label.set_rotation(30)
        label.set_horizontalalignment("right")
    return figure


def charts(evidence: Evidence) -> dict[str, Figure]:
    return {"usage": _usage_figure(evidence), "time_saved": _time_saved_figure(evidence)}


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none"}):  # text stays text: smaller and searchable
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


# ----------------------------------------------------------------------------- HTML
STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2733;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #dde3ea;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #dde3ea;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f3f6f9}.note{color:#52606d;font-size:.9em}.chart svg{width:100%;height:auto}
.subtitle{color:#52606d}
"""


def _table_html(table: Table) -> str:
    head = ""
    if any(table.headers):
        head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.headers) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>"
        for row in table.rows
    )
    return f"<table>{head}{body}</table>"


def render_html(evidence: Evidence) -> str:
    svgs = {name: _svg(figure) for name, figure in charts(evidence).items()}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(evidence.facts.title)} — trial report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(evidence.facts.title)}</h1>",
        f"<p class='subtitle'>Trial {evidence.facts.id} · Living Design Lab trial report · "
        f"generated {_when(evidence.facts.now)}</p>",
    ]
    for section in build_sections(evidence):
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.intro:
            parts.append(f"<p>{html.escape(section.intro)}</p>")
        parts.extend(_table_html(table) for table in section.tables)
        if section.chart:
            parts.append(f"<div class='chart'>{svgs[section.chart]}</div>")
        parts.extend(f"<p class='note'>{html.escape(note)}</p>" for note in section.notes)
    parts.append("</body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------------------ PDF
def _text_pages(title: str, sections: list[Section]) -> list[Figure]:
    """A4 pages of plain text lines; tables become 'header: cell' lines."""
    lines: list[tuple[str, str]] = [("title", title)]
    for section in sections:
        lines.append(("heading", section.title))
        if section.intro:
            lines.extend(("text", chunk) for chunk in _wrap(section.intro))
        for table in section.tables:
            for row in table.rows:
                pairs = [
                    f"{header}: {cell}" if header else str(cell)
                    for header, cell in zip(table.headers, row, strict=True)
                ]
                for line in _wrap(" · ".join(pairs) if any(table.headers) else ": ".join(pairs)):
                    lines.append(("text", line))
        for note in section.notes:
            lines.extend(("note", chunk) for chunk in _wrap(note))
    pages, per_page = [], 56
    for start in range(0, len(lines), per_page):
        figure = Figure(figsize=(8.27, 11.69))
        y = 0.96
        for style, text in lines[start : start + per_page]:
            size, weight = {"title": (15, "bold"), "heading": (11, "bold")}.get(
                style, (8, "normal")
            )
            if style == "heading":
                y -= 0.012  # air above each section
            figure.text(
                0.06,
                y,
                text,
                fontsize=size,
                fontweight=weight,
                color="#52606d" if style == "note" else "black",
                va="top",
            )
            y -= 0.0145 if style in ("text", "note") else 0.022
        pages.append(figure)
    return pages


def _wrap(text: str, width: int = 120) -> list[str]:
    words, lines, current = text.split(), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    return [*lines, current] if current else lines


def render_pdf(evidence: Evidence) -> bytes:
    buffer = io.BytesIO()
    title = f"{evidence.facts.title} — trial {evidence.facts.id} report"
    with PdfPages(buffer) as pdf:
        for figure in [*_text_pages(title, build_sections(evidence)), *charts(evidence).values()]:
            pdf.savefig(figure)
    return buffer.getvalue()
