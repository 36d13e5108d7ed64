"""Danish by default, English on request; every string the web app shows has its Danish."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.pofile import read_po

from i18n import catalog_path
from tests.web.browser import Browser
from tests.web.conftest import Person, sign_in

WEB = Path(__file__).resolve().parents[2] / "web"
# _("...") in templates, ui.gettext("...") and N_("...") in Python; pgettext's contexts are not
# messages.
MESSAGE = re.compile(
    r"""(?<![p\w])(?:N_|_|gettext)\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"""
)


def _messages() -> set[str]:
    sources = [*WEB.glob("templates/*.html"), *WEB.glob("*.py")]
    return {
        first or second for path in sources for first, second in MESSAGE.findall(path.read_text())
    }


def test_every_message_of_the_web_app_has_a_danish_translation() -> None:
    messages = _messages()
    assert len(messages) > 150  # the pattern finds them
    translated = set()
    for domain in ("web", "common"):
        with catalog_path("da", domain).open("rb") as po_file:
            translated |= {str(m.id) for m in read_po(po_file) if m.id and m.string}
    assert sorted(messages - translated) == []


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("", "", "Log ind"),
        ("", "en-GB,en;q=0.8", "Sign in"),
        ("?lang=en", "da", "Sign in"),
        ("?lang=da", "en", "Log ind"),
    ],
)
def test_the_language_is_danish_unless_english_is_asked_for(
    web_client: Callable[[], httpx.Client], query: str, accept: str, expected: str
) -> None:
    page = web_client().get(f"/app/login{query}", headers={"Accept-Language": accept})
    assert f"<h1>{expected}</h1>" in page.text
    assert ('lang="en"' if expected == "Sign in" else 'lang="da"') in page.text


def test_english_once_chosen_stays_and_formats_follow(
    web_client: Callable[[], httpx.Client], coordinator: Person
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    client.get("/app/?lang=en")
    page = client.get("/app/companies")
    assert "Register a company" in page.text and "Virksomheder" not in page.text


def test_the_language_link_keeps_every_other_query_parameter(
    web_client: Callable[[], httpx.Client],
) -> None:
    page = web_client().get("/app/login?next=/app/trials/7&lang=da&lang=da")
    link = re.search(r'<a href="([^"]+)" lang="en"', page.text)
    assert link and link.group(1) == "/app/login?next=%2Fapp%2Ftrials%2F7&amp;lang=en"


def test_switching_language_keeps_next_and_sort(
    browser: Browser, coordinator: Person, seeded: Any
) -> None:
    b = browser
    b.go(f"/app/trials/{seeded.trial_id}")  # not signed in: to the sign-in page
    assert b.path.startswith("/app/login?next=")
    b.click_link("English")
    assert "next=" in b.path and "lang=en" in b.path
    assert b.find("h1").text == "Sign in"
    b.fill("#email", coordinator.email)
    b.fill("#password", coordinator.password)
    b.submit()
    assert b.path == f"/app/trials/{seeded.trial_id}"  # where the person was going, in English
    assert b.find("html").get_attribute("lang") == "en"

    b.go("/app/?sort=-title")
    b.click_link("Dansk")
    assert "sort=-title" in b.path and "lang=da" in b.path
    assert b.find("th[aria-sort]").get_attribute("aria-sort") == "descending"
