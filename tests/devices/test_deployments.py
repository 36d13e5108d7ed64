"""Deployments: one place at a time (409 on overlap), moves keep history, the at-time answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from devices import repository
from devices.placement import placement_at
from tests.devices.conftest import Lab
from tests.devices.test_registry_api import register

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=30)
T2 = T0 + timedelta(days=60)


@pytest.fixture
def bed(http: httpx.Client, coordinator: dict[str, str], lab: Lab) -> str:
    assert register(http, coordinator, lab, "bed-1").status_code == 201
    return "bed-1"


def deploy(http: httpx.Client, headers: dict[str, str], device: str, **body: object):
    body = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in body.items()
    }
    return http.post(f"/devices/{device}/deployments", json=body, headers=headers)


def test_overlapping_deployments_are_refused_with_409(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab, bed: str
) -> None:
    first = deploy(http, coordinator, bed, trial_id=lab.trial, site_id=lab.site, valid_from=T0)
    assert first.status_code == 201, first.text
    clash = deploy(
        http,
        coordinator,
        bed,
        trial_id=lab.other_trial,
        site_id=lab.site,
        valid_from=T1,
        valid_until=T2,
    )
    assert clash.status_code == 409
    detail = clash.json()["detail"]
    assert f"#{first.json()['id']}" in detail and "already deployed" in detail


def test_back_to_back_deployments_do_not_overlap(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab, bed: str
) -> None:
    common = {"trial_id": lab.trial, "site_id": lab.site}
    assert (
        deploy(http, coordinator, bed, **common, valid_from=T0, valid_until=T1).status_code == 201
    )
    assert deploy(http, coordinator, bed, **common, valid_from=T1).status_code == 201


def test_moving_ends_the_current_deployment_and_keeps_history(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab, bed: str
) -> None:
    first = deploy(
        http,
        coordinator,
        bed,
        trial_id=lab.trial,
        site_id=lab.site,
        unit_id=lab.unit,
        valid_from=T0,
    ).json()
    moved = http.post(
        f"/devices/{bed}/move",
        json={
            "trial_id": lab.trial,
            "participant_id": lab.participant,
            "valid_from": T1.isoformat(),
        },
        headers=coordinator,
    )
    assert moved.status_code == 201, moved.text
    assert moved.json()["ended"]["id"] == first["id"]
    history = http.get(f"/devices/{bed}/deployments", headers=coordinator).json()
    assert [(d["valid_from"], d["valid_until"]) for d in history] == [
        ("2026-11-24T08:00:00Z", "2026-12-24T08:00:00Z"),
        ("2026-12-24T08:00:00Z", None),
    ]
    # The participant's home site and unit fill in when none is given.
    assert (history[1]["site_id"], history[1]["unit_id"]) == (lab.site, lab.unit)


def test_the_at_time_question_at_its_boundaries(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab, bed: str, conn: psycopg.Connection
) -> None:
    common = {"trial_id": lab.trial, "site_id": lab.site}
    deploy(http, coordinator, bed, **common, valid_from=T0, valid_until=T1)
    deploy(http, coordinator, bed, **common, unit_id=lab.unit, valid_from=T1)
    placements = repository.load_placements(conn, bed)
    tick = timedelta(microseconds=1)

    assert placement_at(placements, T0 - tick) is None
    assert placement_at(placements, T0).unit_id is None  # from is inclusive
    assert placement_at(placements, T1 - tick).unit_id is None
    assert placement_at(placements, T1).unit_id == lab.unit  # until is exclusive
    assert placement_at(placements, T2 + timedelta(days=999)).unit_id == lab.unit  # open end
    assert repository.load_placements_for(conn, [bed, "ghost"])["ghost"] == []

    def ask(at: datetime) -> httpx.Response:
        return http.get(
            f"/devices/{bed}/placement", params={"at": at.isoformat()}, headers=coordinator
        )

    assert ask(T0 - tick).status_code == 404
    assert ask(T1).json()["unit_id"] == lab.unit
    assert ask(T1 - tick).json()["unit_id"] is None


def test_bad_deployments_get_4xx_with_clear_messages(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab, bed: str
) -> None:
    backwards = deploy(
        http, coordinator, bed, trial_id=lab.trial, site_id=lab.site, valid_from=T1, valid_until=T0
    )
    assert backwards.status_code == 422
    assert "valid_until must be after valid_from" in backwards.text

    stranger = deploy(
        http,
        coordinator,
        bed,
        trial_id=lab.trial,
        participant_id=lab.other_trial_participant,
        valid_from=T0,
    )
    assert stranger.status_code == 422
    assert f"participant of trial {lab.other_trial}, not of trial {lab.trial}" in stranger.text

    wrong_unit = deploy(
        http,
        coordinator,
        bed,
        trial_id=lab.trial,
        site_id=lab.other_site,
        unit_id=lab.unit,
        valid_from=T0,
    )
    assert wrong_unit.status_code == 422
    assert f"unit {lab.unit} is not a unit of site {lab.other_site}" in wrong_unit.text

    naive = deploy(
        http,
        coordinator,
        bed,
        trial_id=lab.trial,
        site_id=lab.site,
        valid_from="2026-11-24T08:00:00",
    )
    assert naive.status_code == 422
    nowhere = deploy(http, coordinator, bed, trial_id=lab.trial, valid_from=T0)
    assert nowhere.status_code == 422
    ghost = deploy(http, coordinator, "ghost", trial_id=lab.trial, site_id=lab.site, valid_from=T0)
    assert ghost.status_code == 404
    no_trial = deploy(http, coordinator, bed, trial_id=999999, site_id=lab.site, valid_from=T0)
    assert no_trial.status_code == 422 and "trial 999999 does not exist" in no_trial.text


def test_ending_a_deployment_only_inside_its_range(
    http: httpx.Client, coordinator: dict[str, str], lab: Lab, bed: str
) -> None:
    made = deploy(http, coordinator, bed, trial_id=lab.trial, site_id=lab.site, valid_from=T0)
    deployment_id = made.json()["id"]

    def end(at: datetime) -> httpx.Response:
        return http.post(
            f"/deployments/{deployment_id}/end", json={"at": at.isoformat()}, headers=coordinator
        )

    assert end(T0).status_code == 422  # would be empty
    ended = end(T1)
    assert ended.status_code == 200 and ended.json()["valid_until"] == "2026-12-24T08:00:00Z"
    assert end(T2).status_code == 422  # history is not rewritten
