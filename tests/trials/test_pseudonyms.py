from __future__ import annotations

import pytest

from tests.trials.lab import Lab
from trials.pseudonyms import problem_with


@pytest.mark.parametrize(
    "refused",
    [
        "010180-1234",
        "0101801234",
        "P-290200-1234",
        "x3112991234",
        "Anna Jensen",
        "Anna.Jensen",
        "Karl_Erik_Hansen",
        "anna jensen",
        "P 17",
        "ø",
        "a",
    ],
)
def test_cpr_numbers_names_and_bad_shapes_are_refused(refused: str) -> None:
    assert problem_with(refused) is not None


@pytest.mark.parametrize(
    "accepted", ["P-017", "res_42", "KLD.0003", "9999999999", "p017", "Anna", "ABC-DEF"]
)
def test_pseudonyms_pass(accepted: str) -> None:
    assert problem_with(accepted) is None


def test_the_api_refuses_a_cpr_number_with_the_reason(lab: Lab) -> None:
    trial = lab.trial()
    response = lab.http.post(
        f"/trials/{trial['id']}/participants",
        json={"pseudonym": "010180-1234", "site_id": lab.site_id},
        headers=lab.coordinator,
    )
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert problem["field"] == "body.pseudonym"
    assert "CPR" in problem["message"]
    named = lab.http.post(
        f"/trials/{trial['id']}/participants",
        json={"pseudonym": "Anna Jensen", "site_id": lab.site_id},
        headers=lab.coordinator,
    )
    assert named.status_code == 422 and "name" in named.json()["problems"][0]["message"]
