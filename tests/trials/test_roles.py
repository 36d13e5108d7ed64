from __future__ import annotations

import psycopg
import pytest

from access.schemas import Principal, Role
from infra.errors import NotFound
from tests.trials.lab import Lab
from trials.service import get_trial_for


def test_a_company_sees_its_own_trials_and_gets_404_for_anothers(
    lab: Lab, conn: psycopg.Connection
) -> None:
    own = lab.trial(lab.company_a_id, title="ours")
    foreign = lab.trial(lab.company_b_id, title="theirs")
    lab.post(f"/trials/{foreign['id']}/activities", {"name": "medicine round"})

    assert lab.get(f"/trials/{own['id']}", as_=lab.company_a).status_code == 200
    for path in ("", "/history", "/costs", "/activities"):
        response = lab.get(f"/trials/{foreign['id']}{path}", as_=lab.company_a)
        assert response.status_code == 404, path
    missing = lab.get("/trials/999999", as_=lab.company_a).json()
    hidden = lab.get(f"/trials/{foreign['id']}", as_=lab.company_a).json()
    assert missing["detail"].replace("999999", "N") == hidden["detail"].replace(
        str(foreign["id"]), "N"
    ), "a hidden trial reads exactly like a missing one"

    listed = lab.get("/trials", as_=lab.company_a).json()
    assert [t["title"] for t in listed["items"]] == ["ours"]
    snooping = lab.get("/trials", as_=lab.company_a, company_id=lab.company_b_id).json()
    assert snooping["items"] == []
    companies = lab.get("/companies", as_=lab.company_a).json()["items"]
    assert [c["id"] for c in companies] == [lab.company_a_id]

    principal = Principal(name="a", role=Role.COMPANY, company_id=lab.company_a_id)
    with pytest.raises(NotFound):
        get_trial_for(conn, principal, foreign["id"])
    assert get_trial_for(conn, principal, own["id"]).title == "ours"


def test_evaluators_read_trials_but_never_participants_or_consent(lab: Lab) -> None:
    trial = lab.trial()
    pid = lab.participant(trial["id"])["id"]
    lab.consent(pid)
    activity = lab.post(f"/trials/{trial['id']}/activities", {"name": "night check"})
    assert activity["id"]

    for path in (
        f"/trials/{trial['id']}",
        f"/trials/{trial['id']}/activities",
        f"/trials/{trial['id']}/observations",
        "/trials",
    ):
        assert lab.get(path, as_=lab.evaluator).status_code == 200, path
    for path in (
        f"/trials/{trial['id']}/participants",
        f"/participants/{pid}",
        f"/participants/{pid}/consents",
    ):
        response = lab.get(path, as_=lab.evaluator)
        assert response.status_code == 403, path
        assert "P-017" not in response.text
    check = lab.get(
        f"/participants/{pid}/consent-check",
        as_=lab.evaluator,
        scope="telemetry",
        at="2026-02-01T00:00:00+00:00",
    )
    assert check.status_code == 403
    withdrawal = lab.http.post(
        f"/participants/{pid}/consent-withdrawal",
        json={"at": "2026-03-01T00:00:00+00:00", "mode": "erase"},
        headers=lab.evaluator,
    )
    assert withdrawal.status_code == 403


def test_companies_see_no_participants_and_no_observations(lab: Lab) -> None:
    trial = lab.trial(lab.company_a_id)
    for path in (f"/trials/{trial['id']}/participants", f"/trials/{trial['id']}/observations"):
        assert lab.get(path, as_=lab.company_a).status_code == 403, path


def test_a_missing_or_unknown_key_is_401(lab: Lab) -> None:
    assert lab.http.get("/trials").status_code == 401
    response = lab.http.get("/trials", headers={"Authorization": "Bearer ldl_nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
