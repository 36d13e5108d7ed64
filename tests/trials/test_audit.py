from __future__ import annotations

import psycopg
import pytest

from tests.trials.lab import Lab


def test_consent_changes_are_audited_and_the_log_filters(lab: Lab) -> None:
    trial = lab.trial()
    first = lab.participant(trial["id"], "P-001")["id"]
    second = lab.participant(trial["id"], "P-002")["id"]
    lab.consent(first, valid_from="2026-01-01T00:00:00+00:00")
    lab.consent(first, valid_from="2026-02-01T00:00:00+00:00", evidence_ref="DOC-2")
    lab.consent(second)

    given = lab.get("/audit", action="consent.give").json()
    assert given["total"] == 3
    mine = lab.get("/audit", action="consent.give", entity="participant", entity_id=str(first))
    entries = mine.json()["items"]
    assert len(entries) == 2
    newest = entries[0]  # newest first
    assert newest["before"]["version"] == 1 and newest["before"]["ended_by"] == "superseded"
    assert newest["after"]["version"] == 2
    assert newest["actor"].startswith("key:") and newest["actor_role"] == "coordinator"
    assert (
        lab.get("/audit", action="consent.give", since="2999-01-01T00:00:00Z").json()["total"] == 0
    )
    assert lab.get("/audit", as_=lab.evaluator).status_code == 403


@pytest.mark.parametrize("statement", ["DELETE FROM audit_log", "UPDATE audit_log SET actor = 'x'"])
def test_the_app_role_cannot_rewrite_the_audit_log(
    lab: Lab, conn: psycopg.Connection, statement: str
) -> None:
    lab.consent(lab.participant(lab.trial()["id"])["id"])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)
    conn.rollback()
    count = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'consent.give'").fetchone()
    assert count[0] == 1
