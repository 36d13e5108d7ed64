"""Withdrawal from the UI: erase is confirmed first, then leaves no trace of the participant."""

from __future__ import annotations

from typing import Any

import psycopg

from tests.evidence.seed import refresh
from tests.web.browser import Browser
from tests.web.conftest import Person

ROLLUPS_BY_PARTICIPANT = ("usage_readings_hourly", "usage_events_hourly")


def _rows_of(db_url: str, participant_id: int) -> dict[str, int]:
    with psycopg.connect(db_url) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*) FROM {table} WHERE participant_id = %s", (participant_id,)
            ).fetchone()[0]
            for table in ("telemetry_readings", "telemetry_events", *ROLLUPS_BY_PARTICIPANT)
        }


def test_a_withdrawal_with_erase_from_the_ui_leaves_no_trace(
    browser: Browser, coordinator: Person, seeded: Any, db_url: str
) -> None:
    before = _rows_of(db_url, seeded.participant)
    assert before["telemetry_readings"] == 8 and before["telemetry_events"] == 101
    b = browser
    b.sign_in(coordinator.email, coordinator.password)
    b.go(f"/app/participants/{seeded.participant}")
    b.find("#mode-erase").click()
    b.submit("#withdraw button[type=submit]")
    # Nothing is gone yet: the page says what erase deletes and what it keeps.
    assert "Det kan ikke fortrydes" in b.text and "revisionsloggen" in b.text
    assert _rows_of(db_url, seeded.participant) == before
    b.submit("main form button.danger")
    assert "Samtykke tilbagekaldt" in b.text
    assert b.find("[data-testid=erased-telemetry_readings]").text.endswith(": 8")
    assert b.find("[data-testid=erased-telemetry_events]").text.endswith(": 101")

    with psycopg.connect(db_url, autocommit=True) as conn:
        refresh(conn)  # what the scheduler does next (TimescaleDB re-materialises its aggregates)
        audit = [
            row[0]
            for row in conn.execute(
                "SELECT action FROM audit_log WHERE entity = 'participant' AND entity_id = %s"
                " ORDER BY id",
                (str(seeded.participant),),
            )
        ]
    assert all(n == 0 for n in _rows_of(db_url, seeded.participant).values())
    assert audit[-2:] == ["consent.withdraw", "participant.erase"]
    b.go(f"/app/participants/{seeded.participant}")
    assert "Intet aktivt samtykke" in b.text and "slettet" in b.text


def test_a_pseudonym_that_looks_like_a_name_is_refused_in_place(
    browser: Browser, coordinator: Person, seeded: Any, db_url: str
) -> None:
    b = browser
    b.sign_in(coordinator.email, coordinator.password)
    b.go(f"/app/trials/{seeded.trial_id}")
    b.fill("#participant_pseudonym", "Anna Jensen")
    b.submit("#participants form button[type=submit]")
    field = b.find("#participant_pseudonym")
    assert field.get_attribute("aria-invalid") == "true"
    assert "Ligner et personnavn" in b.find("#participant_pseudonym-error").text
    assert field.get_attribute("value") == "Anna Jensen"  # what was typed stays
