"""What comes in and what goes out of the evidence's own records: success criteria and MAST
survey answers (the rest of the evidence is computed: evidence/service.py's models)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from evidence.surveys import unknown_questions
from infra.types import Id, Rule, Text
from trials.schemas import NOT_NULL, Phase

ACTIVITY_FOR_METRIC = Rule(
    "activity_for_metric", "activity_id is required for %(metrics)s, and only for them"
)
UNKNOWN_QUESTIONS = Rule(
    "unknown_questions", "%(respondent)s is not asked %(unknown)s; the questions are %(known)s"
)
ANSWER_YEAR = Rule("implausible_answer_year", "answered_on: year must be between 1900 and 2200")


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


class CriterionMetric(StrEnum):
    """What a success criterion measures (definitions: evidence/criteria.py)."""

    TIME_SAVED_PCT = "time_saved_pct"
    OCCURRENCES_PER_DAY = "occurrences_per_day"
    USAGE_HOURS_PER_DAY = "usage_hours_per_day"
    DATA_COMPLETENESS_PCT = "data_completeness_pct"
    PAYBACK_MONTHS = "payback_months"


PER_ACTIVITY_METRICS = frozenset(
    {CriterionMetric.TIME_SAVED_PCT, CriterionMetric.OCCURRENCES_PER_DAY}
)


class Comparison(StrEnum):
    AT_LEAST = "at_least"
    AT_MOST = "at_most"


Target = Annotated[Decimal, Field(ge=-999_999_999, le=999_999_999, decimal_places=2)]


def activity_problem(metric: CriterionMetric, activity_id: int | None) -> str | None:
    """Per-activity metrics name their activity; the others must not (the rule's params)."""
    if (metric in PER_ACTIVITY_METRICS) != (activity_id is not None):
        return ", ".join(sorted(PER_ACTIVITY_METRICS))
    return None


class SuccessCriterionCreate(BaseModel):
    model_config = _examples(
        {"metric": "time_saved_pct", "comparison": "at_least", "target": "30", "activity_id": 1},
        {"metric": "data_completeness_pct", "comparison": "at_least", "target": "95"},
        {"metric": "payback_months", "comparison": "at_most", "target": "24"},
    )

    metric: CriterionMetric
    comparison: Comparison = Comparison.AT_LEAST
    target: Target
    activity_id: Id | None = Field(None, description="for time_saved_pct and occurrences_per_day")
    description: Text = ""

    @model_validator(mode="after")
    def _activity_iff_per_activity(self) -> SuccessCriterionCreate:
        metrics = activity_problem(self.metric, self.activity_id)
        if metrics:
            raise ACTIVITY_FOR_METRIC.error(metrics=metrics, field="activity_id")
        return self


class SuccessCriterionUpdate(BaseModel):
    """Only the fields sent change; activity_id may be sent as null to clear it."""

    model_config = _examples({"target": "25"}, {"comparison": "at_most", "target": "18"})

    metric: CriterionMetric | None = None
    comparison: Comparison | None = None
    target: Target | None = None
    activity_id: Id | None = None
    description: Text | None = None

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> SuccessCriterionUpdate:
        nulls = sorted(
            n for n in self.model_fields_set - {"activity_id"} if getattr(self, n) is None
        )
        if nulls:
            raise NOT_NULL.error(fields=", ".join(nulls), field=nulls[0])
        return self


class SuccessCriterion(BaseModel):
    id: int
    trial_id: int
    metric: CriterionMetric
    comparison: Comparison
    target: Decimal
    activity_id: int | None
    description: str
    created_at: datetime
    updated_at: datetime


class Respondent(StrEnum):
    STAFF = "staff"
    RESIDENT = "resident"
    RELATIVE = "relative"


Score = Annotated[int, Field(ge=1, le=5)]


class SurveyResponseCreate(BaseModel):
    """One anonymous questionnaire; scores 1 (strongly disagree) to 5 (strongly agree)."""

    model_config = _examples(
        {
            "respondent": "staff",
            "phase": "intervention",
            "answered_on": "2026-03-02",
            "answers": {"time_for_residents": 4, "physical_strain": 4, "recommend": 5},
        }
    )

    respondent: Respondent
    phase: Phase
    answered_on: date
    answers: Annotated[dict[str, Score], Field(min_length=1, max_length=20)]

    @model_validator(mode="after")
    def _known_questions(self) -> SurveyResponseCreate:
        unknown = unknown_questions(self.respondent, self.answers)
        if unknown:
            raise UNKNOWN_QUESTIONS.error(**unknown)
        if not 1900 <= self.answered_on.year <= 2200:
            raise ANSWER_YEAR.error(field="answered_on")
        return self


class SurveyResponse(BaseModel):
    id: int
    trial_id: int
    respondent: Respondent
    phase: Phase
    answered_on: date
    answers: dict[str, int]
    created_at: datetime
