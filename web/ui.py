"""What a page needs to speak to its reader: language, formats, and the templates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from access.accounts import mask_csrf
from access.schemas import WebSession
from i18n import N_, TIMEZONE, Formatter, Message, negotiate, translations

HERE = Path(__file__).parent
LANG_COOKIE = "ldl_lang"

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _dateonly(values: dict[str, Any]) -> dict[str, Any]:
    """Values for <input type=date>: datetimes as their Copenhagen date."""
    return {
        k: v.astimezone(TIMEZONE).date().isoformat() if isinstance(v, datetime) else v
        for k, v in values.items()
    }


def _switch_language(request: Request, locale: str) -> str:
    """This page in another language: every other query parameter (next, sort, filters) kept."""
    url = request.url.include_query_params(lang=locale)
    return f"{url.path}?{url.query}"


def _local_input(value: datetime | str | None) -> str:
    """A value for <input type=datetime-local>, in Copenhagen time (text typed stays as it was)."""
    if not isinstance(value, datetime):
        return value or ""
    return value.astimezone(TIMEZONE).strftime("%Y-%m-%dT%H:%M")


SCOPE_LABELS = {
    "telemetry": ("Device data", "collect data from devices about the participant"),
    "company_dashboards": (
        "Company dashboards",
        "the data may appear, aggregated, in the company's dashboards",
    ),
    "evaluation": ("Evaluation", "the data may go, pseudonymised, to the external evaluator"),
}

# The device types migration 0001 registers; a lab's own types show their registered name.
DEVICE_TYPES = {
    "gateway": N_("Gateway"),
    "sensor_bed": N_("Sensor bed"),
    "medicine_dispenser": N_("Medicine dispenser"),
    "fall_sensor": N_("Fall sensor"),
    "door_sensor": N_("Door sensor"),
    "smart_toilet": N_("Smart toilet"),
    "cleaning_robot": N_("Cleaning robot"),
    "stocking_aid": N_("Compression stocking aid"),
}

templates.filters.update(
    pairs=lambda values, labels: list(zip(values, labels, strict=True)),
    device_type=lambda code, gettext: gettext(DEVICE_TYPES[code]) if code in DEVICE_TYPES else code,
    scope_label=lambda scope, gettext: gettext(SCOPE_LABELS[scope][0]),
    scope_hint=lambda scope, gettext: gettext(SCOPE_LABELS[scope][1]),
    dateonly=_dateonly,
    local_input=_local_input,
)
templates.globals.update(switch_language=_switch_language, mask_csrf=mask_csrf)


@dataclass(frozen=True)
class Ui:
    """One reader's language and formats, and who they are (None before signing in)."""

    locale: str
    session: WebSession | None = None
    fmt: Formatter = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmt", Formatter(self.locale))

    def gettext(self, message: str, **values: Any) -> str:
        """The web catalog first, then the shared one (common.po)."""
        text = translations(self.locale, "web").gettext(message)
        if text == message:
            text = translations(self.locale, "common").gettext(message)
        return text % values if values else text

    def say(self, message: Message | str) -> str:
        """A message in the reader's language, its values in their formats; text is as it is."""
        if not isinstance(message, Message):
            return message
        # The messages catalog first: its short words ("company" as what was refused) are not the
        # web catalog's labels of the same English.
        text = translations(self.locale, "messages").gettext(message.text)
        if text == message.text:
            text = self.gettext(message.text)
        params = {k: self._value(v) for k, v in message.params.items()}
        return text % params if params else text

    def _value(self, value: Any) -> Any:
        if isinstance(value, Message):
            return self.say(value)
        if isinstance(value, datetime | date):
            return self.when(value)
        if isinstance(value, Decimal | float):
            return self.number(value, 0 if value == int(value) else 2)
        if isinstance(value, list | tuple):
            separator = "; " if any(isinstance(v, Message) for v in value) else ", "
            return separator.join(str(self._value(v)) for v in value)
        return value

    def pgettext(self, context: str, message: str | None) -> str:
        """An enum's label, e.g. pgettext("trial status", "running") is 'i gang' in Danish."""
        if message is None:
            return ""
        return translations(self.locale, "common").pgettext(context, str(message))

    def when(self, value: datetime | date | None) -> str:
        """A moment to the minute (seconds are noise to a reader); a date as a date."""
        if value is None:
            return "—"
        if isinstance(value, datetime):
            return self.fmt.datetime(value, format="short")
        return self.fmt.date(value, format="medium")

    def day(self, value: datetime | date | None) -> str:
        return "—" if value is None else self.fmt.date(value, format="medium")

    def number(self, value: float | Decimal | int | None, digits: int = 0) -> str:
        return "—" if value is None else self.fmt.number(value, digits)

    def money(self, value: Decimal | float | None, currency: str = "DKK") -> str:
        return "—" if value is None else self.fmt.money(value, currency)


def ui_for(request: Request, session: WebSession | None = None) -> Ui:
    requested = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return Ui(negotiate(requested, request.headers.get("accept-language")), session)


def render(
    request: Request, ui: Ui, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    # The one place where form errors and refusals are worded for the reader (WCAG 3.3.3).
    if isinstance(context.get("errors"), dict):
        errors = context["errors"]
        context["errors"] = type(errors)({k: ui.say(v) for k, v in errors.items()})
    if "detail" in context:
        context["detail"] = ui.say(context["detail"])
    html = templates.get_template(template).render(
        request=request,
        ui=ui,
        _=ui.gettext,
        pgettext=ui.pgettext,
        session=ui.session,
        csrf_token=mask_csrf(ui.session.csrf_token) if ui.session else "",
        **context,
    )
    response = HTMLResponse(html, status_code=status_code)
    # Pages show personal data and one-time secrets: never cached by a shared or back-button cache.
    response.headers["Cache-Control"] = "no-store"
    if request.query_params.get("lang") == ui.locale:
        response.set_cookie(LANG_COOKIE, ui.locale, max_age=365 * 86400, samesite="lax")
    return response
