"""Who is signed in, whether their form carries the session's CSRF token, and what they may do."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData

from access import accounts
from access.schemas import Principal, Role, WebSession
from infra.errors import Forbidden
from infra.http import Conn
from web.ui import Ui, ui_for

SESSION_COOKIE = "ldl_session"


class SignInRequired(Exception):
    """No live session: the handler sends the reader to the sign-in page and back."""


class CsrfFailed(Forbidden):
    error = "csrf"


def _session(request: Request, conn: Conn) -> WebSession:
    session = accounts.session_for(conn, request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise SignInRequired
    return session


Session = Annotated[WebSession, Depends(_session)]


def _ui(request: Request, session: Session) -> Ui:
    return ui_for(request, session)


SignedIn = Annotated[Ui, Depends(_ui)]


def _principal(session: Session) -> Principal:
    return session.principal


Who = Annotated[Principal, Depends(_principal)]


def _coordinator(session: Session) -> Principal:
    if session.user.role != Role.COORDINATOR:
        raise Forbidden("only the lab's coordinators may do this")
    return session.principal


CoordinatorOnly = Annotated[Principal, Depends(_coordinator)]


def _not_company(session: Session) -> Principal:
    if session.user.role == Role.COMPANY:
        raise Forbidden("companies see their own trials only")
    return session.principal


StaffOnly = Annotated[Principal, Depends(_not_company)]


async def _checked_form(request: Request, session: Session) -> FormData:
    """The posted form, refused unless it echoes the session's CSRF token."""
    form = await request.form()
    sent = form.get("csrf_token") or request.headers.get("x-csrf-token")
    if not accounts.csrf_matches(session.csrf_token, sent if isinstance(sent, str) else None):
        raise CsrfFailed("the form is out of date or not from this site; reload the page")
    return form


CheckedForm = Annotated[FormData, Depends(_checked_form)]
