"""Time-motion sessions, exports, API keys, the audit log and dead letters, through the web app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from access.schemas import Role
from tests.web.conftest import Person, add_person, form_token, sign_in


def _observations(db_url: str, trial_id: int) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM observations WHERE trial_id = %s", (trial_id,)
        ).fetchone()[0]


def test_an_observation_session_is_one_form_and_stored_whole_or_not_at_all(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any, db_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    page = client.get(f"/app/trials/{seeded.trial_id}/time-motion")
    assert page.status_code == 200 and "Night check" in page.text
    before = _observations(db_url, seeded.trial_id)
    activity = page.text.split('<option value="', 1)[1].split('"', 1)[0]
    session = {
        "csrf_token": form_token(page.text),
        "activity_id": activity,
        "phase": "baseline",
        "staff_role": "SOSU-assistent",
        "observed_at": "2025-02-10T02:15",
    }
    bad = client.post(
        f"/app/trials/{seeded.trial_id}/observations",
        data={**session, "duration_minutes": ["6.5", "-3", "7"]},
    )
    assert bad.status_code == 422
    assert 'id="duration_minutes-1-error"' in bad.text and 'value="-3"' in bad.text
    assert _observations(db_url, seeded.trial_id) == before
    good = client.post(
        f"/app/trials/{seeded.trial_id}/observations",
        data={**session, "duration_minutes": ["6.5", "8", "7", "", ""]},
    )
    assert good.status_code == 303
    assert _observations(db_url, seeded.trial_id) == before + 3


def test_an_evaluator_exports_pseudonymised_csv_and_the_export_is_audited(
    web_client: Callable[[], httpx.Client], seeded: Any, db_url: str
) -> None:
    evaluator = add_person(db_url, Person("forsker@sdu.dk", Role.EVALUATOR))
    client = web_client()
    sign_in(client, evaluator)
    page = client.get(f"/app/trials/{seeded.trial_id}")
    assert "P-001" not in page.text and "readings.csv" in page.text
    assert client.get(f"/app/participants/{seeded.participant}").status_code == 403
    exported = client.get(f"/app/trials/{seeded.trial_id}/exports/readings.csv")
    assert exported.status_code == 200 and exported.text.count("\n") == 9  # header + 8 rows
    assert "P-001" not in exported.text
    with psycopg.connect(db_url) as conn:
        actors = conn.execute("SELECT actor FROM audit_log WHERE action LIKE 'export%'").fetchall()
    assert actors == [(f"user:{_user_id(db_url, evaluator.email)}:{evaluator.email}",)]


def _user_id(db_url: str, email: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT id FROM user_accounts WHERE email = %s", (email,)).fetchone()[0]


def test_api_keys_are_shown_once_work_and_revoke_and_the_audit_log_filters(
    web_client: Callable[[], httpx.Client], coordinator: Person, api_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    page = client.get("/app/api-keys")
    made = client.post(
        "/app/api-keys",
        data={"csrf_token": form_token(page.text), "name": "script", "role": "evaluator"},
    )
    key = made.text.split('data-testid="new-key">', 1)[1].split("<", 1)[0]
    assert httpx.get(f"{api_url}/trials", headers={"Authorization": f"Bearer {key}"}).is_success
    assert key not in client.get("/app/api-keys").text  # shown once
    key_id = made.text.split("/app/api-keys/", 1)[1].split("/", 1)[0]
    client.post(f"/app/api-keys/{key_id}/revoke", data={"csrf_token": form_token(page.text)})
    assert (
        httpx.get(f"{api_url}/trials", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )

    audit = client.get("/app/audit", params={"action": "api_key.revoke"})
    assert audit.status_code == 200 and "api_key.revoke" in audit.text
    assert "api_key.create" not in audit.text
    assert client.get("/app/audit", params={"since": "yesterday"}).status_code == 200
    assert client.get("/app/dead-letters").status_code == 200


def test_a_deployed_device_is_moved_and_its_history_kept(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any, db_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    page = client.get(f"/app/devices/{seeded.bed_device}")
    assert 'value="move"' in page.text
    moved = client.post(
        f"/app/devices/{seeded.bed_device}/deployments",
        data={
            "csrf_token": form_token(page.text),
            "trial_id": str(seeded.trial_id),
            "place": f"unit:{seeded.site_id}:{seeded.unit_ids[1]}",
            "valid_from": "2025-03-05T12:00",
            "action": "move",
        },
    )
    assert moved.status_code == 303, moved.text
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT participant_id, unit_id, upper(valid_during) IS NULL FROM deployments"
            " WHERE device_id = %s ORDER BY lower(valid_during)",
            (seeded.bed_device,),
        ).fetchall()
    assert rows == [(seeded.participant, None, False), (None, seeded.unit_ids[1], True)]


def test_the_plan_is_changed_with_the_same_rules_and_an_emptied_period_is_cleared(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any, db_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    page = client.get(f"/app/trials/{seeded.trial_id}/plan")
    assert 'value="Sensor beds at Birkely"' in page.text and 'value="2025-03-01"' in page.text
    plan = {
        "csrf_token": form_token(page.text),
        "title": "Sensor beds at Birkely, phase 2",
        "product": "SleepWell",
        "collaboration_form": "opi",
        "site_ids": [str(seeded.site_id)],
        "unit_ids": [str(u) for u in seeded.unit_ids],
        "trial_from": "2025-03-01",
        "staff_hourly_cost": "300.00",
        "currency": "DKK",
    }
    backwards = client.post(
        f"/app/trials/{seeded.trial_id}/plan",
        data={**plan, "baseline_from": "2025-02-10", "baseline_until": "2025-02-01"},
    )
    assert backwards.status_code == 422
    assert "Baselineperioden skal slutte efter, at den begynder" in backwards.text
    saved = client.post(f"/app/trials/{seeded.trial_id}/plan", data=plan)
    assert saved.status_code == 303
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT title, collaboration_form, trial_until, baseline_from FROM trials WHERE id = %s",
            (seeded.trial_id,),
        ).fetchone()
    assert row == ("Sensor beds at Birkely, phase 2", "opi", None, None)


def test_the_portfolio_sorts_and_a_device_gets_a_new_secret_or_is_revoked(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any, db_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    by_hours = client.get("/app/", params={"sort": "-hours_saved"}).text
    assert by_hours.index("Sensor beds at Birkely") < by_hours.index("Rival trial")
    assert 'aria-sort="descending"' in by_hours
    by_title = client.get("/app/", params={"sort": "title"}).text
    assert by_title.index("Rival trial") < by_title.index("Sensor beds at Birkely")
    assert client.get("/app/", params={"sort": "nonsense"}).status_code == 422

    page = client.get(f"/app/devices/{seeded.bed_device}")
    token = form_token(page.text)
    rotated = client.post(f"/app/devices/{seeded.bed_device}/secret", data={"csrf_token": token})
    assert rotated.status_code == 200 and 'data-testid="device-secret"' in rotated.text
    revoked = client.post(f"/app/devices/{seeded.bed_device}/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    with psycopg.connect(db_url) as conn:
        actions = [
            row[0]
            for row in conn.execute(
                "SELECT action FROM audit_log WHERE entity = 'device' ORDER BY id"
            )
        ]
    assert actions == ["device.rotate_secret", "device.revoke"]
    again = client.post(f"/app/devices/{seeded.bed_device}/secret", data={"csrf_token": token})
    assert again.status_code == 409


def test_a_coordinator_creates_and_disables_a_companys_account(
    web_client: Callable[[], httpx.Client], coordinator: Person, seeded: Any, db_url: str
) -> None:
    client = web_client()
    sign_in(client, coordinator)
    page = client.get("/app/users")
    account = {
        "csrf_token": form_token(page.text),
        "email": "ny@sengeteknik.dk",
        "role": "company",
        "password": "short",
    }
    refused = client.post("/app/users", data=account)
    assert refused.status_code == 422 and 'id="password-error"' in refused.text
    assert "short" not in refused.text.split('id="password"', 1)[1].split(">", 1)[0]
    made = client.post(
        "/app/users",
        data={**account, "password": "long enough now", "company_id": str(seeded.company_a)},
    )
    assert made.status_code == 303
    person = Person("ny@sengeteknik.dk", Role.COMPANY, seeded.company_a, "long enough now")
    company = web_client()
    assert sign_in(company, person).status_code == 303
    assert "Sensor beds at Birkely" in company.get("/app/").text
    with psycopg.connect(db_url) as conn:
        user_id = conn.execute(
            "SELECT id FROM user_accounts WHERE email = %s", (person.email,)
        ).fetchone()[0]
    client.post(f"/app/users/{user_id}/disable", data={"csrf_token": form_token(page.text)})
    assert company.get("/app/").status_code == 303  # the open session ended
    assert sign_in(web_client(), person).status_code == 401
