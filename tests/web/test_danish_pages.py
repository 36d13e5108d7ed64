"""Danish pages say nothing in English: every page of the web app and every report, and the
errors of every form (WCAG 2.1 AA 3.1.2, language of parts, and 3.3.3, error suggestion).

The rule: the English of every catalog message whose Danish differs is cut at its placeholders;
a piece of two or more words and ten or more characters that no Danish message contains (so
names such as "Living Design Lab" and shared codes do not count) must not be on a Danish page.
pydantic's own English ("Field required", "String should match pattern ...") is looked for too,
since it is in no catalog. Pages are read as a person meets them: text, and the attributes a
screen reader speaks (title, aria-label, alt, placeholder), not scripts or form values typed in.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx
from babel.messages.pofile import read_po

from i18n import TIMEZONE, catalog_path
from tests.web.conftest import DemoLab, form_token, sign_in

DOMAINS = ("web", "common", "report", "messages")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")
PYDANTIC = (
    "Field required",
    "String should",
    "Input should",
    "Value error",
    "should match pattern",
    "should have at least",
    "valid decimal",
    "valid number",
    "Extra inputs",
)
SPOKEN_ATTRIBUTES = frozenset({"title", "aria-label", "alt", "placeholder"})


@cache
def english_pieces() -> frozenset[str]:
    """Pieces of the catalogs' English that a Danish page must not show."""
    danish: list[str] = []
    english: list[str] = []
    for domain in DOMAINS:
        with catalog_path("da", domain).open("rb") as po_file:
            catalog = read_po(po_file)
        for message in catalog:
            if not message.id:
                continue
            ids = [str(i) for i in (message.id if isinstance(message.id, tuple) else [message.id])]
            strings = [
                str(s)
                for s in (message.string if isinstance(message.string, tuple) else [message.string])
            ]
            danish.extend(s for s in strings if s)
            if any(strings) and set(ids) != set(strings):
                english.extend(ids)
    all_danish = "\n".join(danish).replace("%%", "%")
    pieces = set()
    for text in english:
        for piece in PLACEHOLDER.split(text.replace("%%", "%")):
            piece = " ".join(piece.split()).strip(" ,;:.()–-“”»«'\"")
            if len(piece.split()) >= 2 and len(piece) >= 10 and piece not in all_danish:
                pieces.add(piece)
    return frozenset(pieces)


VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


class _Shown(HTMLParser):
    """The text a person reads or hears on a page as Danish: not scripts, and not a part marked
    as another language (`lang="en"`, as WCAG 3.1.2 asks of a part in another language)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._open: list[bool] = []  # per open element: is its content hidden from the scan

    def _hidden(self) -> bool:
        return bool(self._open) and self._open[-1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        lang = dict(attrs).get("lang")
        other_language = lang is not None and not lang.startswith("da")
        if not self._hidden() and not other_language:
            self.parts.extend(v for k, v in attrs if k in SPOKEN_ATTRIBUTES and v)
        if tag not in VOID:
            self._open.append(self._hidden() or other_language or tag in ("script", "style"))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if not self._hidden():
            self.parts.append(data)


def shown_text(html: str) -> str:
    parser = _Shown()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def english_on(html: str) -> list[str]:
    text = shown_text(html)
    found = [p for p in PYDANTIC if p in text]
    found += sorted(
        piece for piece in english_pieces() if re.search(rf"(?<!\w){re.escape(piece)}(?!\w)", text)
    )
    return found


def test_the_rule_finds_english_and_leaves_danish_alone() -> None:
    pieces = english_pieces()
    assert len(pieces) > 400
    english = "<p>Please correct the following</p><p title='Skip to content'>x</p>"
    assert english_on(english) == ["Please correct the following", "Skip to content"]
    assert english_on("<p>Field required</p>") == ["Field required"]
    danish = "<main><h1>Afprøvninger</h1><p>Living Design Lab-afprøvninger</p></main>"
    assert english_on(danish) == []
    assert english_on("<script>var s = 'Please correct the following';</script>") == []
    marked = "<p>Fejl: <span lang='en'>Please correct the following</span><br> ok</p>"
    assert english_on(marked) == []
    assert shown_text(marked) == "Fejl: ok"


LINK = re.compile(r'(?:href|hx-get)="(/app/[^"#]*)')
NOT_PAGES = re.compile(r"lang=|\.csv$|/static/|/logout")


def crawl(
    client: httpx.Client, start: str = "/app/", per_kind: int = 3
) -> Iterator[tuple[str, str]]:
    """Every page reachable by links from `start`: at most `per_kind` of each kind
    (/app/participants/3 and /4 are one kind): every page the app has, each of the demo's
    three trials and their reports."""
    kinds: Counter[str] = Counter()
    queue, seen = [start], set()
    while queue:
        path = queue.pop(0)
        kind = re.sub(r"\d+", "N", path.split("?")[0])
        if path in seen or kinds[kind] >= per_kind:
            continue
        seen.add(path)
        kinds[kind] += 1
        page = client.get(path)
        assert page.status_code == 200, (path, page.status_code)
        if not page.headers["content-type"].startswith("text/html"):
            assert page.headers["content-type"] == "application/pdf", path
            continue
        yield path, page.text
        queue.extend(
            link for link in map(unescape, LINK.findall(page.text)) if not NOT_PAGES.search(link)
        )


def test_every_page_and_report_in_danish_holds_no_english(
    web_client: Callable[[], httpx.Client], demo_lab: DemoLab
) -> None:
    visited: dict[str, list[str]] = {}
    for person in (demo_lab.coordinator, demo_lab.evaluator, demo_lab.company):
        client = web_client()
        assert sign_in(client, person).status_code == 303
        for path, html in crawl(client):
            whole = "<html" in html[:200]  # not a fragment htmx swaps into a page
            assert not whole or re.search(r"<html lang=[\"']da[\"']", html), path
            visited[f"{person.role} {path}"] = english_on(html)
        # Refusals are pages too: a page that does not exist, one the role may not see.
        for path, status in (("/app/trials/999999", 404), ("/app/no-such-page", 404)):
            refused = client.get(path)
            assert refused.status_code == status
            visited[f"{person.role} {path}"] = english_on(refused.text)
    company = web_client()
    sign_in(company, demo_lab.company)
    forbidden = company.get("/app/companies")
    assert forbidden.status_code == 403 and "Virksomheder ser kun deres egne" in forbidden.text
    kinds = {re.sub(r"\d+", "N", key.split("?")[0]) for key in visited}
    # Every page of the app: start, trials and their reports, people, places, devices, admin.
    for expected in (
        "/app/trials/N/report", "/app/trials/N/time-motion", "/app/participants/N",
        "/app/devices/bed-kb-N", "/app/sites/N", "/app/api-keys", "/app/users", "/app/audit",
        "/app/dead-letters", "/app/trials/new", "/app/trials/N/plan", "/app/trials/N/data",
        "/app/companies", "/app/devices",
    ):  # fmt: skip
        assert any(k.endswith(expected) for k in kinds), expected
    assert len(visited) > 40
    assert {page: found for page, found in visited.items() if found} == {}


def test_notes_and_refusal_reasons_are_danish_and_english_in_english(
    web_client: Callable[[], httpx.Client], demo_lab: DemoLab
) -> None:
    client = web_client()
    sign_in(client, demo_lab.coordinator)
    waiting = demo_lab.trials[
        2
    ]  # compression stockings: baseline only, nothing with the technology
    danish = client.get(f"/app/trials/{waiting}").text
    assert "0 tidsobservationer med teknologien" in danish
    english = client.get(f"/app/trials/{waiting}", params={"lang": "en"}).text
    assert "with technology has 0 observation(s)" in english
    report = client.get(f"/app/trials/{waiting}/report", params={"lang": "da"}).text
    assert english_on(report) == []
    # A refused message: its reason in words; the worker's diagnosis marked as English.
    refused = client.get("/app/dead-letters", params={"lang": "da"}).text
    assert "følger ikke skemaet for beskeder" in refused
    assert '<td lang="en">ts: an RFC 3339 timestamp needs an offset' in refused
    # The built-in device types are the interface's words; a lab's own types keep their name.
    assert "Sensorseng" in client.get(f"/app/devices/{demo_lab.device}", params={"lang": "da"}).text


# ------------------------------------------------------------------------- form errors
def _post(client: httpx.Client, page: str, action: str, data: dict[str, Any]) -> httpx.Response:
    token = form_token(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **data})


def test_every_forms_errors_are_in_danish_words_a_coordinator_understands(
    web_client: Callable[[], httpx.Client], demo_lab: DemoLab
) -> None:
    client = web_client()
    sign_in(client, demo_lab.coordinator)
    trial, waiting = demo_lab.trials[0], demo_lab.trials[2]
    site, participant = demo_lab.sites[0], demo_lab.participants[0]
    at = "2026-01-05T10:00"
    now = datetime.now(TIMEZONE).strftime("%Y-%m-%dT%H:%M")
    cases: list[tuple[str, str, dict[str, Any], list[str]]] = [
        ("/app/companies", "/app/companies",
         {"name": "Test ApS", "cvr": "1234", "contact_email": "hvem"},
         ["CVR-nummeret skal være 8 cifre.", "Skriv en e-mailadresse, fx navn@kolding.dk."]),
        ("/app/companies", "/app/companies", {"cvr": "12345678"}, ["Udfyld feltet."]),
        ("/app/sites", "/app/sites", {"address": "Vej 1"}, ["Udfyld feltet."]),
        (f"/app/sites/{site}", f"/app/sites/{site}/units", {}, ["Udfyld feltet."]),
        ("/app/trials/new", "/app/trials",
         {"company_id": demo_lab.company_id, "title": "T", "product": "P",
          "collaboration_form": "opi", "staff_hourly_cost": "385,50"},
         ["Skriv et tal med punktum før decimalerne, fx 12.5."]),
        ("/app/trials/new", "/app/trials",
         {"company_id": demo_lab.company_id, "title": "T", "product": "P",
          "collaboration_form": "opi", "baseline_from": "2026-02-10",
          "baseline_until": "2026-02-01"},
         ["Baselineperioden skal slutte efter, at den begynder."]),
        (f"/app/trials/{trial}/plan", f"/app/trials/{trial}/plan",
         {"title": "T", "product": "P", "collaboration_form": "opi", "currency": "kroner"},
         ["Skriv valutaen som tre store bogstaver, fx DKK."]),
        (f"/app/trials/{trial}", f"/app/trials/{trial}/participants",
         {"pseudonym": "Anna Jensen", "site_id": site}, ["Ligner et personnavn"]),
        (f"/app/trials/{trial}", f"/app/trials/{trial}/participants",
         {"pseudonym": "010180-1234", "site_id": site}, ["Ligner et CPR-nummer"]),
        (f"/app/trials/{trial}", f"/app/trials/{trial}/participants",
         {"pseudonym": "P-900", "site_id": demo_lab.sites[1]}, ["er ikke med i afprøvning"]),
        (f"/app/trials/{trial}", f"/app/trials/{trial}/transitions", {"to": "concluded"},
         ["For at afslutte skal der vælges en beslutning"]),
        (f"/app/trials/{trial}", f"/app/trials/{trial}/transitions", {"to": "draft"},
         ["kan ikke gå fra »i gang« til »kladde«"]),
        (f"/app/trials/{trial}", f"/app/trials/{trial}/costs",
         {"category": "devices", "amount": "-5"}, ["Skriv et tal på mindst 0."]),
        (f"/app/trials/{trial}", f"/app/trials/{trial}/criteria",
         {"metric": "time_saved_pct", "target": "30"}, ["Vælg en aktivitet for de mål"]),
        (f"/app/trials/{trial}", f"/app/trials/{trial}/criteria",
         {"metric": "payback_months"}, ["Udfyld feltet."]),
        (f"/app/trials/{trial}", f"/app/trials/{trial}/surveys",
         {"form": "staff", "respondent": "staff", "phase": "baseline",
          "answered_on": "2026-01-10", "answer_recommend": "6"},
         ["Skriv et tal på højst 5."]),
        (f"/app/trials/{trial}/time-motion", f"/app/trials/{trial}/activities",
         {"name": "Bad", "event_type": "bad type!"},
         ["Brug kun bogstaver (uden æ, ø, å), cifre"]),
        (f"/app/trials/{trial}/time-motion", f"/app/trials/{trial}/observations",
         {"activity_id": demo_lab.activity, "phase": "baseline", "staff_role": "SSA",
          "observed_at": at, "duration_minutes": ["-3", "fire"]},
         ["Skriv et tal større end 0.", "Skriv et tal med punktum før decimalerne"]),
        (f"/app/participants/{participant}", f"/app/participants/{participant}/consents",
         {"given_by": "proxy", "evidence_ref": "DOC-1", "valid_from": at,
          "scopes": "telemetry"},
         ["Skriv stedfortræderens relation til deltageren"]),
        (f"/app/participants/{participant}", f"/app/participants/{participant}/consents",
         {"given_by": "participant", "valid_from": at}, ["Udfyld feltet."]),
        (f"/app/participants/{demo_lab.no_consent}", f"/app/participants/{demo_lab.no_consent}/withdrawal",
         {"at": at, "mode": "keep"}, ["har intet gældende samtykke at tilbagekalde"]),
        (f"/app/participants/{participant}", f"/app/participants/{participant}/withdrawal",
         {"mode": "keep"}, ["Udfyld feltet."]),
        ("/app/devices", "/app/devices",
         {"id": "seng 1", "device_type": "sensor_bed", "company_id": demo_lab.company_id},
         ["Brug kun bogstaver (uden æ, ø, å), cifre"]),
        (f"/app/devices/{demo_lab.device}", f"/app/devices/{demo_lab.device}/deployments",
         {"trial_id": trial, "valid_from": at}, ["Vælg et plejecenter (evt. en afdeling)"]),
        (f"/app/devices/{demo_lab.device}", f"/app/devices/{demo_lab.device}/deployments",
         {"trial_id": trial, "place": f"site:{site}", "valid_from": now},
         ["er allerede udrullet i det tidsrum"]),
        ("/app/api-keys", "/app/api-keys", {"name": "Nøgle", "role": "company"},
         ["Vælg en virksomhed for rollen virksomhed"]),
        ("/app/users", "/app/users",
         {"email": "hvem", "role": "coordinator", "password": "kort"},
         ["Skriv en e-mailadresse, fx navn@kolding.dk.", "Skriv mindst"]),
        ("/app/users", "/app/users",
         {"email": demo_lab.coordinator.email, "role": "coordinator", "password": "x" * 20},
         ["Der findes allerede en konto for koordinator@kolding.dk."]),
    ]  # fmt: skip
    assert waiting != trial
    for page, action, data, expected in cases:
        answer = _post(client, page, action, data)
        assert answer.status_code in (409, 422), (action, data, answer.status_code)
        shown = shown_text(answer.text)
        for words in expected:
            assert words in shown, (action, data, words, re.findall(r"Fejl: [^.]*\.", shown))
        assert english_on(answer.text) == [], (action, data)


def test_english_readers_get_the_same_errors_in_english(
    web_client: Callable[[], httpx.Client], demo_lab: DemoLab
) -> None:
    client = web_client()
    sign_in(client, demo_lab.coordinator)
    client.get("/app/?lang=en")
    answer = _post(client, "/app/companies", "/app/companies", {"name": "T", "cvr": "1234"})
    assert "The CVR number must be 8 digits." in answer.text
    answer = _post(
        client,
        f"/app/trials/{demo_lab.trials[0]}",
        f"/app/trials/{demo_lab.trials[0]}/participants",
        {"pseudonym": "Anna Jensen", "site_id": demo_lab.sites[0]},
    )
    assert "looks like a person&#39;s name; use a pseudonym such as &#39;P-017&#39;" in answer.text
