"""The application factory. Settings come in; nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi_offline import FastAPIOffline

from access.routes import router as access_router
from api.admission import AdmissionMiddleware
from api.errors import install_error_handlers
from api.headers import add_response_middleware
from api.server_timing import ServerTimingMiddleware
from devices.routes import router as devices_router
from evidence.assessment_routes import router as assessment_router
from evidence.routes import router as evaluation_router
from infra.capacity import ConnectionGate
from infra.db import create_pool
from infra.http import ERROR_RESPONSES, Conn
from infra.settings import Settings
from ingest.routes import router as ingest_router
from trials.routes import router as trials_router

WEB_APP = "/app"  # the web app for people: sessions and CSRF tokens, not API keys

API_DESCRIPTION = """
Trial tracking for Living Design Labs: companies, care homes, trials, pseudonymised participants
and their consent, devices and deployments, and the evidence of use and time saved.

Authenticate with `Authorization: Bearer <key>`; keys come from `ldl keys create` or
`POST /api-keys`. Roles: **coordinator** (everything), **evaluator** (all trials and aggregates,
no identities or consent), **company** (its own trials only).
"""


def _document_errors_as_json(app: FastAPI) -> None:
    """Errors are JSON on every route, including those that answer HTML, PDF or CSV on success.

    FastAPI documents a route's extra responses with the route's own media type; this corrects
    the generated OpenAPI once, so clients (and the schema fuzzer) see what is really sent.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for operation in (op for path in schema["paths"].values() for op in path.values()):
                for code, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if code[0] in "45" and "application/json" not in content:
                        for media_type in list(content):
                            content["application/json"] = content.pop(media_type)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


ROOT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Living Design Lab tracker</title></head>
<body>
<h1>Living Design Lab tracker</h1>
<p>Trial tracking for Living Design Labs: care homes, trials, consent, devices and the evidence
of time saved. This is its HTTP API; every request needs an API key
(<code>Authorization: Bearer ldl_…</code>).</p>
<ul>
<li><a href="app/">/app</a>: the web app for lab coordinators, companies and evaluators (sign in)</li>
<li><a href="docs">/docs</a>: the API, interactive (<a href="redoc">/redoc</a> to read)</li>
<li><a href="openapi.json">/openapi.json</a>: its OpenAPI description</li>
<li><a href="health">/health</a>: is the service up</li>
</ul>
</body></html>
"""


def create_app(settings: Settings) -> FastAPI:
    database_url = settings.require_database_url()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = create_pool(
            database_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            statement_timeout_ms=settings.api_statement_timeout_ms,
        )
        pool.open(wait=True, timeout=10)
        app.state.connection_gate = ConnectionGate(
            pool, settings.api_queue_limit, settings.api_queue_timeout_seconds
        )
        try:
            yield
        finally:
            pool.close()

    # Care-home networks are often closed: the docs' scripts come from the package, not a CDN.
    app = FastAPIOffline(
        title="Living Design Lab tracker",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        static_url="/docs-assets",
        swagger_ui_parameters={"validatorUrl": None},  # the validator badge calls out
    )
    app.state.settings = settings
    install_error_handlers(app)
    _document_errors_as_json(app)
    app.add_middleware(
        AdmissionMiddleware, max_body_bytes=settings.api_max_body_bytes, own_auth_prefix=WEB_APP
    )
    add_response_middleware(app)  # security headers and gzip, outside the admission
    app.add_middleware(ServerTimingMiddleware)  # outermost: it times the admission too

    @app.get("/", include_in_schema=False)
    def root() -> HTMLResponse:
        return HTMLResponse(ROOT_PAGE)

    @app.get("/health", tags=["meta"])
    def health(conn: Conn) -> dict[str, str]:
        conn.execute("SELECT 1")
        return {"status": "ok"}

    app.include_router(access_router)
    app.include_router(trials_router)
    app.include_router(devices_router)
    app.include_router(ingest_router)
    app.include_router(evaluation_router)
    app.include_router(assessment_router)
    return app
