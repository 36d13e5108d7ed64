"""From a posted HTML form to the same pydantic models the API takes, and back to field errors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, time
from typing import Any, Final, TypeVar

import psycopg
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from i18n import N_, TIMEZONE, Message
from infra.errors import LdlError
from infra.types import RULES

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


class FormErrors(dict[str, Message | str]):
    """Field name → message, plus messages that belong to the whole form under ''.

    Messages stay `Message`s until `web.ui.render` words them in the reader's language."""

    @property
    def general(self) -> Message | str | None:
        return self.get("")

    def prefixed(self, form_key: str) -> FormErrors:
        """The errors of one of a page's several forms: `name` → `<form_key>_name`, '' → form_key."""
        return FormErrors({f"{form_key}_{k}" if k else form_key: v for k, v in self.items()})


# What pydantic's error types mean to a person filling in the form (pydantic's own `msg` is
# English and names patterns). The context's values fill the placeholders.
BY_TYPE: Final[dict[str, str]] = {
    "missing": N_("Fill in this field."),
    "string_too_short": N_("Write at least %(min_length)s characters."),
    "string_too_long": N_("Write at most %(max_length)s characters."),
    "string_pattern_mismatch": N_("This is not in the expected form."),
    "too_short": N_("Choose at least %(min_length)s."),
    "too_long": N_("Choose at most %(max_length)s."),
    "greater_than": N_("Write a number greater than %(gt)s."),
    "greater_than_equal": N_("Write a number of at least %(ge)s."),
    "less_than": N_("Write a number less than %(lt)s."),
    "less_than_equal": N_("Write a number of at most %(le)s."),
    "int_parsing": N_("Write a whole number."),
    "int_from_float": N_("Write a whole number."),
    "int_type": N_("Write a whole number."),
    "decimal_parsing": N_("Write a number, with a point before any decimals, e.g. 12.5."),
    "decimal_type": N_("Write a number, with a point before any decimals, e.g. 12.5."),
    "float_parsing": N_("Write a number, with a point before any decimals, e.g. 12.5."),
    "finite_number": N_("Write a number, with a point before any decimals, e.g. 12.5."),
    "decimal_max_places": N_("Use at most %(decimal_places)s decimals."),
    "decimal_max_digits": N_("The number is too large."),
    "decimal_whole_digits": N_("The number is too large."),
    "enum": N_("Choose one of the options."),
    "literal_error": N_("Choose one of the options."),
    "bool_parsing": N_("Choose yes or no."),
    "datetime_parsing": N_("Give a date and time."),
    "datetime_from_date_parsing": N_("Give a date and time."),
    "datetime_type": N_("Give a date and time."),
    "timezone_aware": N_("Give a date and time."),
    "date_parsing": N_("Give a date."),
    "date_from_datetime_parsing": N_("Give a date."),
    "date_from_datetime_inexact": N_("Give a date."),
    "date_type": N_("Give a date."),
    "extra_forbidden": N_("This field does not belong to the form."),
    # Rules whose API wording names fields; on the page the error stands at the field.
    "not_null": N_("Fill in this field."),
    "activity_for_metric": N_(
        "Choose an activity for the measures counted per activity, and only for those."
    ),
}
# A pattern is no explanation: these fields say what they expect.
PATTERN_BY_FIELD: Final[dict[str, str]] = {
    "cvr": N_("The CVR number must be 8 digits."),
    "email": N_("Write an e-mail address, e.g. name@kolding.dk."),
    "contact_email": N_("Write an e-mail address, e.g. name@kolding.dk."),
    "currency": N_("Write the currency as three capital letters, e.g. DKK."),
    "id": N_("Use only letters, digits, '_', '.' and '-' (at most 64 characters)."),
    "gateway_id": N_("Use only letters, digits, '_', '.' and '-' (at most 64 characters)."),
    "event_type": N_("Use only letters, digits, '_', '.' and '-' (at most 64 characters)."),
}
FALLBACK: Final = N_("This value is not valid.")


def problem(error: Mapping[str, Any]) -> Message:
    """One pydantic error as a message for a person: the schemas' own rules (`infra.types.Rule`)
    by their code, pydantic's types in words from BY_TYPE, anything else 'not valid'."""
    kind = str(error["type"])
    context = dict(error.get("ctx") or {})
    name = str(error["loc"][-1]) if error["loc"] else ""
    if kind == "string_pattern_mismatch" and name in PATTERN_BY_FIELD:
        return Message(PATTERN_BY_FIELD[name])
    if kind in BY_TYPE:
        return Message(BY_TYPE[kind], context)
    if kind in RULES:
        return Message(RULES[kind].message, context)
    return Message(FALLBACK)


def validation_errors(exc: ValidationError, rename: Callable[[str], str] = str) -> FormErrors:
    """The first problem of each field (and of the whole form, under '')."""
    errors = FormErrors()
    for error in exc.errors():
        # A rule about several fields names the field to fix in its context (`field`).
        name = (
            str(error["loc"][0]) if error["loc"] else str((error.get("ctx") or {}).get("field", ""))
        )
        errors.setdefault(rename(name), problem(error))
    return errors


def validate(model: type[M], data: dict[str, Any]) -> tuple[M | None, FormErrors]:
    try:
        return model.model_validate(data), FormErrors()
    except ValidationError as exc:
        return None, validation_errors(exc)


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
        return None, FormErrors({"": exc.message})
