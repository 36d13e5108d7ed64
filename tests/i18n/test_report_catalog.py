"""Every string the report shows has its Danish, and every label its enum value."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from i18n import catalog_path
from trials.criteria import UNITS, Verdict
from trials.evaluation import Status
from trials.report_text import LABELS
from trials.schemas import CriterionMetric, Respondent

ROOT = Path(__file__).parents[2]
SOURCES = [
    "trials/report.py",
    "trials/report_html.py",
    "trials/report_text.py",
    "trials/report_charts.py",
    "trials/caveats.py",
    "trials/criteria.py",
    "trials/surveys.py",
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
