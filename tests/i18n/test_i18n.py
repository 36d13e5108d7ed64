"""Danish by default, English on request; numbers, money and times as a Danish reader expects."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from i18n import DEFAULT_LOCALE, Formatter, negotiate, translations


def test_danish_is_the_default_and_english_is_honoured_on_request() -> None:
    assert DEFAULT_LOCALE == "da"
    assert negotiate(None) == "da"
    assert negotiate("en") == "en"
    assert negotiate("EN-gb") == "en"
    assert negotiate("fr") == "da"
    assert negotiate(None, "fr-FR,en;q=0.8,da;q=0.5") == "en"


def test_enum_values_translate_under_their_context() -> None:
    danish = translations("da", "common")
    assert danish.pgettext("trial status", "running") == "i gang"
    assert danish.pgettext("decision", "stop") == "stop"
    assert danish.ngettext("%(n)d day", "%(n)d days", 3) % {"n": 3} == "3 dage"
    english = translations("en", "common")
    assert english.pgettext("trial status", "running") == "running"


def test_numbers_and_money_in_danish_and_english_formats() -> None:
    da, en = Formatter("da"), Formatter("en")
    assert da.number(Decimal("1208.57"), 2) == "1.208,57"
    assert en.number(Decimal("1208.57"), 2) == "1,208.57"
    assert da.number(4.25) == "4"
    assert da.money(Decimal("12345.675")) == "12.345,68\xa0kr."
    assert da.percent(0.531) == "53\xa0%"


def test_times_are_shown_in_copenhagen() -> None:
    da = Formatter("da")
    # 23:30 UTC on 31 December is already New Year's Day in Copenhagen.
    moment = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert da.date(moment) == "1. januar 2027"
    assert "00.30" in da.datetime(moment) or "00:30" in da.datetime(moment)
    assert da.date(date(2026, 3, 1), "short") == "01.03.2026"
    with pytest.raises(ValueError, match="time zone"):
        da.datetime(datetime(2026, 1, 1))


def test_unknown_locale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown locale"):
        Formatter("fr")
