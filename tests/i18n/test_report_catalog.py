"""Every string the report shows has its Danish, and every label its enum value."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import get_args

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from evidence.criteria import UNITS, Verdict
from evidence.evaluation import Status
from evidence.report_text import LABELS, Reader
from evidence.schemas import CriterionMetric, Respondent
from i18n import catalog_path

ROOT = Path(__file__).parents[2]
SOURCES = [
    "evidence/report.py",
    "evidence/report_html.py",
    "evidence/report_text.py",
    "evidence/report_charts.py",
    "evidence/caveats.py",
    "evidence/criteria.py",
    "evidence/surveys.py",
    "evidence/evaluation.py",
]


def _msgids() -> set[str]:
    found = set()
    for source in SOURCES:
        for _, message, _, _ in extract_from_file(
            "python", ROOT / source, keywords={"_": None, "N_": None}
        ):
            assert isinstance(message, str)  # no plural forms in the report
            found.add(message)
    return found


def test_every_report_string_has_its_danish_and_none_is_stale() -> None:
    with catalog_path("da", "report").open("rb") as po_file:
        catalog = read_po(po_file)
    translated = {m.id: m.string for m in catalog if m.id}
    used = _msgids()
    assert len(used) > 100
    assert sorted(m for m in used if not translated.get(m)) == []  # untranslated
    assert sorted(set(translated) - used) == []  # stale: no longer in the code


def test_every_enum_the_report_shows_has_a_label() -> None:
    values = {
        *(m.value for m in CriterionMetric),
        *get_args(Verdict),
        *(r.value for r in Respondent),
        *get_args(Status),
        *UNITS.values(),
    }
    assert sorted(values - set(LABELS)) == []


def test_small_numbers_and_rates_read_as_they_are() -> None:
    danish, english = Reader("da"), Reader("en")
    # A saving of −0.02 min is neither "-0,0" nor hidden as "0,0".
    assert danish.minutes(Decimal("-0.02")) == "-0,02"
    assert danish.minutes(Decimal("4.2684")) == "4,3"
    assert danish.num(Decimal("-0.02"), 1) == "0,0" and danish.num(Decimal("-0.004"), 2) == "0,00"
    assert english.num(Decimal("-0.02"), 1) == "0.0"
    # An hourly rate as agreed, not rounded to whole kroner.
    assert danish.rate(Decimal("385.50")) == "385,50\xa0kr."
    assert danish.rate(Decimal("300.00")) == "300\xa0kr."
    assert english.rate(Decimal("385.50")) == "DKK385.50"


def test_a_period_that_ends_at_midnight_ends_the_day_before() -> None:
    midnight = datetime(2026, 12, 4, 23, 0, tzinfo=UTC)  # 5 December 00:00 in Copenhagen
    assert Reader("da").last_day(midnight) == "4. december 2026"
    assert Reader("en").last_day(midnight) == "4 December 2026"
    assert Reader("da").last_day(midnight + timedelta(hours=9)) == "5. december 2026"
