"""Success criteria and MAST surveys in the web app: coordinators set them, everyone sees verdicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from access.schemas import Role
from infra.db import connection
from tests.web.browser import Browser
from tests.web.conftest import Person, add_criterion, add_person, form_token, sign_in


def _night_check(db_url: str, trial_id: int) -> int:
    with connection(db_url) as conn:
        found = conn.execute(
            "SELECT id FROM activities WHERE trial_id = %s AND name = 'Night check'", (trial_id,)
        ).fetchone()
    assert found
    return int(found[0])


def test_a_coordinator_adds_a_criterion_and_sees_its_verdict(
    browser: Browser, coordinator: Person, seeded: Any
) -> None:
    b = browser
    b.sign_in(coordinator.email, coordinator.password)
    b.go(f"/app/trials/{seeded.trial_id}")
    assert "Endnu ingen målbare succeskriterier" in b.find("#criteria").text
    # Time saved names its activity: left out, the model's rule is shown in place.
    b.choose("#criterion_metric", value="time_saved_pct")
    b.fill("#criterion_target", "30")
    b.submit("#criterion-form button[type=submit]")
    assert (
        "Vælg en aktivitet for de mål, der tælles pr. aktivitet"
        in b.find("#criterion_activity_id-error").text
    )
    b.choose("#criterion_activity_id", text="Night check")
    b.submit("#criterion-form button[type=submit]")
    row = b.find("#criteria tbody tr").text
    # Night check: 12 → 6 minutes, 50 % less (95 % interval 30.75 % to 69.25 %): met.
    assert "Tid sparet pr. gang: Night check" in row and "≥ 30 %" in row
    assert (
        "50,0 %" in row
        and "30,8 til 69,2" in row
        and "12,0 → 6,0 min. pr. gang (n = 5 og 5)" in row
    )
    assert b.find("#criteria .verdict-met").text == "✓ opfyldt"
    assert "1 af 1 opfyldt" in b.find("#criteria").text
    b.go("/app/")
    b.click_link("1 af 1 opfyldt")  # the portfolio's tally leads to the trial's criteria
    assert b.path == f"/app/trials/{seeded.trial_id}#criteria"


def test_a_company_user_sees_the_verdicts_and_caveats_but_no_forms(
    browser: Browser, seeded: Any, db_url: str
) -> None:
    add_criterion(db_url, seeded.trial_id, metric="payback_months", comparison="at_most", target=3)
    add_criterion(db_url, seeded.trial_id, metric="usage_hours_per_day", target=1)
    person = add_person(db_url, Person("lab@sengeteknik.dk", Role.COMPANY, seeded.company_a))
    b = browser
    b.sign_in(person.email, person.password)
    b.go(f"/app/trials/{seeded.trial_id}")
    criteria = b.find("#criteria").text
    assert "Tilbagebetalingstid" in criteria and "ikke opfyldt" in criteria
    assert "Hvor langt tallene rækker" in criteria  # the short span is warned about
    assert not b.all("#criteria form, #surveys form")


def test_criterion_and_survey_forms_validate_and_refuse_like_the_service(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any, db_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    trial = f"/app/trials/{seeded.trial_id}"
    token = form_token(client.get(trial).text)
    bad = client.post(f"{trial}/criteria", data={"csrf_token": token, "metric": "payback_months"})
    assert bad.status_code == 422 and 'id="criterion_target-error"' in bad.text
    assert client.post(f"{trial}/criteria", data={"metric": "payback_months"}).status_code == 403

    survey = {"csrf_token": token, "form": "staff", "respondent": "staff", "phase": "baseline"}
    survey |= {"answered_on": "2026-01-12", "answer_time_for_residents": "2"}
    assert client.post(f"{trial}/surveys", data=survey).status_code == 303
    survey |= {"answer_time_for_residents": "4", "answer_recommend": "5"}
    assert client.post(f"{trial}/surveys", data=survey).status_code == 303
    page = client.get(trial, params={"lang": "en"}).text
    assert "Staff: 2 answers at baseline, 0 with the technology" in page
    assert "<td>I have enough time for the residents.</td>" in page
    assert '<td class="num">2</td><td class="num">3.0</td>' in page  # the median of 2 and 4
    survey["answer_recommend"] = "6"
    refused = client.post(f"{trial}/surveys", data=survey)
    assert refused.status_code == 422 and "Write a number of at most 5." in refused.text

    criterion = add_criterion(db_url, seeded.trial_id, metric="data_completeness_pct", target=95)
    edit = {"csrf_token": token, "metric": "data_completeness_pct", "target": "99"}
    assert client.post(f"{trial}/criteria/{criterion}", data=edit).status_code == 303
    assert "≥ 99 %" in client.get(trial).text
    with connection(db_url) as conn:
        conn.execute("UPDATE trials SET status = 'stopped' WHERE id = %s", (seeded.trial_id,))
    final = client.post(f"{trial}/criteria/{criterion}/delete", data={"csrf_token": token})
    assert final.status_code == 422 and "its success criteria are final" in final.text
    assert "Delete criterion" not in client.get(trial).text


def test_the_activity_must_be_one_of_the_trials_own(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any, db_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    other = f"/app/trials/{seeded.other_trial_id}"
    token = form_token(client.get(other).text)
    sent = {"csrf_token": token, "metric": "time_saved_pct", "target": "30"}
    sent["activity_id"] = str(_night_check(db_url, seeded.trial_id))
    refused = client.post(f"{other}/criteria", data=sent)
    assert refused.status_code == 422 and "hører ikke til afprøvning" in refused.text


def test_an_evaluator_reads_the_verdicts_but_may_not_set_criteria(
    web_client: Callable[[], httpx.Client], seeded: Any, db_url: str
) -> None:
    add_criterion(db_url, seeded.trial_id, metric="data_completeness_pct", target=95)
    evaluator = add_person(db_url, Person("evaluator@vive.dk", Role.EVALUATOR))
    client = web_client()
    sign_in(client, evaluator)
    page = client.get(f"/app/trials/{seeded.trial_id}").text
    assert 'class="verdict verdict-met"' in page and "Datafuldstændighed" in page
    assert '/criteria"' not in page and '/surveys"' not in page  # no forms post there
    sent = {"csrf_token": form_token(page), "metric": "data_completeness_pct", "target": "90"}
    assert client.post(f"/app/trials/{seeded.trial_id}/criteria", data=sent).status_code == 403


def test_a_company_is_told_a_median_is_withheld_not_shown_no_answers(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any, db_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    trial = f"/app/trials/{seeded.trial_id}"
    token = form_token(client.get(trial).text)
    survey = {"csrf_token": token, "form": "staff", "respondent": "staff", "phase": "baseline"}
    for score in ("2", "4"):  # two answers: the company may not see their median
        survey |= {"answered_on": "2026-01-12", "answer_time_for_residents": score}
        assert client.post(f"{trial}/surveys", data=survey).status_code == 303
    company = add_person(db_url, Person("lab@sengeteknik.dk", Role.COMPANY, seeded.company_a))
    theirs = web_client()
    sign_in(theirs, company)
    page = theirs.get(trial).text
    assert '<td class="num">2</td><td class="num">tilbageholdt</td>' in page
    assert "færre end 3 svar vises ikke for virksomheden" in page
    assert '<td class="num">2</td><td class="num">3,0</td>' in client.get(trial).text
