"""The evaluation's rules: who may see which trial's evidence, which period counts, the portfolio.

Never commits; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Literal

import psycopg
from pydantic import BaseModel, Field

from access.schemas import Principal, Role
from evidence import assessment_repository, assessment_service
from evidence import repository as repo
from evidence.assessment_service import SurveySummary
from evidence.business_case import BusinessCase, BusinessCaseInput, CostItem, business_case
from evidence.caveats import Caveat, caveats
from evidence.criteria import CriteriaTally, CriterionResult, Measurements, judge_all, tally
from evidence.evaluation import ActivityEstimate, ActivityInput, Shown, TimeSaved, time_saved
from evidence.repository import ConsentCoverage, Granularity, Level, TrialFacts
from evidence.schemas import SuccessCriterion
from i18n import TIMEZONE
from infra.errors import Invalid, NotFound
from infra.http import Page, PageParams
from trials import service as trials_service

MAX_BUCKETS = {"hour": 24 * 92, "day": 3 * 366}


def authorised_trial(conn: psycopg.Connection, principal: Principal, trial_id: int) -> TrialFacts:
    """The trial's facts, if this principal may see them (another company's trial is a 404)."""
    trials_service.get_trial_for(conn, principal, trial_id)
    facts = repo.trial_facts(conn, trial_id)
    if facts is None:
        raise NotFound("trial %(trial)s does not exist", {"trial": trial_id})
    return facts


def _for_company(principal: Principal) -> bool:
    """A company's breakdowns below the trial count a participant's data only under
    company_dashboards consent; the trial's own figures are the same for every reader."""
    return principal.role == Role.COMPANY


def intervention_period(facts: TrialFacts) -> tuple[datetime | None, datetime | None]:
    """From the trial's start to its end, or to now while it runs; None before it starts.

    Defined once, in the database (trial_intervention_periods, 0014), which the Grafana views
    read too."""
    return facts.period_from, facts.period_until


# ---------------------------------------------------------------------------- usage
class UsageBucket(BaseModel):
    bucket: datetime
    group: str | None = Field(description="site, unit or device id when grouped by it")
    readings: int
    events: int
    events_by_type: dict[str, int]
    active_devices: int
    active_participants: int


class UsagePage(Page[UsageBucket]):
    trial_id: int
    granularity: Granularity
    level: Level
    start: datetime
    end: datetime
    source: str = "rollups usage_hourly/usage_daily (see 0006_evaluation.sql)"


def usage(
    conn: psycopg.Connection,
    principal: Principal,
    trial_id: int,
    granularity: Granularity,
    level: Level,
    start: datetime | None,
    end: datetime | None,
    paging: PageParams,
) -> UsagePage:
    facts = authorised_trial(conn, principal, trial_id)
    end = end or (min(facts.trial_until, facts.now) if facts.trial_until else facts.now)
    start = start or facts.baseline_from or facts.trial_from or end - timedelta(days=30)
    if end <= start:
        raise Invalid("'to' must be after 'from'")
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    if (end - start) / step > MAX_BUCKETS[granularity]:
        raise Invalid(
            "at most %(n)s %(granularity)ss per request",
            {"n": MAX_BUCKETS[granularity], "granularity": granularity},
        )
    found = repo.usage(
        conn,
        trial_id,
        granularity,
        start,
        end,
        level,
        for_company=_for_company(principal),
        limit=paging.limit,
        offset=paging.offset,
    )
    types: dict[tuple[datetime, str | None], dict[str, int]] = {}
    for item in found.by_type:
        types.setdefault((item.bucket, item.group_id), {})[item.event_type] = item.events
    return UsagePage(
        items=[
            UsageBucket(
                bucket=row.bucket,
                group=row.group_id,
                readings=row.readings,
                events=row.events,
                events_by_type=types.get((row.bucket, row.group_id), {}),
                active_devices=row.active_devices,
                active_participants=row.active_participants,
            )
            for row in found.rows
        ],
        total=found.total,
        limit=paging.limit,
        offset=paging.offset,
        trial_id=trial_id,
        granularity=granularity,
        level=level,
        start=start,
        end=end,
    )


# ----------------------------------------------------------------- time saved, business
def _time_saved(
    conn: psycopg.Connection, facts: TrialFacts
) -> tuple[TimeSaved, list[ActivityEstimate]]:
    """Every stored event counts, whoever reads: one evidence (README, "Who sees what")."""
    start, until = intervention_period(facts)
    occurrences = repo.occurrences_per_day(conn, facts.id, start, until) if start and until else {}
    inputs = [
        ActivityInput(
            activity_id=a.activity_id,
            name=a.name,
            event_type=a.event_type,
            baseline_minutes=a.baseline,
            technology_minutes=a.intervention,
            occurrences_per_day=occurrences.get(a.activity_id, []),
        )
        for a in repo.activity_observations(conn, facts.id)
    ]
    return time_saved(facts.id, start, until, inputs)


def time_saved_for(conn: psycopg.Connection, principal: Principal, trial_id: int) -> TimeSaved:
    facts = authorised_trial(conn, principal, trial_id)
    return _time_saved(conn, facts)[0]


def _business_case(
    conn: psycopg.Connection, facts: TrialFacts, estimates: list[ActivityEstimate]
) -> BusinessCase:
    units_in_trial, units_in_municipality, municipalities = repo.unit_counts(conn, facts.id)
    start, until = intervention_period(facts)
    return business_case(
        BusinessCaseInput(
            trial_id=facts.id,
            currency=facts.currency,
            staff_hourly_cost=facts.staff_hourly_cost,
            period_from=start,
            period_until=until,
            estimates=estimates,
            costs=[CostItem(*cost) for cost in repo.costs(conn, facts.id)],
            units_in_trial=units_in_trial,
            units_in_municipality=units_in_municipality,
            municipalities=municipalities,
        )
    )


def business_case_for(
    conn: psycopg.Connection, principal: Principal, trial_id: int
) -> BusinessCase:
    facts = authorised_trial(conn, principal, trial_id)
    estimates = _time_saved(conn, facts)[1]
    return _business_case(conn, facts, estimates)


# ------------------------------------------------------------------ success criteria
class CriteriaAnswer(BaseModel):
    """The trial's success criteria judged from live data, and how far that evidence carries."""

    trial_id: int
    period_from: datetime | None = Field(description="the trial period observed so far")
    period_until: datetime | None
    observed_days: Shown | None
    tally: CriteriaTally
    criteria: list[CriterionResult]
    caveats: list[Caveat]


def _criteria_answer(
    conn: psycopg.Connection,
    facts: TrialFacts,
    saved: TimeSaved,
    case: BusinessCase,
    completeness: repo.Completeness,
    criteria: list[SuccessCriterion],
) -> CriteriaAnswer:
    start, until = intervention_period(facts)
    hours = (
        assessment_repository.hours_with_data(conn, facts.id, start, until)
        if start and until
        else 0
    )
    lost = completeness.dead_letters + (completeness.messages_missing_in_gaps or 0)
    measurements = Measurements(
        time_saved=saved,
        business_case=case,
        period_days=case.observed.days,
        hours_with_data=hours,
        stored=completeness.readings + completeness.events,
        lost=lost,
    )
    results = judge_all(criteria, measurements)
    return CriteriaAnswer(
        trial_id=facts.id,
        period_from=start,
        period_until=until,
        observed_days=case.observed.days,
        tally=tally(results),
        criteria=results,
        caveats=caveats(saved, case),
    )


def _judged_with(
    conn: psycopg.Connection, facts: TrialFacts, criteria: list[SuccessCriterion]
) -> tuple[TimeSaved, BusinessCase, CriteriaAnswer]:
    saved, estimates = _time_saved(conn, facts)
    case = _business_case(conn, facts, estimates)
    completeness = repo.completeness(conn, facts.id)
    return saved, case, _criteria_answer(conn, facts, saved, case, completeness, criteria)


def success_criteria_for(
    conn: psycopg.Connection, principal: Principal, trial_id: int
) -> CriteriaAnswer:
    facts = authorised_trial(conn, principal, trial_id)
    criteria = assessment_repository.list_criteria(conn, [trial_id])
    return _judged_with(conn, facts, criteria)[2]


# ------------------------------------------------------------------------------ report
class UsageTotals(BaseModel):
    """What the report's usage counts, so that its numbers agree or explain themselves."""

    period_from: datetime
    period_until: datetime
    days: int = Field(description="local days in the period")
    days_with_data: int
    readings: int = Field(description="every participant's with telemetry consent, and rooms'")
    events: int


class Evidence(BaseModel):
    """Everything a report shows, gathered once."""

    facts: TrialFacts
    municipalities: list[str]
    time_saved: TimeSaved
    business_case: BusinessCase
    criteria: CriteriaAnswer
    surveys: SurveySummary
    coverage: ConsentCoverage
    completeness: repo.Completeness
    daily_usage: list[UsageBucket]
    usage_totals: UsageTotals


def evidence_for(conn: psycopg.Connection, principal: Principal, trial_id: int) -> Evidence:
    facts = authorised_trial(conn, principal, trial_id)
    saved, estimates = _time_saved(conn, facts)
    case = _business_case(conn, facts, estimates)
    completeness = repo.completeness(conn, trial_id)
    end = min(facts.trial_until, facts.now) if facts.trial_until else facts.now
    start = facts.baseline_from or facts.trial_from or end - timedelta(days=30)
    end = max(end, start + timedelta(days=1))
    daily = usage(
        conn, principal, trial_id, "day", "trial", start, end, PageParams(limit=10_000, offset=0)
    ).items
    first_day, last_day = start.astimezone(TIMEZONE).date(), end.astimezone(TIMEZONE).date()
    if end.astimezone(TIMEZONE).time() == time(0):
        last_day -= timedelta(days=1)  # a period ending at midnight does not touch the next day
    totals = UsageTotals(
        period_from=start,
        period_until=end,
        days=(last_day - first_day).days + 1,
        days_with_data=sum(1 for u in daily if u.readings + u.events > 0),
        readings=sum(u.readings for u in daily),
        events=sum(u.events for u in daily),
    )
    return Evidence(
        facts=facts,
        municipalities=assessment_repository.municipalities(conn, trial_id),
        time_saved=saved,
        business_case=case,
        criteria=_criteria_answer(
            conn,
            facts,
            saved,
            case,
            completeness,
            assessment_repository.list_criteria(conn, [trial_id]),
        ),
        surveys=assessment_service.survey_summary(
            conn, trial_id, for_company=_for_company(principal)
        ),
        coverage=repo.consent_coverage(conn, [trial_id])[trial_id],
        completeness=completeness,
        daily_usage=daily,
        usage_totals=totals,
    )


# ---------------------------------------------------------------------------- portfolio
def completeness_for(
    conn: psycopg.Connection, principal: Principal, trial_id: int
) -> repo.Completeness:
    """Readings and events stored (from the rollups), refused and dropped: without the rest of
    the evidence, for a page that polls it."""
    authorised_trial(conn, principal, trial_id)
    return repo.completeness(conn, trial_id)


def trial_flow(conn: psycopg.Connection, principal: Principal, trial_id: int) -> repo.FlowRow:
    """Is data flowing now: devices deployed and online, raw readings in the last hour.

    The coordinator's live view of the raw rows; companies read the rollups' usage instead (the
    trial's figures, the same as everyone's)."""
    if principal.role == Role.COMPANY:
        raise NotFound("trial %(trial)s does not exist", {"trial": trial_id})
    trials_service.get_trial_for(conn, principal, trial_id)
    return repo.flow(conn, trial_id)[trial_id]


class PortfolioItem(BaseModel):
    trial_id: int
    title: str
    company: str
    status: str
    sites: list[str]
    devices_deployed: int
    devices_online: int
    readings_last_hour: int
    data_flowing: bool
    consent: ConsentCoverage
    hours_saved: Shown
    hours_saved_ci95: tuple[Shown, Shown]
    success_criteria: CriteriaTally
    criteria: list[CriterionResult]
    decision: str | None


SortKey = Literal[
    "trial_id",
    "title",
    "company",
    "status",
    "devices_online",
    "readings_last_hour",
    "hours_saved",
    "decision",
]
SORT_KEYS: tuple[str, ...] = SortKey.__args__  # type: ignore[attr-defined]


def portfolio(conn: psycopg.Connection, sort: str, paging: PageParams) -> Page[PortfolioItem]:
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    if key not in SORT_KEYS:
        raise Invalid(
            "sort by one of %(keys)s (prefix '-' for descending)", {"keys": ", ".join(SORT_KEYS)}
        )
    all_facts = repo.all_trial_facts(conn)
    flows = repo.flow(conn)
    coverage = repo.consent_coverage(conn, [f.id for f in all_facts])
    items = []
    criteria = assessment_repository.list_criteria(conn, [f.id for f in all_facts])
    for facts in all_facts:
        saved, _, judged = _judged_with(
            conn, facts, [c for c in criteria if c.trial_id == facts.id]
        )
        flow = flows[facts.id]
        items.append(
            PortfolioItem(
                trial_id=facts.id,
                title=facts.title,
                company=facts.company_name,
                status=facts.status,
                sites=facts.sites,
                devices_deployed=flow.devices_deployed,
                devices_online=flow.devices_online,
                readings_last_hour=flow.readings_last_hour,
                data_flowing=flow.readings_last_hour > 0,
                consent=coverage[facts.id],
                hours_saved=saved.hours_saved,
                hours_saved_ci95=saved.hours_saved_ci95,
                success_criteria=judged.tally,
                criteria=judged.criteria,
                decision=facts.decision,
            )
        )
    # None sorts last either way; ties keep trial order.
    present = [i for i in items if getattr(i, key) is not None]
    absent = [i for i in items if getattr(i, key) is None]
    present.sort(key=lambda item: getattr(item, key), reverse=descending)
    ordered = present + absent
    return Page(
        items=ordered[paging.offset : paging.offset + paging.limit],
        total=len(ordered),
        limit=paging.limit,
        offset=paging.offset,
    )
