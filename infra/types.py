"""The input types every domain shares: what PostgreSQL can store, refused at the edge otherwise.

An id larger than a bigint or a string holding NUL (which PostgreSQL text cannot hold) would
otherwise reach the database and come back as a 500. Use these in request bodies and in path and
query parameters alike (`Annotated[Id, Path()]`, `Annotated[Text, Query()]`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

RULES: Final[dict[str, Rule]] = {}


@dataclass(frozen=True)
class Rule:
    """A validation rule of the schemas and its message: `code` is the error's type in the API's
    422 (a key a client can act on), `message` an English msgid of the `messages` catalog with
    `%(name)s` placeholders. The API shows the English; the web app words it for its reader."""

    code: str
    message: str

    def __post_init__(self) -> None:
        RULES[self.code] = self

    def error(self, **params: Any) -> PydanticCustomError:
        """Raise it in a validator; `field=` names the field to fix when the rule spans several."""
        return PydanticCustomError(self.code, re.sub(r"%\((\w+)\)s", r"{\1}", self.message), params)


NUL_CHARACTER = Rule("nul_character", "must not contain NUL characters")

MAX_ID = 2**63 - 1  # PostgreSQL bigint: larger ids cannot exist
TEXT_MAX_LENGTH = 10_000


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise NUL_CHARACTER.error()
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# Any free text: no NUL, at most TEXT_MAX_LENGTH characters. Narrow it where a field is shorter:
# Annotated[Text, StringConstraints(max_length=64)].
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX_LENGTH), AfterValidator(refuse_nul)]
Name = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
