"""The erasure journal: every withdrawal is written outside the database before it is acknowledged,
and re-applied when a restored database lacks it (the restore test itself: tests/ops)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from access.schemas import Role
from evidence import erasure_journal
from evidence.erase import reapply_erasures
from infra.settings import Settings
from tests.conftest import run_ldl
from tests.trials.lab import Lab, build_lab
from tests.trials.test_erase import _count, _telemetry
from trials.schemas import WithdrawalMode

WITHDRAWN_AT = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "backups" / "erasures.jsonl"


@pytest.fixture
def lab(conn: psycopg.Connection, http: httpx.Client) -> Lab:
    return build_lab(conn, http)


@pytest.fixture
def settings(db_url: str, mqtt_url: str, tmp_path: Path, journal: Path) -> Settings:
    journal.parent.mkdir()
    return Settings(
        environment="test",
        database_url=db_url,
        mqtt_url=mqtt_url,
        data_dir=tmp_path,
        erasure_journal=journal,
    )


def _participant_with_data(lab: Lab, conn: psycopg.Connection) -> int:
    trial = lab.trial()
    pid = int(lab.participant(trial["id"])["id"])
    lab.consent(pid)
    _telemetry(conn, trial["id"], lab.site_id, pid, "bed-1", 3)
    return pid


def _actions(conn: psycopg.Connection, pid: int) -> list[str]:
    rows = conn.execute(
        "SELECT action FROM audit_log WHERE entity = 'participant' AND entity_id = %s ORDER BY id",
        (str(pid),),
    ).fetchall()
    conn.commit()
    return [row[0] for row in rows]


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_a_withdrawal_is_in_the_journal_when_it_is_acknowledged(
    lab: Lab, conn: psycopg.Connection, journal: Path
) -> None:
    pid = _participant_with_data(lab, conn)
    lab.post(
        f"/participants/{pid}/consent-withdrawal",
        {"at": WITHDRAWN_AT.isoformat(), "mode": "erase"},
    )
    (entry,) = erasure_journal.read_entries(journal)
    assert (entry.participant_id, entry.mode, entry.at) == (pid, WithdrawalMode.ERASE, WITHDRAWN_AT)
    assert entry.actor.startswith("key:")
    # The database holds it, so a re-apply finds nothing to do and audits nothing.
    assert reapply_erasures(conn, journal) == []
    conn.commit()
    assert "erasure.reapply" not in _actions(conn, pid)


def test_a_journal_that_cannot_be_written_refuses_the_withdrawal_and_changes_nothing(
    lab: Lab, conn: psycopg.Connection, journal: Path
) -> None:
    pid = _participant_with_data(lab, conn)
    journal.mkdir()  # the file cannot be opened for appending
    response = lab.http.post(
        f"/participants/{pid}/consent-withdrawal",
        json={"at": WITHDRAWN_AT.isoformat(), "mode": "erase"},
        headers=lab.coordinator,
    )
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "erasure_journal_unavailable"
    assert "LDL_ERASURE_JOURNAL" in response.json()["detail"]
    assert _count(conn, "telemetry_readings", pid) == 3
    consents = lab.get(f"/participants/{pid}/consents").json()
    assert [c["valid_until"] for c in consents] == [None]


def test_reapply_withdraws_again_what_a_restore_brought_back_and_audits_it(
    lab: Lab, conn: psycopg.Connection, journal: Path, db_url: str
) -> None:
    pid = _participant_with_data(lab, conn)
    # As after a restore to before the erase: the journal has it, the database does not.
    erasure_journal.append(
        journal, erasure_journal.new_entry(pid, WITHDRAWN_AT, WithdrawalMode.ERASE, "key:1:x")
    )
    assert _count(conn, "telemetry_readings", pid) == 3

    result = run_ldl(
        "erasures", "reapply", LDL_DATABASE_URL=db_url, LDL_ERASURE_JOURNAL=str(journal)
    )

    assert result.returncode == 0, result.stderr
    assert f"re-applied withdrawal (erase) of participant {pid}" in result.stdout
    assert "1 withdrawal(s) re-applied" in result.stdout
    assert _count(conn, "telemetry_readings", pid) == 0
    assert _count(conn, "telemetry_events", pid) == 0
    assert _actions(conn, pid)[-3:] == ["consent.withdraw", "participant.erase", "erasure.reapply"]
    row = conn.execute(
        "SELECT actor, after FROM audit_log WHERE action = 'erasure.reapply'"
    ).fetchone()
    assert row is not None and row[0] == "erasure-journal"
    assert row[1]["journal_entry"]["participant_id"] == pid
    assert row[1]["erased_rows"]["telemetry_readings"] == 3
    conn.commit()

    again = run_ldl(
        "erasures", "reapply", LDL_DATABASE_URL=db_url, LDL_ERASURE_JOURNAL=str(journal)
    )
    assert again.returncode == 0 and "0 withdrawal(s) re-applied" in again.stdout


def test_an_erase_whose_consent_the_restore_lost_still_erases_what_came_before(
    lab: Lab, conn: psycopg.Connection, journal: Path
) -> None:
    pid = _participant_with_data(lab, conn)  # consent from 2026-01-01, readings on 2026-01-10
    # Journaled: a withdrawal that kept the data, a new consent (lost with the restore, so not in
    # the journal's concern), then its withdrawal with erase. Restored to before all three.
    for at, mode in ((datetime(2026, 2, 1, tzinfo=UTC), WithdrawalMode.KEEP),
                     (WITHDRAWN_AT, WithdrawalMode.ERASE)):  # fmt: skip
        erasure_journal.append(journal, erasure_journal.new_entry(pid, at, mode, "key:1:x"))

    reapplied = reapply_erasures(conn, journal)
    conn.commit()

    assert [entry.mode for entry in reapplied] == [WithdrawalMode.KEEP, WithdrawalMode.ERASE]
    assert _count(conn, "telemetry_readings", pid) == 0
    assert _actions(conn, pid).count("erasure.reapply") == 2
    assert reapply_erasures(conn, journal) == []
    conn.commit()
    assert _actions(conn, pid).count("erasure.reapply") == 2


def test_a_torn_last_line_is_skipped_and_a_bad_line_before_it_is_named(journal: Path) -> None:
    journal.parent.mkdir()
    entry = erasure_journal.new_entry(7, WITHDRAWN_AT, WithdrawalMode.KEEP, "cli")
    erasure_journal.append(journal, entry)
    with journal.open("a") as torn:
        torn.write('{"id": "abc", "particip')  # a crash mid-append: never acknowledged
    assert erasure_journal.read_entries(journal) == [entry]
    journal.write_text("not json\n" + entry.model_dump_json() + "\n")
    with pytest.raises(erasure_journal.ConfigError, match="line 1 is not an entry"):
        erasure_journal.read_entries(journal)


def test_the_journal_commands_refuse_a_missing_or_unusable_journal_in_one_line(
    db_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "erasures.jsonl"
    result = run_ldl("erasures", "reapply", LDL_DATABASE_URL=db_url)
    assert result.returncode == 2
    assert _one_line(result.stderr) == (
        "ldl: LDL_ERASURE_JOURNAL is not set (the journal kept next to the backups)"
    )
    for path, says in (
        (missing, "does not exist; after a restore, put back the journal"),
        (tmp_path, "is a directory"),
    ):
        result = run_ldl(
            "erasures", "reapply", LDL_DATABASE_URL=db_url, LDL_ERASURE_JOURNAL=str(path)
        )
        assert result.returncode == 2
        assert says in _one_line(result.stderr)
    # A migrated (so possibly restored) database never starts a new journal: nothing changes.
    result = run_ldl("migrate", LDL_DATABASE_URL=db_url, LDL_ERASURE_JOURNAL=str(missing))
    assert result.returncode == 2
    assert _one_line(result.stderr).startswith(f"ldl: LDL_ERASURE_JOURNAL: {missing} does not")
    assert not missing.parent.exists()
    # `ldl api` checks it can append before it serves.
    result = run_ldl(
        "api", "--port", "1", LDL_DATABASE_URL=db_url, LDL_ERASURE_JOURNAL=str(missing)
    )
    assert result.returncode == 2
    assert _one_line(result.stderr) == (
        f"ldl: LDL_ERASURE_JOURNAL: the directory {missing.parent} does not exist"
    )


def test_migrate_starts_the_journal_of_a_new_database(pg_admin_url: str, tmp_path: Path) -> None:
    from tests.conftest import create_database, drop_database

    name = f"ldl_test_new_{os.getpid()}"
    url = create_database(pg_admin_url, name)
    journal = tmp_path / "erasures.jsonl"
    try:
        result = run_ldl(
            "migrate", LDL_DATABASE_URL=url, LDL_ERASURE_JOURNAL=str(journal), LDL_TIMESCALE="off"
        )
        assert result.returncode == 0, result.stderr
        assert journal.exists() and journal.read_text() == ""
        assert "0 withdrawal(s) re-applied" in result.stdout
    finally:
        drop_database(pg_admin_url, name)


def test_entries_are_json_lines(journal: Path) -> None:
    journal.parent.mkdir()
    erasure_journal.append(
        journal, erasure_journal.new_entry(3, WITHDRAWN_AT, WithdrawalMode.ERASE, "cli")
    )
    line = json.loads(journal.read_text().splitlines()[0])
    assert line["participant_id"] == 3 and line["mode"] == "erase"


def test_a_withdrawal_from_the_web_app_is_journaled_too(
    lab: Lab, conn: psycopg.Connection, journal: Path, db_url: str, http: httpx.Client
) -> None:
    from tests.web.conftest import Person, add_person, form_token, sign_in

    pid = _participant_with_data(lab, conn)
    sign_in(http, add_person(db_url, Person("koordinator@kolding.dk", Role.COORDINATOR)))
    page = http.get(f"/app/participants/{pid}")
    response = http.post(
        f"/app/participants/{pid}/withdrawal",
        data={"at": "2026-03-01T13:00", "mode": "erase", "confirmed": "yes",
              "csrf_token": form_token(page.text)},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    (entry,) = erasure_journal.read_entries(journal)
    assert (entry.participant_id, entry.mode) == (pid, WithdrawalMode.ERASE)
    assert entry.at == WITHDRAWN_AT.replace(hour=12)  # 13:00 in Copenhagen
    assert _count(conn, "telemetry_readings", pid) == 0
