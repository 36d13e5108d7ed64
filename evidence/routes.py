"""The HTTP face of the evaluation: usage, time saved, business case, report, exports, portfolio."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import AwareDatetime

from access.deps import Coordinator, CoordinatorOrEvaluator, CurrentPrincipal
from evidence import erase, service
from evidence.business_case import BusinessCase
from evidence.evaluation import TimeSaved
from evidence.export import export_csv
from evidence.report_html import render_html, render_pdf
from evidence.repository import ExportKind, Granularity, Level
from evidence.service import PortfolioItem, UsagePage
from i18n import negotiate
from infra.http import Conn, Page, Paging
from trials.routes import ParticipantId, TrialId
from trials.schemas import WithdrawalRequest, WithdrawalResult

router = APIRouter(tags=["evaluation"])


@router.get("/trials/{trial_id}/usage", response_model=UsagePage)
def usage(
    conn: Conn,
    principal: CurrentPrincipal,
    trial_id: TrialId,
    paging: Paging,
    granularity: Granularity = "day",
    level: Annotated[
        Level, Query(description="group by trial (default), site, unit or device")
    ] = "trial",
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
) -> UsagePage:
    """Readings, events by type, active devices and participants per hour or day (from rollups).

    For a company, a participant's data counts only for hours their `company_dashboards`
    consent covered whole (an hour in which it began or ended is left out)."""
    return service.usage(conn, principal, trial_id, granularity, level, start, end, paging)


@router.get("/trials/{trial_id}/time-saved", response_model=TimeSaved)
def time_saved(conn: Conn, principal: CurrentPrincipal, trial_id: TrialId) -> TimeSaved:
    """Minutes per occurrence at baseline and with the technology, with 95 % Welch intervals."""
    return service.time_saved_for(conn, principal, trial_id)


@router.get("/trials/{trial_id}/business-case", response_model=BusinessCase)
def business_case(conn: Conn, principal: CurrentPrincipal, trial_id: TrialId) -> BusinessCase:
    """Value of the time saved against the trial's costs; amounts are decimal strings (øre)."""
    return service.business_case_for(conn, principal, trial_id)


Language = Annotated[
    str | None, Query(alias="lang", description="da (default) or en; else Accept-Language")
]
AcceptLanguage = Annotated[str | None, Header(include_in_schema=False)]


@router.get("/trials/{trial_id}/report", response_class=HTMLResponse)
def report_html(
    conn: Conn,
    principal: CurrentPrincipal,
    trial_id: TrialId,
    lang: Language = None,
    accept_language: AcceptLanguage = None,
) -> HTMLResponse:
    """The evidence pack for a council: summary first, success criteria judged, business case,
    time saved, use, MAST surveys, consent, data completeness. Danish unless asked otherwise."""
    locale = negotiate(lang, accept_language)
    evidence = service.evidence_for(conn, principal, trial_id)
    return HTMLResponse(render_html(evidence, locale), headers={"Content-Language": locale})


@router.get("/trials/{trial_id}/report.pdf", response_class=Response)
def report_pdf(
    conn: Conn,
    principal: CurrentPrincipal,
    trial_id: TrialId,
    lang: Language = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    """The same report on A4 pages, with page numbers, the municipality and the date."""
    locale = negotiate(lang, accept_language)
    pdf = render_pdf(service.evidence_for(conn, principal, trial_id), locale)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="trial-{trial_id}-report-{locale}.pdf"',
            "Content-Language": locale,
        },
    )


@router.get("/trials/{trial_id}/exports/{kind}.csv", response_class=StreamingResponse)
def export(
    conn: Conn, principal: CoordinatorOrEvaluator, trial_id: TrialId, kind: ExportKind
) -> StreamingResponse:
    """Pseudonymised CSV for the external evaluator; only rows with `evaluation` consent at
    their time (room devices included); each export is audited."""
    result = export_csv(conn, principal, trial_id, kind)
    conn.commit()  # the audit row is durable before any personal data leaves
    return StreamingResponse(
        result.chunks(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{result.filename}"',
            "X-Export-Rows": str(result.rows),
        },
    )


@router.get("/portfolio", response_model=Page[PortfolioItem])
def portfolio(
    conn: Conn,
    principal: Coordinator,
    paging: Paging,
    sort: Annotated[
        str,
        Query(description=f"one of {', '.join(service.SORT_KEYS)}; prefix '-' for descending"),
    ] = "trial_id",
) -> Page[PortfolioItem]:
    """Every trial: status, sites, devices online, data flowing, consent coverage, time saved."""
    return service.portfolio(conn, sort, paging)


# ------------------------------------------------------------------------------- erase
@router.post("/participants/{participant_id}/consent-withdrawal", tags=["participants"])
def withdraw_consent(
    participant_id: ParticipantId,
    body: WithdrawalRequest,
    conn: Conn,
    who: Coordinator,
    request: Request,
) -> WithdrawalResult:
    """End the active consent at `at`. With `erase`, the participant's telemetry is deleted in the
    same transaction and the rows deleted are reported. The withdrawal is written to the erasure
    journal before it commits (503 when the journal cannot be written: nothing is withdrawn)."""
    journal = request.app.state.settings.erasure_journal
    return erase.withdraw_consent(conn, who, participant_id, body, journal)
