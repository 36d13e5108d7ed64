"""A company user sees its own trials only, as charts; another company's trial is a 404."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from access.schemas import Role
from tests.web.browser import Browser
from tests.web.conftest import GRAFANA_URL, Person, add_person, form_token, sign_in


def test_a_company_user_sees_only_its_trials_and_their_charts(
    browser: Browser, seeded: Any, db_url: str
) -> None:
    person = add_person(db_url, Person("lab@sengeteknik.dk", Role.COMPANY, seeded.company_a))
    b = browser
    b.sign_in(person.email, person.password)
    assert "Sensor beds at Birkely" in b.text and "Rival trial" not in b.text
    assert not b.all("a[href='/app/companies']")  # no registry for a company

    b.click_link("Sensor beds at Birkely")
    assert len(b.all("figure.chart svg")) == 2  # usage over time and time saved
    assert "Sparede timer indtil nu" in b.text and "95 %-interval" in b.text
    assert "bed-1" in b.text  # device health
    assert b.find(f"a[href='{GRAFANA_URL}']").text == "Åbn i Grafana"
    assert b.find(f"a[href='/app/trials/{seeded.trial_id}/report']")
    assert "P-001" not in b.text and not b.all("#participants, #lifecycle")  # no identities

    b.go(f"/app/trials/{seeded.other_trial_id}")
    assert "findes ikke" in b.text and "Rival trial" not in b.text


def test_another_companys_trial_answers_404_like_the_api(
    web_client: Callable[[], httpx.Client], seeded: Any, db_url: str
) -> None:
    person = add_person(db_url, Person("lab@sengeteknik.dk", Role.COMPANY, seeded.company_a))
    client = web_client()
    sign_in(client, person)
    for path in ("", "/data", "/report", "/report.pdf"):
        mine = client.get(f"/app/trials/{seeded.trial_id}{path}")
        theirs = client.get(f"/app/trials/{seeded.other_trial_id}{path}")
        unknown = client.get(f"/app/trials/999999{path}")
        assert mine.status_code == 200, path
        assert theirs.status_code == unknown.status_code == 404, path
    assert client.get(f"/app/participants/{seeded.participant}").status_code == 403
    home = client.get("/app/")
    forged = client.post(
        f"/app/trials/{seeded.trial_id}/transitions",
        data={"to": "concluded", "csrf_token": form_token(home.text)},
    )
    assert forged.status_code == 403
