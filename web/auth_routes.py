"""Signing in and out. Sessions live in PostgreSQL; the cookie holds only a random token."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from access import accounts
from infra.errors import Unauthorized
from infra.http import Conn
from infra.settings import Settings
from web.deps import SESSION_COOKIE, CheckedForm, Session
from web.ui import render, ui_for

router = APIRouter()
LOGIN_CSRF_COOKIE = "ldl_login_csrf"
COOKIE_PATH = "/app"


def _secure_cookies(request: Request) -> bool:
    # Behind a TLS proxy the app may see http; production insists on Secure all the same.
    settings: Settings = request.app.state.settings
    return request.url.scheme == "https" or settings.environment == "production"


def _safe_next(target: str | None) -> str:
    # Only a path inside the app: never an open redirect to another site.
    if target and target.startswith(COOKIE_PATH + "/") and not target.startswith("//"):
        return target
    return COOKIE_PATH + "/"


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, ui_for(request), "login.html", next=_safe_next(next), login_csrf=token, error=None
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure_cookies(request),
    )
    return response


@router.post("/login")
def login(
    request: Request,
    conn: Conn,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    ui = ui_for(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not accounts.csrf_matches(expected, csrf_token):
        return render(
            request,
            ui,
            "login.html",
            status_code=403,
            next=_safe_next(next),
            login_csrf=expected,
            error=ui.gettext("The form is out of date; please try again."),
        )
    client = request.client.host if request.client else "unknown"
    try:
        token, _user = accounts.sign_in(conn, email, password, client)
    except accounts.TooManyAttempts:
        message = ui.gettext("Too many failed sign-ins. Try again in 15 minutes.")
        return render(
            request,
            ui,
            "login.html",
            status_code=429,
            next=_safe_next(next),
            login_csrf=expected,
            error=message,
            email=email,
        )
    except Unauthorized:
        conn.commit()  # the failure counts towards throttling even though sign-in failed
        return render(
            request,
            ui,
            "login.html",
            status_code=401,
            next=_safe_next(next),
            login_csrf=expected,
            error=ui.gettext("The email or the password is wrong."),
            email=email,
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_secure_cookies(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
    return response


@router.post("/logout")
def logout(request: Request, conn: Conn, session: Session, form: CheckedForm) -> Response:
    accounts.sign_out(conn, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse(COOKIE_PATH + "/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response
