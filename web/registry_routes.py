"""The start page (the portfolio, or a company's own trials), companies, care homes and units."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from access.schemas import Principal, Role
from evidence import service as evaluation_service
from infra.http import Conn, PageParams
from infra.types import Id
from trials import service as trials
from trials.schemas import CompanyCreate, SiteCreate, UnitCreate
from web.deps import CheckedForm, CoordinatorOnly, SignedIn, StaffOnly, Who
from web.forms import fields, submit
from web.ui import render

router = APIRouter()
ALL = PageParams(limit=500, offset=0)  # a lab has tens of these, not thousands


@router.get("/")
def home(request: Request, ui: SignedIn, who: Who, conn: Conn, sort: str = "trial_id") -> Response:
    if who.role == Role.COORDINATOR:
        portfolio = evaluation_service.portfolio(conn, sort, ALL).items
        return render(request, ui, "portfolio.html", portfolio=portfolio, sort=sort)
    listed = trials.list_trials(conn, who, ALL).items
    companies = {c.id: c.name for c in trials.list_companies(conn, who, ALL).items}
    return render(request, ui, "trials.html", trials=listed, companies=companies)


# ----------------------------------------------------------------------------- companies
def _companies_page(
    request: Request, ui: SignedIn, conn: Conn, who: Principal, **context: Any
) -> Response:
    companies = trials.list_companies(conn, who, ALL)
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return render(request, ui, "companies.html", companies=companies.items, **context)


@router.get("/companies")
def companies(request: Request, ui: SignedIn, who: StaffOnly, conn: Conn) -> Response:
    return _companies_page(request, ui, conn, who)


@router.post("/companies")
def create_company(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm
) -> Response:
    values = fields(form)
    company, errors = submit(
        conn,
        CompanyCreate,
        values,
        lambda request_model: trials.register_company(conn, request_model),
    )
    if company is not None:
        return RedirectResponse(f"/app/companies#company-{company.id}", status_code=303)
    return _companies_page(request, ui, conn, who, errors=errors, values=values, status_code=422)


# ---------------------------------------------------------------------------------- sites
@router.get("/sites")
def sites(request: Request, ui: SignedIn, who: StaffOnly, conn: Conn) -> Response:
    return render(
        request, ui, "sites.html", sites=trials.list_sites(conn, ALL).items, errors={}, values={}
    )


@router.post("/sites")
def create_site(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm
) -> Response:
    values = fields(form)
    site, errors = submit(
        conn, SiteCreate, values, lambda request_model: trials.register_site(conn, request_model)
    )
    if site is not None:
        return RedirectResponse(f"/app/sites/{site.id}", status_code=303)
    listed = trials.list_sites(conn, ALL).items
    return render(
        request, ui, "sites.html", status_code=422, sites=listed, errors=errors, values=values
    )


def _site_page(request: Request, ui: SignedIn, conn: Conn, site_id: Id, **context: Any) -> Response:
    site = trials.get_site(conn, site_id)
    units = trials.list_units(conn, site_id, ALL).items
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return render(request, ui, "site.html", site=site, units=units, **context)


@router.get("/sites/{site_id}")
def site(request: Request, ui: SignedIn, who: StaffOnly, conn: Conn, site_id: Id) -> Response:
    return _site_page(request, ui, conn, site_id)


@router.post("/sites/{site_id}/units")
def add_unit(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    site_id: Id,
) -> Response:
    values = fields(form)
    unit, errors = submit(
        conn,
        UnitCreate,
        values,
        lambda request_model: trials.add_unit(conn, site_id, request_model),
    )
    if unit is not None:
        return RedirectResponse(f"/app/sites/{site_id}", status_code=303)
    return _site_page(request, ui, conn, site_id, errors=errors, values=values, status_code=422)
