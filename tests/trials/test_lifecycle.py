from __future__ import annotations

import pytest

from tests.trials.lab import Lab
from trials.lifecycle import ALLOWED_TRANSITIONS, TrialStatus


def _move(lab: Lab, trial_id: int, to: str, **decision: str) -> tuple[int, dict]:
    response = lab.http.post(
        f"/trials/{trial_id}/transitions", json={"to": to, **decision}, headers=lab.coordinator
    )
    return response.status_code, response.json()


def test_a_trial_walks_from_draft_to_concluded_with_a_decision(lab: Lab) -> None:
    trial = lab.trial()
    assert trial["status"] == "draft"
    for status in ("baseline", "running", "evaluating"):
        code, body = _move(lab, trial["id"], status)
        assert code == 200 and body["status"] == status
    code, body = _move(lab, trial["id"], "concluded", decision="scale", rationale="31 % fewer")
    assert code == 200
    assert (body["status"], body["decision"], body["decision_rationale"]) == (
        "concluded",
        "scale",
        "31 % fewer",
    )
    assert body["decided_at"] is not None

    history = lab.get(f"/trials/{trial['id']}/history").json()
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        (None, "draft"),
        ("draft", "baseline"),
        ("baseline", "running"),
        ("running", "evaluating"),
        ("evaluating", "concluded"),
    ]
    assert all(h["actor"].startswith("key:") for h in history[1:])


def test_an_illegal_transition_is_409_naming_the_allowed_ones(lab: Lab) -> None:
    trial = lab.trial()
    code, body = _move(lab, trial["id"], "running")
    assert code == 409
    assert body["error"] == "conflict"
    assert body["allowed"] == ["baseline"]
    assert "allowed from 'draft': baseline" in body["detail"]


def test_a_finished_trial_allows_no_transition_and_no_edit(lab: Lab) -> None:
    trial = lab.trial()
    _move(lab, trial["id"], "baseline")
    code, body = _move(lab, trial["id"], "stopped", rationale="supplier withdrew")
    assert code == 200 and body["decision"] == "stop"
    code, body = _move(lab, trial["id"], "running")
    assert code == 409 and body["allowed"] == []
    patched = lab.http.patch(
        f"/trials/{trial['id']}", json={"title": "again"}, headers=lab.coordinator
    )
    assert patched.status_code == 409


@pytest.mark.parametrize("active", ["baseline", "running", "evaluating"])
def test_every_active_state_may_stop(active: str) -> None:
    assert TrialStatus.STOPPED in ALLOWED_TRANSITIONS[TrialStatus(active)]


def test_concluding_needs_a_decision_and_a_rationale(lab: Lab) -> None:
    trial = lab.trial()
    for status in ("baseline", "running", "evaluating"):
        _move(lab, trial["id"], status)
    code, body = _move(lab, trial["id"], "concluded")
    assert code == 422 and "decision" in body["problems"][0]["message"]
    code, _ = _move(lab, trial["id"], "baseline", decision="adopt")
    assert code == 422


def test_transitions_are_for_coordinators_only(lab: Lab) -> None:
    trial = lab.trial()
    response = lab.http.post(
        f"/trials/{trial['id']}/transitions", json={"to": "baseline"}, headers=lab.evaluator
    )
    assert response.status_code == 403
