from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from tests.trials.lab import Lab
from trials.consent import Scope
from trials.repository import consent_active_at

T1 = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
T2 = datetime.fromisoformat("2026-02-01T00:00:00+00:00")
T3 = datetime.fromisoformat("2026-03-01T00:00:00+00:00")
TICK = timedelta(microseconds=1)


def _enrolled(lab: Lab) -> int:
    return int(lab.participant(lab.trial()["id"])["id"])


def test_a_new_version_supersedes_the_active_one_and_history_is_kept(lab: Lab) -> None:
    pid = _enrolled(lab)
    lab.consent(pid, scopes=["telemetry", "evaluation"], valid_from=T1.isoformat())
    second = lab.consent(
        pid,
        scopes=["telemetry"],
        given_by="proxy",
        proxy_relation="daughter",
        evidence_ref="DOC-2",
        valid_from=T2.isoformat(),
    )
    assert (second["version"], second["given_by"], second["proxy_relation"]) == (
        2,
        "proxy",
        "daughter",
    )
    history = lab.get(f"/participants/{pid}/consents").json()
    assert [(c["version"], c["ended_by"]) for c in history] == [(1, "superseded"), (2, None)]
    assert datetime.fromisoformat(history[0]["valid_until"]) == T2


def test_the_at_time_question_at_its_boundaries(lab: Lab, conn: psycopg.Connection) -> None:
    pid = _enrolled(lab)
    lab.consent(pid, scopes=["telemetry", "evaluation"], valid_from=T1.isoformat())
    lab.consent(pid, scopes=["telemetry"], valid_from=T2.isoformat())
    withdrawal = lab.post(
        f"/participants/{pid}/consent-withdrawal", {"at": T3.isoformat(), "mode": "keep"}
    )
    assert withdrawal["erased_rows"] == {"telemetry_readings": 0, "telemetry_events": 0}

    def active(scope: Scope, at: datetime) -> bool:
        return consent_active_at(conn, pid, scope, at)

    assert not active(Scope.TELEMETRY, T1 - TICK)
    assert active(Scope.TELEMETRY, T1), "valid_from is inclusive"
    assert active(Scope.EVALUATION, T2 - TICK)
    assert not active(Scope.EVALUATION, T2), "version 1 ends where version 2 starts"
    assert active(Scope.TELEMETRY, T2)
    assert active(Scope.TELEMETRY, T3 - TICK)
    assert not active(Scope.TELEMETRY, T3), "valid_until is exclusive"
    assert not active(Scope.COMPANY_DASHBOARDS, T2)

    answer = lab.get(
        f"/participants/{pid}/consent-check", scope="telemetry", at=T3.isoformat()
    ).json()
    assert answer["active"] is False
    answer = lab.get(
        f"/participants/{pid}/consent-check", scope="telemetry", at=(T3 - TICK).isoformat()
    ).json()
    assert answer["active"] is True


def test_a_proxy_must_name_the_relation_and_only_a_proxy(lab: Lab) -> None:
    pid = _enrolled(lab)
    base = {"scopes": ["telemetry"], "evidence_ref": "DOC-1", "valid_from": T1.isoformat()}
    no_relation = lab.http.post(
        f"/participants/{pid}/consents", json={**base, "given_by": "proxy"}, headers=lab.coordinator
    )
    assert no_relation.status_code == 422
    stray_relation = lab.http.post(
        f"/participants/{pid}/consents",
        json={**base, "given_by": "participant", "proxy_relation": "son"},
        headers=lab.coordinator,
    )
    assert stray_relation.status_code == 422


def test_versions_never_overlap_or_go_back_in_time(lab: Lab) -> None:
    pid = _enrolled(lab)
    lab.consent(pid, valid_from=T2.isoformat())
    earlier = lab.http.post(
        f"/participants/{pid}/consents",
        json={
            "scopes": ["telemetry"],
            "given_by": "participant",
            "evidence_ref": "DOC-0",
            "valid_from": T1.isoformat(),
        },
        headers=lab.coordinator,
    )
    assert earlier.status_code == 409
    lab.post(f"/participants/{pid}/consent-withdrawal", {"at": T3.isoformat(), "mode": "keep"})
    again = lab.http.post(
        f"/participants/{pid}/consent-withdrawal",
        json={"at": T3.isoformat(), "mode": "keep"},
        headers=lab.coordinator,
    )
    assert again.status_code == 409, "nothing active to withdraw"
    renewed = lab.consent(pid, valid_from=T3.isoformat(), evidence_ref="DOC-3")
    assert renewed["version"] == 2, "consent may be given again from the withdrawal on"


def test_a_naive_valid_from_is_refused(lab: Lab) -> None:
    pid = _enrolled(lab)
    response = lab.http.post(
        f"/participants/{pid}/consents",
        json={
            "scopes": ["telemetry"],
            "given_by": "participant",
            "evidence_ref": "DOC-1",
            "valid_from": "2026-01-01T00:00:00",
        },
        headers=lab.coordinator,
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "body.valid_from"
