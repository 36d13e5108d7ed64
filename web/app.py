"""The web app as a sub-application: its own HTML error pages, the API's pool and settings."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException

from i18n import Message
from infra.capacity import ServiceBusy
from infra.errors import LdlError
from web import (
    admin_routes,
    assessment_routes,
    auth_routes,
    device_routes,
    evidence_routes,
    participant_routes,
    registry_routes,
    trial_routes,
)
from web.deps import SignInRequired
from web.ui import HERE, render, ui_for

PREFIX = "/app"


def _error_page(request: Request, status_code: int, detail: Message | str) -> HTMLResponse:
    return render(request, ui_for(request), "error.html", status_code=status_code, detail=detail)


def create_web_app(state: State) -> FastAPI:
    """`state` is the API application's: the web app uses the same pool and settings."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state = state

    @app.exception_handler(SignInRequired)
    def sign_in_first(request: Request, exc: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request"):
            # htmx follows redirects inside the fragment; a full reload shows the sign-in page.
            return Response(status_code=204, headers={"HX-Redirect": f"{PREFIX}/login"})
        return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)

    @app.exception_handler(ServiceBusy)
    def busy(request: Request, exc: ServiceBusy) -> HTMLResponse:
        # Beyond capacity: a page that says so in the reader's language, and when to come back.
        response = render(request, ui_for(request), "busy.html", status_code=503)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(LdlError)
    def domain_error(request: Request, exc: LdlError) -> HTMLResponse:
        return _error_page(request, exc.status_code, exc.message)

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> HTMLResponse:
        # A malformed address (e.g. /app/trials/abc) is a page that does not exist.
        return _error_page(request, 404, Message("no such page"))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return _error_page(request, exc.status_code, Message(str(exc.detail)))

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (
        auth_routes,
        registry_routes,
        trial_routes,
        evidence_routes,
        participant_routes,
        assessment_routes,
        device_routes,
        admin_routes,
    ):
        app.include_router(module.router)
    return app
