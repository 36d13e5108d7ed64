"""All SQL of the assessment: success criteria, MAST surveys, and the live numbers criteria need."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from evidence.schemas import SuccessCriterion, SurveyResponse
from infra.db import fetch_all, fetch_one
from trials.repository import write_returning

CRITERION_COLUMNS = (
    "id, trial_id, metric, comparison, target, activity_id, description, created_at, updated_at"
)


# ------------------------------------------------------------------------ success criteria
def insert_criterion(
    conn: psycopg.Connection, trial_id: int, values: dict[str, Any]
) -> SuccessCriterion:
    return write_returning(
        conn,
        SuccessCriterion,
        "success criterion",
        "INSERT INTO success_criteria (trial_id, metric, comparison, target, activity_id,"
        " description) VALUES (%(trial_id)s, %(metric)s, %(comparison)s, %(target)s,"
        f" %(activity_id)s, %(description)s) RETURNING {CRITERION_COLUMNS}",
        {**values, "trial_id": trial_id},
    )


def get_criterion(
    conn: psycopg.Connection, trial_id: int, criterion_id: int
) -> SuccessCriterion | None:
    return fetch_one(
        conn,
        SuccessCriterion,
        f"SELECT {CRITERION_COLUMNS} FROM success_criteria"
        " WHERE trial_id = %(trial)s AND id = %(id)s FOR UPDATE",
        {"trial": trial_id, "id": criterion_id},
    )


def list_criteria(conn: psycopg.Connection, trial_ids: list[int]) -> list[SuccessCriterion]:
    return fetch_all(
        conn,
        SuccessCriterion,
        f"SELECT {CRITERION_COLUMNS} FROM success_criteria WHERE trial_id = ANY(%(trials)s)"
        " ORDER BY trial_id, id",
        {"trials": trial_ids},
    )


def update_criterion(
    conn: psycopg.Connection, criterion_id: int, values: dict[str, Any]
) -> SuccessCriterion:
    return write_returning(
        conn,
        SuccessCriterion,
        "success criterion",
        "UPDATE success_criteria SET metric = %(metric)s, comparison = %(comparison)s,"
        " target = %(target)s, activity_id = %(activity_id)s, description = %(description)s,"
        f" updated_at = now() WHERE id = %(id)s RETURNING {CRITERION_COLUMNS}",
        {**values, "id": criterion_id},
    )


def delete_criterion(conn: psycopg.Connection, criterion_id: int) -> None:
    conn.execute("DELETE FROM success_criteria WHERE id = %s", (criterion_id,))


def activity_in_trial(conn: psycopg.Connection, trial_id: int, activity_id: int) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM activities WHERE id = %s AND trial_id = %s)",
        (activity_id, trial_id),
    ).fetchone()
    return bool(row and row[0])


def hours_with_data(conn: psycopg.Connection, trial_id: int, start: datetime, end: datetime) -> int:
    """Clock hours in [start, end) with any reading or event of the trial (every participant)."""
    row = conn.execute(
        "SELECT count(*) FROM usage_trial_hourly WHERE trial_id = %(t)s"
        " AND bucket >= date_trunc('hour', %(start)s::timestamptz) AND bucket < %(end)s"
        " AND readings + events > 0",
        {"t": trial_id, "start": start, "end": end},
    ).fetchone()
    return int(row[0]) if row else 0


def municipalities(conn: psycopg.Connection, trial_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT s.municipality FROM trial_sites ts JOIN sites s ON s.id = ts.site_id"
        " WHERE ts.trial_id = %s ORDER BY 1",
        (trial_id,),
    ).fetchall()
    return [row[0] for row in rows]


# ----------------------------------------------------------------------------- surveys
SURVEY_COLUMNS = "id, trial_id, respondent, phase, answered_on, answers, created_at"


def insert_survey_response(
    conn: psycopg.Connection, trial_id: int, values: dict[str, Any]
) -> SurveyResponse:
    return write_returning(
        conn,
        SurveyResponse,
        "survey response",
        "INSERT INTO survey_responses (trial_id, respondent, phase, answered_on, answers)"
        " VALUES (%(trial_id)s, %(respondent)s, %(phase)s, %(answered_on)s, %(answers)s)"
        f" RETURNING {SURVEY_COLUMNS}",
        {**values, "trial_id": trial_id, "answers": Jsonb(values["answers"])},
    )


class QuestionTally(BaseModel):
    respondent: str
    phase: str
    question: str
    answers: int
    median: Decimal


def survey_tallies(conn: psycopg.Connection, trial_id: int) -> list[QuestionTally]:
    """Per respondent group, phase and question: how many answered, and the median score."""
    return fetch_all(
        conn,
        QuestionTally,
        "SELECT r.respondent, r.phase, a.key AS question, count(*) AS answers,"
        " percentile_cont(0.5) WITHIN GROUP (ORDER BY a.value::numeric)::numeric AS median"
        " FROM survey_responses r, jsonb_each_text(r.answers) a WHERE r.trial_id = %(t)s"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        {"t": trial_id},
    )


def survey_response_counts(conn: psycopg.Connection, trial_id: int) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        "SELECT respondent, phase, count(*) FROM survey_responses WHERE trial_id = %s"
        " GROUP BY 1, 2",
        (trial_id,),
    ).fetchall()
    return {(row[0], row[1]): int(row[2]) for row in rows}
