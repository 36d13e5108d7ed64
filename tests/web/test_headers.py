"""The web app's pages carry their policies and come compressed; the PDF does not, and the
streamed CSV export stays whole."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from typing import Any

import httpx

from access.schemas import Role
from api.headers import APP_POLICY, REPORT_POLICY
from tests.web.conftest import Person, add_person, sign_in

MASKED_TOKEN = re.compile(rb'(csrf_token" value="|"X-CSRF-Token": ")[^"]+')
PSEUDONYM = re.compile(r"\b[a-z]_[0-9a-f]{16}\b")


def _raw(client: httpx.Client, path: str) -> tuple[httpx.Headers, bytes]:
    with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as response:
        assert response.status_code == 200, path
        return response.headers, b"".join(response.iter_raw())


def test_pages_carry_the_apps_policy_and_the_report_its_own(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any
) -> None:
    client = web_client()
    login = client.get("/app/login")
    assert login.headers["content-security-policy"] == APP_POLICY
    assert login.headers["x-frame-options"] == "DENY"
    assert login.headers["x-content-type-options"] == "nosniff"
    assert login.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in login.text and " style=" not in login.text
    sign_in(client, coordinator)
    trial = client.get(f"/app/trials/{seeded.trial_id}")
    assert trial.headers["content-security-policy"] == APP_POLICY
    assert " style=" not in trial.text and "<style" not in trial.text  # the charts' SVG too
    assert " onclick=" not in trial.text and " onsubmit=" not in trial.text
    report = client.get(f"/app/trials/{seeded.trial_id}/report")
    assert report.headers["content-security-policy"] == REPORT_POLICY


def test_the_trial_page_is_gzipped_and_decodes_to_the_same_page(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    page = f"/app/trials/{seeded.trial_id}"
    plain = client.get(page, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    headers, raw = _raw(client, page)
    assert headers["content-encoding"] == "gzip"
    assert len(raw) < len(plain.content) / 3
    # the same page but for the CSRF token's mask, which is new on every page
    assert MASKED_TOKEN.sub(rb"\1*", gzip.decompress(raw)) == MASKED_TOKEN.sub(
        rb"\1*", plain.content
    )

    pdf_headers, pdf = _raw(client, f"{page}/report.pdf")
    assert "content-encoding" not in pdf_headers  # compressed inside already
    assert pdf.startswith(b"%PDF")


def test_the_streamed_csv_export_comes_gzipped_and_whole(
    web_client: Callable[[], httpx.Client], seeded: Any, db_url: str
) -> None:
    evaluator = add_person(db_url, Person("forsker@sdu.dk", Role.EVALUATOR))
    client = web_client()
    sign_in(client, evaluator)
    path = f"/app/trials/{seeded.trial_id}/exports/readings.csv"
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    headers, raw = _raw(client, path)
    assert headers["content-type"].startswith("text/csv")
    assert headers["content-encoding"] == "gzip"
    # Each export pseudonymises afresh; everything else is the same.
    unzipped = gzip.decompress(raw).decode()
    assert unzipped.count("\n") == 9  # header + 8 rows
    assert PSEUDONYM.sub("*", unzipped) == PSEUDONYM.sub("*", plain.text)
