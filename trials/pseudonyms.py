"""What a pseudonym may not look like: a Danish CPR number or a person's name.

The database keeps the shape (`^[A-Za-z0-9_.-]{2,40}$`); this module gives the reason a person can
act on, before anything reaches the database.
"""

from __future__ import annotations

import re
from datetime import date

from infra.types import Rule

ALLOWED_SHAPE = re.compile(r"^[A-Za-z0-9_.-]{2,40}$")
# ddmmyy-xxxx, or ten digits in a row, not part of a longer number.
_CPR_DASHED = re.compile(r"(?<!\d)(\d{6})-(\d{4})(?!\d)")
_CPR_PLAIN = re.compile(r"(?<!\d)(\d{6})(\d{4})(?!\d)")
# Two or more capitalised words: "Anna Jensen", "Anna.Jensen", "Karl_Erik_Hansen".
_FULL_NAME = re.compile(r"^[A-ZÆØÅ][a-zæøåéü]+(?:[\s._-]+[A-ZÆØÅ][a-zæøåéü]+)+$")


def _plausible_birth_date(ddmmyy: str) -> bool:
    day, month, year = int(ddmmyy[:2]), int(ddmmyy[2:4]), int(ddmmyy[4:])
    # The century is unknown from six digits; a leap year (2000) accepts every real 29 February.
    try:
        date(2000 if year % 4 == 0 else 2001, month, day)
    except ValueError:
        return False
    return True


LIKE_CPR = Rule(
    "pseudonym_like_cpr",
    "looks like a Danish CPR number (ddmmyy-xxxx); use a pseudonym such as 'P-017'",
)
LIKE_CPR_DIGITS = Rule(
    "pseudonym_like_cpr_digits",
    "looks like a Danish CPR number (10 digits with a birth date); use a pseudonym",
)
LIKE_NAME = Rule(
    "pseudonym_like_name", "looks like a person's name; use a pseudonym such as 'P-017'"
)
BAD_SHAPE = Rule("pseudonym_shape", "must be 2-40 characters of letters, digits, '_', '.' or '-'")


def problem_with(pseudonym: str) -> Rule | None:
    """Why this pseudonym is refused, or None when it is acceptable."""
    if _CPR_DASHED.search(pseudonym):
        return LIKE_CPR
    if any(_plausible_birth_date(m.group(1)) for m in _CPR_PLAIN.finditer(pseudonym)):
        return LIKE_CPR_DIGITS
    if any(ch.isspace() for ch in pseudonym) or _FULL_NAME.match(pseudonym):
        return LIKE_NAME
    if not ALLOWED_SHAPE.match(pseudonym):
        return BAD_SHAPE
    return None
