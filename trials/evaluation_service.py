"""The evaluation's rules: who may see which trial's evidence, which period counts, the portfolio.

Never commits; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

import psycopg
from pydantic import BaseModel, Field

from access.schemas import Principal, Role
from infra.errors import Invalid, NotFound
from infra.http import Page, PageParams
from trials import evaluation_repository as repo
from trials import service as trials_service
from trials.business_case import BusinessCase, BusinessCaseInput, CostItem, business_case
from trials.evaluation import ActivityEstimate, ActivityInput, TimeSaved, time_saved
from trials.evaluation_repository import ConsentCoverage, Granularity, Level, TrialFacts

MAX_BUCKETS = {"hour": 24 * 92, "day": 3 * 366}


def authorised_trial(conn: psycopg.Connection, principal: Principal, trial_id: int) -> TrialFacts:
    """The trial's facts, if this principal may see them (another company's trial is a 404)."""
    trials_service.get_trial_for(conn, principal, trial_id)
    facts = repo.trial_facts(conn, trial_id)
    if facts is None:
        raise NotFound(f"trial {trial_id} does not exist")
    return facts


def intervention_period(facts: TrialFacts) -> tuple[datetime | None, datetime | None]:
    """From the trial's start to its end, or to now while it runs; None before it starts."""
    if facts.trial_from is None or facts.trial_from >= facts.now:
        return None, None
    until = min(facts.trial_until, facts.now) if facts.trial_until else facts.now
    return facts.trial_from, until


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
        raise Invalid(f"at most {MAX_BUCKETS[granularity]} {granularity}s per request")
    found = repo.usage(
        conn,
        trial_id,
        granularity,
        start,
        end,
        level,
        dashboards_only=principal.role == Role.COMPANY,
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
    return _time_saved(conn, authorised_trial(conn, principal, trial_id))[0]


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
    return _business_case(conn, facts, _time_saved(conn, facts)[1])


class Evidence(BaseModel):
    """Everything a report shows, gathered once."""

    facts: TrialFacts
    time_saved: TimeSaved
    business_case: BusinessCase
    coverage: ConsentCoverage
    completeness: repo.Completeness
    daily_usage: list[UsageBucket]


def evidence_for(conn: psycopg.Connection, principal: Principal, trial_id: int) -> Evidence:
    facts = authorised_trial(conn, principal, trial_id)
    saved, estimates = _time_saved(conn, facts)
    end = min(facts.trial_until, facts.now) if facts.trial_until else facts.now
    start = facts.baseline_from or facts.trial_from or end - timedelta(days=30)
    daily = usage(
        conn,
        principal,
        trial_id,
        "day",
        "trial",
        start,
        max(end, start + timedelta(days=1)),
        PageParams(limit=10_000, offset=0),
    ).items
    return Evidence(
        facts=facts,
        time_saved=saved,
        business_case=_business_case(conn, facts, estimates),
        coverage=repo.consent_coverage(conn, [trial_id])[trial_id],
        completeness=repo.completeness(conn, trial_id),
        daily_usage=daily,
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

    Raw counts include participants without `company_dashboards` consent, so companies get the
    consent-filtered usage instead."""
    if principal.role == Role.COMPANY:
        raise NotFound(f"trial {trial_id} does not exist")
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
    hours_saved: Decimal
    hours_saved_ci95: tuple[Decimal, Decimal]
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
        raise Invalid(f"sort by one of {', '.join(SORT_KEYS)} (prefix '-' for descending)")
    all_facts = repo.all_trial_facts(conn)
    flows = repo.flow(conn)
    coverage = repo.consent_coverage(conn, [f.id for f in all_facts])
    items = []
    for facts in all_facts:
        saved = _time_saved(conn, facts)[0]
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
