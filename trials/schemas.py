"""What comes in and what goes out: the registry, trials, participants, consent, time-motion data."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from infra.types import Id, Name, Rule, Text
from trials.consent import Scope
from trials.lifecycle import TrialStatus
from trials.pseudonyms import problem_with

IMPLAUSIBLE_YEAR = Rule("implausible_year", "year must be between 1900 and 2200")
NOT_NULL = Rule("not_null", "these fields cannot be null: %(fields)s")
PERIOD_ORDER = {
    "baseline period": Rule(
        "baseline_period_order", "baseline period: baseline_until must be after baseline_from"
    ),
    "trial period": Rule(
        "trial_period_order", "trial period: trial_until must be after trial_from"
    ),
}
DECISION_TO_CONCLUDE = Rule(
    "decision_to_conclude", "concluding needs a decision (adopt, scale, stop) and a rationale"
)
RATIONALE_TO_STOP = Rule("rationale_to_stop", "stopping needs a rationale (the decision is 'stop')")
DECISION_MISPLACED = Rule(
    "decision_misplaced", "a decision and rationale belong only to concluding or stopping"
)
PROXY_RELATION = Rule(
    "proxy_relation", "proxy_relation is required for a proxy's consent, and only then"
)


def _plausible_year(value: datetime) -> datetime:
    # Far-off years survive Python but not a round trip through PostgreSQL (BC dates).
    if not 1900 <= value.year <= 2200:
        raise IMPLAUSIBLE_YEAR.error()
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_plausible_year)]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("999999999999.99"), decimal_places=2)]
Email = Annotated[str, Field(pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$", max_length=254)]


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(extra="forbid", json_schema_extra={"examples": list(examples)})


PERIODS = {
    "baseline period": ("baseline_from", "baseline_until"),
    "trial period": ("trial_from", "trial_until"),
}


def periods_out_of_order(values: Mapping[str, Any]) -> list[tuple[Rule, str]]:
    """The planned periods whose end is not after their start, with the end's field (checked on
    create and on edit)."""
    problems = []
    for what, (start_field, end_field) in PERIODS.items():
        start, end = values.get(start_field), values.get(end_field)
        if start is not None and end is not None and end <= start:
            problems.append((PERIOD_ORDER[what], end_field))
    return problems


# ----------------------------------------------------------------------------- registry
class CompanyCreate(BaseModel):
    model_config = _examples(
        {"name": "Sengeteknik A/S", "cvr": "12345678", "contact_email": "lab@sengeteknik.dk"}
    )

    name: Name
    cvr: Annotated[str, Field(pattern=r"^[0-9]{8}$")] | None = None
    contact_email: Email | None = None


class Company(BaseModel):
    id: int
    name: str
    cvr: str | None
    contact_email: str | None
    created_at: datetime


class SiteCreate(BaseModel):
    model_config = _examples(
        {"name": "Plejecenter Kolding Å", "municipality": "Kolding", "address": "Åvej 1, 6000"}
    )

    name: Name
    municipality: Name
    address: Text | None = None


class Site(BaseModel):
    id: int
    name: str
    municipality: str
    address: str | None
    created_at: datetime


class UnitCreate(BaseModel):
    model_config = _examples({"name": "Afdeling Syd"})

    name: Name


class Unit(BaseModel):
    id: int
    site_id: int
    name: str
    created_at: datetime


# -------------------------------------------------------------------------------- trials
class CollaborationForm(StrEnum):
    LIVING_DESIGN_LAB = "living_design_lab"
    OPI = "opi"
    OPP = "opp"
    OPERATING_AGREEMENT = "operating_agreement"
    PURCHASE = "purchase"


class Decision(StrEnum):
    ADOPT = "adopt"
    SCALE = "scale"
    STOP = "stop"


Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
IdList = Annotated[list[Id], Field(max_length=100)]

TRIAL_EXAMPLE = {
    "company_id": 1,
    "title": "Sensor beds on Afdeling Syd",
    "product": "SleepWell sensor bed v2",
    "need": "Night-time checks wake residents and take 2 staff hours per night",
    "collaboration_form": "living_design_lab",
    "site_ids": [1],
    "unit_ids": [1],
    "baseline_from": "2026-01-05T00:00:00+01:00",
    "baseline_until": "2026-02-02T00:00:00+01:00",
    "trial_from": "2026-02-02T00:00:00+01:00",
    "trial_until": "2026-05-04T00:00:00+02:00",
    "success_criteria": "30 % fewer physical night checks, no more falls",
    "staff_hourly_cost": "385.00",
}


class TrialPlan(BaseModel):
    """The editable part of a trial: what it tests, where, when, and at what cost."""

    title: Name
    product: Name
    need: Text = Field("", description="behovsafklaring: the need the trial answers")
    collaboration_form: CollaborationForm
    site_ids: IdList = Field(default_factory=list, description="care homes taking part")
    unit_ids: IdList = Field(default_factory=list, description="units, each of one of the sites")
    baseline_from: Instant | None = None
    baseline_until: Instant | None = None
    trial_from: Instant | None = None
    trial_until: Instant | None = None
    success_criteria: Text = ""
    staff_hourly_cost: Money | None = Field(None, description="for valuing time saved")
    currency: Currency = "DKK"

    @model_validator(mode="after")
    def _periods_in_order(self) -> TrialPlan:
        problems = periods_out_of_order(self.__dict__)
        if problems:  # the first: a second shows once the first is put right
            rule, end_field = problems[0]
            raise rule.error(field=end_field)
        return self


class TrialCreate(TrialPlan):
    model_config = _examples(TRIAL_EXAMPLE)

    company_id: Id


# Sending null for one of these clears it; the rest always hold a value.
NULLABLE_ON_UPDATE = frozenset(
    {"baseline_from", "baseline_until", "trial_from", "trial_until", "staff_hourly_cost"}
)


class TrialUpdate(BaseModel):
    """Only the fields sent are changed; periods are checked against the stored values too."""

    model_config = _examples({"success_criteria": "25 % fewer night checks", "unit_ids": [1, 2]})

    title: Name | None = None
    product: Name | None = None
    need: Text | None = None
    collaboration_form: CollaborationForm | None = None
    site_ids: IdList | None = None
    unit_ids: IdList | None = None
    baseline_from: Instant | None = None
    baseline_until: Instant | None = None
    trial_from: Instant | None = None
    trial_until: Instant | None = None
    success_criteria: Text | None = None
    staff_hourly_cost: Money | None = None
    currency: Currency | None = None

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> TrialUpdate:
        nulls = sorted(
            n for n in self.model_fields_set - NULLABLE_ON_UPDATE if getattr(self, n) is None
        )
        if nulls:
            raise NOT_NULL.error(fields=", ".join(nulls), field=nulls[0])
        return self


class Trial(BaseModel):
    id: int
    company_id: int
    title: str
    product: str
    need: str
    collaboration_form: CollaborationForm
    status: TrialStatus
    site_ids: list[int]
    unit_ids: list[int]
    baseline_from: datetime | None
    baseline_until: datetime | None
    trial_from: datetime | None
    trial_until: datetime | None
    success_criteria: str
    staff_hourly_cost: Decimal | None
    currency: str
    decision: Decision | None
    decision_rationale: str | None
    decided_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TransitionRequest(BaseModel):
    model_config = _examples(
        {"to": "baseline"},
        {"to": "concluded", "decision": "adopt", "rationale": "31 % fewer night checks"},
        {"to": "stopped", "rationale": "the supplier withdrew the product"},
    )

    to: TrialStatus
    decision: Decision | None = Field(None, description="required when concluding")
    rationale: Text | None = Field(None, description="required when concluding or stopping")

    @model_validator(mode="after")
    def _decision_only_where_it_belongs(self) -> TransitionRequest:
        has_rationale = bool(self.rationale and self.rationale.strip())
        if self.to == TrialStatus.CONCLUDED:
            if self.decision is None or not has_rationale:
                raise DECISION_TO_CONCLUDE.error()
        elif self.to == TrialStatus.STOPPED:
            if self.decision not in (None, Decision.STOP) or not has_rationale:
                raise RATIONALE_TO_STOP.error()
        elif self.decision is not None or self.rationale is not None:
            raise DECISION_MISPLACED.error()
        return self


class StatusChange(BaseModel):
    id: int
    trial_id: int
    from_status: TrialStatus | None
    to_status: TrialStatus
    at: datetime
    actor: str | None


class CostCategory(StrEnum):
    DEVICES = "devices"
    LICENCES = "licences"
    TRAINING = "training"
    STAFF_TIME = "staff_time"
    OTHER = "other"


class CostCreate(BaseModel):
    model_config = _examples(
        {"category": "devices", "amount": "48000.00", "description": "12 sensor beds"},
        {"category": "licences", "amount": "9600.00", "recurring": True},
    )

    category: CostCategory
    amount: Money
    recurring: bool = Field(False, description="per year when true, one-off otherwise")
    description: Text = ""


class Cost(BaseModel):
    id: int
    trial_id: int
    category: CostCategory
    amount: Decimal
    recurring: bool
    description: str


# ------------------------------------------------------------------ participants, consent
class ParticipantCreate(BaseModel):
    model_config = _examples({"pseudonym": "P-017", "site_id": 1, "unit_id": 1})

    pseudonym: str = Field(
        min_length=2,
        max_length=40,
        description="a pseudonym only: never a CPR number or a name",
    )
    site_id: Id
    unit_id: Id | None = None
    enrolled_at: Instant | None = Field(None, description="defaults to now")

    @field_validator("pseudonym")
    @classmethod
    def _pseudonym_only(cls, value: str) -> str:
        problem = problem_with(value)
        if problem:
            raise problem.error()
        return value


class Participant(BaseModel):
    id: int
    trial_id: int
    pseudonym: str
    site_id: int
    unit_id: int | None
    enrolled_at: datetime
    left_at: datetime | None
    created_at: datetime


class GivenBy(StrEnum):
    PARTICIPANT = "participant"
    PROXY = "proxy"


class ConsentCreate(BaseModel):
    model_config = _examples(
        {
            "scopes": ["telemetry", "company_dashboards", "evaluation"],
            "given_by": "participant",
            "evidence_ref": "DOC-2026-0117",
            "valid_from": "2026-01-05T09:00:00+01:00",
        },
        {
            "scopes": ["telemetry"],
            "given_by": "proxy",
            "proxy_relation": "daughter",
            "evidence_ref": "DOC-2026-0142",
            "valid_from": "2026-01-06T14:00:00+01:00",
        },
    )

    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    given_by: GivenBy
    proxy_relation: Name | None = Field(None, description="required when given by a proxy")
    evidence_ref: Name = Field(description="reference to the signed consent form")
    valid_from: Instant

    @model_validator(mode="after")
    def _relation_iff_proxy(self) -> ConsentCreate:
        if (self.given_by == GivenBy.PROXY) != (self.proxy_relation is not None):
            raise PROXY_RELATION.error(field="proxy_relation")
        self.scopes = sorted(set(self.scopes))
        return self


class Consent(BaseModel):
    id: int
    participant_id: int
    version: int
    scopes: list[Scope]
    given_by: GivenBy
    proxy_relation: str | None
    evidence_ref: str
    valid_from: datetime
    valid_until: datetime | None
    ended_by: Literal["superseded", "withdrawn"] | None
    withdrawal_mode: Literal["erase", "keep"] | None
    created_at: datetime


class WithdrawalMode(StrEnum):
    ERASE = "erase"
    KEEP = "keep"


class WithdrawalRequest(BaseModel):
    model_config = _examples({"at": "2026-03-01T12:00:00+01:00", "mode": "erase"})

    at: Instant
    mode: WithdrawalMode = Field(description="erase: delete what was collected; keep: keep it")


class WithdrawalResult(BaseModel):
    consent: Consent
    erased_rows: dict[str, int] = Field(
        description="rows deleted per table: for 'erase' all, for 'keep' those at or after `at`"
    )


class ConsentAnswer(BaseModel):
    participant_id: int
    scope: Scope
    at: datetime
    active: bool


# ------------------------------------------------------------- activities, observations
class ActivityCreate(BaseModel):
    model_config = _examples(
        {
            "name": "night-time check",
            "description": "a physical check of a sleeping resident",
            "event_type": "night_check_avoided",
        }
    )

    name: Name
    description: Text = ""
    event_type: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] | None = Field(
        None, description="the device event type that counts one occurrence with the technology"
    )


class Activity(BaseModel):
    id: int
    trial_id: int
    name: str
    description: str
    event_type: str | None


class Phase(StrEnum):
    BASELINE = "baseline"
    INTERVENTION = "intervention"


class ObservationCreate(BaseModel):
    model_config = _examples(
        {
            "activity_id": 1,
            "phase": "baseline",
            "duration_minutes": "6.50",
            "staff_role": "social- og sundhedsassistent",
            "observed_at": "2026-01-12T02:15:00+01:00",
            "site_id": 1,
            "unit_id": 1,
        }
    )

    activity_id: Id
    phase: Phase
    duration_minutes: Annotated[Decimal, Field(gt=0, le=Decimal("999999.99"), decimal_places=2)]
    staff_role: Name
    observed_at: Instant
    site_id: Id | None = None
    unit_id: Id | None = None
    note: Text = ""


class Observation(BaseModel):
    id: int
    trial_id: int
    activity_id: int
    phase: Phase
    duration_minutes: Decimal
    staff_role: str
    observed_at: datetime
    site_id: int | None
    unit_id: int | None
    note: str
    created_at: datetime
