"""The input types every domain shares: what PostgreSQL can store, refused at the edge otherwise.

An id larger than a bigint or a string holding NUL (which PostgreSQL text cannot hold) would
otherwise reach the database and come back as a 500. Use these in request bodies and in path and
query parameters alike (`Annotated[Id, Path()]`, `Annotated[Text, Query()]`).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

MAX_ID = 2**63 - 1  # PostgreSQL bigint: larger ids cannot exist
TEXT_MAX_LENGTH = 10_000


def refuse_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
# Any free text: no NUL, at most TEXT_MAX_LENGTH characters. Narrow it where a field is shorter:
# Annotated[Text, StringConstraints(max_length=64)].
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX_LENGTH), AfterValidator(refuse_nul)]
Name = Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
