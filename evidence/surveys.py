"""Short MAST surveys: the organisational (staff) and user (resident, relative) perspectives.

The same statements are asked at baseline and with the technology, so the two phases compare.
Answers are scores from 1 (strongly disagree) to 5 (strongly agree); the report shows how many
answered and the median per statement and phase. Statements are English msgids (report domain).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from evidence.report_text import N_

STAFF_QUESTIONS: Final = {
    "time_for_residents": N_("I have enough time for the residents."),
    "physical_strain": N_("The task is physically manageable for me."),
    "fits_routines": N_("The way we do the task fits our daily routines."),
    "recommend": N_("I would recommend the way we do the task now to other care homes."),
}
RESIDENT_QUESTIONS: Final = {
    "comfort": N_("The resident is comfortable with how the task is done."),
    "safety": N_("The resident feels safe."),
    "dignity": N_("The resident's privacy and dignity are respected."),
    "recommend": N_("I would recommend the way it is done now to others."),
}
QUESTIONS: Final[dict[str, dict[str, str]]] = {
    "staff": STAFF_QUESTIONS,
    "resident": RESIDENT_QUESTIONS,
    "relative": RESIDENT_QUESTIONS,
}
SCALE: Final = "1 = strongly disagree … 5 = strongly agree"


def unknown_questions(respondent: str, answers: Mapping[str, int]) -> dict[str, str] | None:
    """The questions this respondent group is not asked, and those it is; None when none."""
    known = QUESTIONS[respondent]
    unknown = sorted(set(answers) - set(known))
    if not unknown:
        return None
    return {"respondent": respondent, "unknown": ", ".join(unknown), "known": ", ".join(known)}
