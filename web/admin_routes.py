"""The coordinator's back office: dead letters, API keys for machines, the audit log."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from access import accounts
from access import repository as access_repository
from access import service as access
from access.schemas import ApiKeyCreate, Role, UserCreate
from i18n import N_
from infra.http import Conn, PageParams
from infra.types import Id
from ingest import repository as ingest_repository
from ingest.messages import DeadLetterReason
from trials import service as trials
from web.deps import CheckedForm, CoordinatorOnly, SignedIn
from web.forms import FormErrors, fields, local_instant, submit
from web.ui import render

router = APIRouter()
PAGE = 50
# Why the ingest worker refused a message, in words (the API and the database keep the code).
REASONS: dict[str, str] = {
    DeadLetterReason.BAD_TOPIC: N_("topic not of the form ldl/v1/<device>/<channel>"),
    DeadLetterReason.OVERSIZED: N_("message too large"),
    DeadLetterReason.MALFORMED_JSON: N_("not valid JSON"),
    DeadLetterReason.NON_FINITE: N_("a number that is not finite"),
    DeadLetterReason.SCHEMA_VIOLATION: N_("does not follow the payload schema"),
    DeadLetterReason.UNKNOWN_DEVICE: N_("unknown device"),
    DeadLetterReason.NO_DEPLOYMENT: N_("device not deployed at that time"),
    DeadLetterReason.FUTURE_TIMESTAMP: N_("time in the future"),
    DeadLetterReason.BEFORE_REGISTRATION: N_("time before the device was registered"),
    DeadLetterReason.STORAGE_ERROR: N_("could not be stored"),
}


@router.get("/dead-letters")
def dead_letters(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:  # fmt: skip
    items, total = ingest_repository.list_dead_letters(conn, reason=None, limit=PAGE, offset=offset)
    return render(
        request, ui, "dead_letters.html", items=items, total=total, offset=offset, page=PAGE,
        reasons={code: ui.gettext(label) for code, label in REASONS.items()},
    )  # fmt: skip


# -------------------------------------------------------------------------------- API keys
def _keys_page(
    request: Request, ui: SignedIn, conn: Conn, who: Any, *, status_code: int = 200,
    errors: FormErrors | None = None, values: dict[str, Any] | None = None, created: Any = None,
) -> Response:  # fmt: skip
    companies = trials.list_companies(conn, who, PageParams(limit=500, offset=0)).items
    return render(
        request, ui, "keys.html", status_code=status_code,
        keys=access_repository.list_keys(conn), created=created,
        role_options=[(r.value, ui.gettext(r.value)) for r in Role],
        company_options=[(c.id, c.name) for c in companies],
        errors=errors or FormErrors(), values=values or {},
    )  # fmt: skip


@router.get("/api-keys")
def api_keys(request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn) -> Response:
    return _keys_page(request, ui, conn, who)


@router.post("/api-keys")
def create_api_key(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm
) -> Response:
    values = fields(form)
    created, errors = submit(
        conn, ApiKeyCreate, values, lambda key_request: access.create_key(conn, who, key_request)
    )
    if created is not None:
        return _keys_page(request, ui, conn, who, created=created)  # the key, shown once
    return _keys_page(request, ui, conn, who, status_code=422, errors=errors, values=values)


@router.post("/api-keys/{key_id}/revoke")
def revoke_api_key(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm, key_id: Id
) -> Response:
    access.revoke_key(conn, who, key_id)
    return RedirectResponse("/app/api-keys", status_code=303)


# ------------------------------------------------------------------------------ audit log
@router.get("/audit")
def audit_log(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn,
    entity: str = "", entity_id: str = "", action: str = "", since: str = "", until: str = "",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:  # fmt: skip
    """Filters are plain GET parameters, so a filtered view is a link one can share."""
    errors = FormErrors()
    moments: dict[str, Any] = {}
    for name, text in (("since", since), ("until", until)):
        moment = local_instant(text) if text else None
        if isinstance(moment, str):
            errors[name] = ui.gettext("Give a date and time.")
            moment = None
        moments[name] = moment
    rows, total = access_repository.list_audit(
        conn, entity=entity or None, entity_id=entity_id or None, action=action or None,
        since=moments["since"], until=moments["until"], limit=PAGE, offset=offset,
    )  # fmt: skip
    filters = {
        "entity": entity,
        "entity_id": entity_id,
        "action": action,
        "since": since,
        "until": until,
    }
    return render(
        request, ui, "audit.html", rows=rows, total=total, offset=offset, page=PAGE,
        values=filters, errors=errors,
        query=urlencode({k: v for k, v in filters.items() if v}),
    )  # fmt: skip


# ---------------------------------------------------------------------------------- people
def _users_page(
    request: Request, ui: SignedIn, conn: Conn, who: Any, *, status_code: int = 200,
    errors: FormErrors | None = None, values: dict[str, Any] | None = None,
) -> Response:  # fmt: skip
    companies = trials.list_companies(conn, who, PageParams(limit=500, offset=0)).items
    return render(
        request, ui, "users.html", status_code=status_code,
        users=access_repository.list_users(conn),
        companies={c.id: c.name for c in companies},
        role_options=[(r.value, ui.gettext(r.value)) for r in Role],
        company_options=[(c.id, c.name) for c in companies],
        errors=errors or FormErrors(), values=values or {},
    )  # fmt: skip


@router.get("/users")
def users(request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn) -> Response:
    return _users_page(request, ui, conn, who)


@router.post("/users")
def create_user(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm
) -> Response:
    values = fields(form)
    created, errors = submit(
        conn, UserCreate, values, lambda account: accounts.create_user(conn, account, who)
    )
    if created is not None:
        return RedirectResponse("/app/users", status_code=303)
    values.pop("password", None)  # never sent back to the page
    return _users_page(request, ui, conn, who, status_code=422, errors=errors, values=values)


@router.post("/users/{user_id}/disable")
def disable_user(
    request: Request,
    ui: SignedIn,
    who: CoordinatorOnly,
    conn: Conn,
    form: CheckedForm,
    user_id: Id,
) -> Response:
    accounts.disable_user(conn, who, user_id)
    return RedirectResponse("/app/users", status_code=303)
