"""Languages and local formats: Danish by default, English on request, times in Copenhagen.

One home for what the web app and the reports show people: gettext catalogs per domain (the
source strings are English; `i18n/locales/da/LC_MESSAGES/<domain>.po` holds the Danish), and
numbers, money and dates in the reader's locale through Babel. Catalogs are read from the `.po`
files at first use, so there is no compiled `.mo` to keep in step.
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES: Final = ("da", "en")
DEFAULT_LOCALE: Final = "da"
SOURCE_LOCALE: Final = "en"  # the language msgids are written in
TIMEZONE: Final = ZoneInfo("Europe/Copenhagen")
LOCALES_DIR: Final = Path(__file__).parent / "locales"


def N_(message: str) -> str:
    """Marks a message for the catalogs where it is written; it is translated where shown."""
    return message


@dataclass(frozen=True)
class Message:
    """Words for a person, not yet in their language: an English msgid (of the `messages`,
    `web` or `common` catalog) with its values. `str()` gives the English, as the API says it;
    the web app words it in the reader's language (`web.ui.Ui.say`)."""

    text: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.params:
            return self.text
        return self.text % {name: _english(value) for name, value in self.params.items()}


def _english(value: Any) -> Any:
    """A message's value as the API says it: times in ISO 8601, nested messages in English."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Message):
        return str(value)
    if isinstance(value, list | tuple):
        return ("; " if any(isinstance(v, Message) for v in value) else ", ").join(
            str(_english(v)) for v in value
        )
    return value


def catalog_path(locale: str, domain: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{domain}.po"


@cache
def translations(locale: str, domain: str) -> gettext.NullTranslations:
    """The catalog of `domain` in `locale`; English (the source) and missing catalogs pass through."""
    path = catalog_path(locale, domain)
    if locale == SOURCE_LOCALE or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as po_file:
        catalog = read_po(po_file, locale=locale, domain=domain)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer, domain=domain)


def negotiate(requested: str | None, accept_language: str | None = None) -> str:
    """The locale to answer in: an explicit request, else the browser's first known, else Danish."""
    if requested:
        code = requested.strip().lower()[:2]
        if code in LOCALES:
            return code
    for part in (accept_language or "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LOCALES:
            return code
    return DEFAULT_LOCALE


def _no_negative_zero(value: float | Decimal | int, digits: int) -> float | Decimal | int:
    """−0.02 shown to one decimal is 0,0, not -0,0: a value that rounds to zero loses its sign."""
    if value < 0 and abs(Decimal(str(value))) * 10**digits <= Decimal("0.5"):
        return Decimal(0)
    return value


@dataclass(frozen=True)
class Formatter:
    """Formats for one reader: `Formatter("da").number(1208.57, 2)` is '1.208,57'."""

    locale: str = DEFAULT_LOCALE

    def __post_init__(self) -> None:
        if self.locale not in LOCALES:
            raise ValueError(f"unknown locale {self.locale!r}; known: {', '.join(LOCALES)}")

    @property
    def babel_locale(self) -> Locale:
        try:
            return Locale.parse({"da": "da_DK", "en": "en_GB"}[self.locale])
        except UnknownLocaleError:  # pragma: no cover - Babel ships both
            return Locale.parse(self.locale)

    def number(self, value: float | Decimal | int, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return babel_numbers.format_decimal(
            _no_negative_zero(value, digits),
            format=pattern,
            locale=self.babel_locale,
            decimal_quantization=True,
        )

    def money(self, value: float | Decimal | int, currency: str = "DKK", digits: int = 2) -> str:
        """'12.345,67 kr.' in Danish, 'DKK12,345.67' in English; `digits=0` for whole kroner."""
        # The locale's currency pattern with the asked-for decimals (Babel's own option only
        # switches between the currency's digits and the pattern's).
        pattern = babel_numbers.parse_pattern(self.babel_locale.currency_formats["standard"])
        pattern.frac_prec = (digits, digits)
        return pattern.apply(
            _no_negative_zero(value, digits),
            self.babel_locale,
            currency=currency,
            currency_digits=False,
            decimal_quantization=True,
        )

    def percent(self, fraction: float | Decimal, digits: int = 0) -> str:
        pattern = "#,##0" + ("." + "0" * digits if digits else "") + "\xa0%"  # no break before %
        return babel_numbers.format_percent(fraction, format=pattern, locale=self.babel_locale)

    def date(self, value: date | datetime, format: str = "long") -> str:
        if isinstance(value, datetime):
            value = value.astimezone(TIMEZONE).date()
        return babel_dates.format_date(value, format=format, locale=self.babel_locale)

    def datetime(self, value: datetime, format: str = "medium") -> str:
        """In Europe/Copenhagen whatever zone `value` carries (it must carry one)."""
        if value.tzinfo is None:
            raise ValueError("a datetime to show must carry a time zone")
        return babel_dates.format_datetime(
            value, format=format, tzinfo=TIMEZONE, locale=self.babel_locale
        )
