"""From a posted HTML form to the same pydantic models the API takes, and back to field errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, time
from typing import Any, TypeVar

import psycopg
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from i18n import TIMEZONE
from infra.errors import LdlError

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


def local_instant(value: str) -> datetime | str:
    """A date or datetime-local field read as Copenhagen time; anything else goes on to pydantic."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    if len(text) == 10:  # a date alone means its midnight
        parsed = datetime.combine(parsed.date(), time(0))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=TIMEZONE)


def fields(
    form: FormData,
    *,
    lists: Iterable[str] = (),
    instants: Iterable[str] = (),
    flags: Iterable[str] = (),
    skip: Iterable[str] = ("csrf_token",),
) -> dict[str, Any]:
    """The form as a dict: empty fields left out (so defaults apply), lists and times converted."""
    lists, instants, flags, skip = set(lists), set(instants), set(flags), set(skip)
    data: dict[str, Any] = {}
    for name in form:
        if name in skip:
            continue
        if name in lists:
            data[name] = [v for v in form.getlist(name) if isinstance(v, str) and v.strip()]
            continue
        value = form.get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        data[name] = local_instant(value) if name in instants else value.strip()
    for name in flags:
        data[name] = name in form
    return data


class FormErrors(dict[str, str]):
    """Field name → message, plus messages that belong to the whole form under ''."""

    @property
    def general(self) -> str | None:
        return self.get("")


def _message(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def validate(model: type[M], data: dict[str, Any]) -> tuple[M | None, FormErrors]:
    try:
        return model.model_validate(data), FormErrors()
    except ValidationError as exc:
        errors = FormErrors()
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            errors.setdefault(name, _message(error))
        return None, errors


def submit(
    conn: psycopg.Connection, model: type[M], data: dict[str, Any], action: Callable[[M], R]
) -> tuple[R | None, FormErrors]:
    """What every form does: validate the fields as the API's model, then run the service call
    on it in a savepoint. The result, or the field errors (or the service's refusal) to show."""
    parsed, errors = validate(model, data)
    if parsed is None:
        return None, errors
    return attempt(conn, lambda: action(parsed))


def attempt(conn: psycopg.Connection, action: Callable[[], R]) -> tuple[R | None, FormErrors]:
    """Run a service call in a savepoint: a refused change leaves the page's transaction usable."""
    try:
        with conn.transaction():
            return action(), FormErrors()
    except LdlError as exc:
        return None, FormErrors({"": exc.detail})
