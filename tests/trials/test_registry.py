from __future__ import annotations

from tests.trials.lab import Lab


def test_trials_filter_by_status_company_and_site_and_paginate(lab: Lab) -> None:
    other_site = lab.post("/sites", {"name": "Plejecenter Bakken", "municipality": "Vejle"})["id"]
    first = lab.trial(title="one")
    lab.trial(title="two")
    lab.trial(lab.company_b_id, title="three", site_ids=[other_site], unit_ids=[])
    lab.post(f"/trials/{first['id']}/transitions", {"to": "baseline"})

    def titles(**params: str | int) -> list[str]:
        response = lab.http.get("/trials", params=params, headers=lab.coordinator)
        return [t["title"] for t in response.json()["items"]]

    assert titles(status="baseline") == ["one"]
    assert titles(company_id=lab.company_b_id) == ["three"]
    assert titles(site_id=other_site) == ["three"]
    assert titles(site_id=lab.site_id) == ["one", "two"]
    page = lab.get("/trials", limit=2, offset=1).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)
    assert [t["title"] for t in page["items"]] == ["two", "three"]


def test_a_trial_carries_its_plan(lab: Lab) -> None:
    trial = lab.trial(
        need="night checks wake residents",
        baseline_from="2026-01-05T00:00:00+01:00",
        baseline_until="2026-02-02T00:00:00+01:00",
    )
    assert trial["site_ids"] == [lab.site_id]
    assert trial["unit_ids"] == lab.unit_ids[:1]
    assert trial["staff_hourly_cost"] == "385.00"
    cost = lab.post(f"/trials/{trial['id']}/costs", {"category": "devices", "amount": "48000"})
    assert cost["amount"] == "48000.00"
    costs = lab.get(f"/trials/{trial['id']}/costs").json()
    assert costs["total"] == 1

    patched = lab.http.patch(
        f"/trials/{trial['id']}",
        json={"unit_ids": lab.unit_ids, "baseline_until": "2026-01-01T00:00:00+01:00"},
        headers=lab.coordinator,
    )
    assert patched.status_code == 422, "the stored baseline_from is after the new end"
    patched = lab.http.patch(
        f"/trials/{trial['id']}", json={"unit_ids": lab.unit_ids}, headers=lab.coordinator
    )
    assert patched.status_code == 200 and patched.json()["unit_ids"] == lab.unit_ids


def test_a_unit_must_belong_to_one_of_the_trials_sites(lab: Lab) -> None:
    other_site = lab.post("/sites", {"name": "Plejecenter Bakken", "municipality": "Vejle"})["id"]
    foreign_unit = lab.post(f"/sites/{other_site}/units", {"name": "Øst"})["id"]
    response = lab.http.post(
        "/trials",
        json={
            "company_id": lab.company_a_id,
            "title": "x",
            "product": "y",
            "collaboration_form": "opi",
            "site_ids": [lab.site_id],
            "unit_ids": [foreign_unit],
        },
        headers=lab.coordinator,
    )
    assert response.status_code == 422
    assert f"unit {foreign_unit} belongs to site {other_site}" in response.json()["detail"]


def test_422_lists_every_invalid_field_at_once_and_refuses_naive_times(lab: Lab) -> None:
    response = lab.http.post(
        "/trials",
        json={
            "company_id": 0,
            "title": "",
            "collaboration_form": "franchise",
            "baseline_from": "2026-01-05T00:00:00",
        },
        headers=lab.coordinator,
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation"
    fields = {problem["field"] for problem in body["problems"]}
    assert {
        "body.company_id",
        "body.title",
        "body.product",
        "body.collaboration_form",
        "body.baseline_from",
    } <= fields
    naive = next(p for p in body["problems"] if p["field"] == "body.baseline_from")
    assert "timezone" in naive["message"]


def test_a_duplicate_company_is_a_conflict(lab: Lab) -> None:
    response = lab.http.post(
        "/companies", json={"name": "Sengeteknik A/S"}, headers=lab.coordinator
    )
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


def test_activities_and_observations(lab: Lab) -> None:
    trial = lab.trial()
    activity = lab.post(
        f"/trials/{trial['id']}/activities",
        {"name": "night-time check", "event_type": "night_check_avoided"},
    )
    assert activity["event_type"] == "night_check_avoided"
    for phase, minutes in (("baseline", "6.5"), ("intervention", "2.25")):
        observation = lab.post(
            f"/trials/{trial['id']}/observations",
            {
                "activity_id": activity["id"],
                "phase": phase,
                "duration_minutes": minutes,
                "staff_role": "SOSU-assistent",
                "observed_at": "2026-01-12T02:15:00+01:00",
                "unit_id": lab.unit_ids[0],
            },
        )
        assert observation["site_id"] == lab.site_id, "a unit implies its site"
    listed = lab.get(f"/trials/{trial['id']}/observations", phase="intervention").json()
    assert [o["duration_minutes"] for o in listed["items"]] == ["2.25"]
    other = lab.trial(title="other")
    response = lab.http.post(
        f"/trials/{other['id']}/observations",
        json={
            "activity_id": activity["id"],
            "phase": "baseline",
            "duration_minutes": "1",
            "staff_role": "x",
            "observed_at": "2026-01-12T02:15:00+01:00",
        },
        headers=lab.coordinator,
    )
    assert response.status_code == 422, "an activity of another trial"
