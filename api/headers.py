"""What every response carries besides its body: security headers, and compression.

One middleware sets the headers on every response (API, web app, docs, errors alike); the
Content-Security-Policy depends on what the page needs, and no page may run inline script:

- the web app (`/app/`): only its own files; no inline script, style or style attribute
  (htmx's indicator style comes from app.css, the charts' SVG uses presentation attributes);
- a trial's report (API and web app): a self-contained document with its style inline, and no
  script at all;
- `/docs` (Swagger UI): its bundle, plus the one inline script that starts it, by hash;
  `/redoc`: its bundle, which injects its styles and runs its search in a blob: worker;
- everything else (JSON, CSV, PDF, the root page): nothing may load at all.
"""

from __future__ import annotations

import base64
import hashlib
import re

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOT_FRAMED = "frame-ancestors 'none'; base-uri 'none'"
APP_POLICY = f"default-src 'self'; object-src 'none'; form-action 'self'; {NOT_FRAMED}"
REPORT_POLICY = f"default-src 'none'; style-src 'unsafe-inline'; form-action 'none'; {NOT_FRAMED}"
NOTHING_POLICY = f"default-src 'none'; form-action 'none'; {NOT_FRAMED}"
REDOC_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
    f" worker-src blob:; object-src 'none'; form-action 'none'; {NOT_FRAMED}"
)

COMMON_HEADERS = {
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no trial or participant ids in other sites' logs
}

REPORT_PATH = re.compile(r"^(/app)?/trials/\d+/report$")
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

# Compressing these gains nothing (the PDF is compressed inside already).
NOT_COMPRESSED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/pdf")


def _sha256_source(script: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"


def _script_hashes(html: str) -> str:
    return " ".join(_sha256_source(script) for script in INLINE_SCRIPT.findall(html))


def _swagger_policy(app: FastAPI) -> str:
    """Swagger UI's page starts it with an inline script built from the app's settings only
    (no request data), so its hash is known when the app is built."""
    assert app.openapi_url is not None
    page = get_swagger_ui_html(
        openapi_url=app.openapi_url,
        title="",
        swagger_js_url="",
        swagger_css_url="",
        oauth2_redirect_url=app.swagger_ui_oauth2_redirect_url,
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )
    redirect = get_swagger_ui_oauth2_redirect_html()
    hashes = _script_hashes(bytes(page.body).decode() + bytes(redirect.body).decode())
    return (
        f"default-src 'self'; script-src 'self' {hashes}; img-src 'self' data:;"
        f" object-src 'none'; form-action 'self'; {NOT_FRAMED}"
    )


class SecurityHeadersMiddleware:
    """Sets the headers on the start of every HTTP response; a route's own value wins."""

    def __init__(self, app: ASGIApp, swagger_policy: str, docs_path: str = "/docs") -> None:
        self.app = app
        self.swagger_policy = swagger_policy
        self.docs_path = docs_path

    def policy_for(self, path: str) -> str:
        if path.startswith("/app/"):
            return REPORT_POLICY if REPORT_PATH.match(path) else APP_POLICY
        if path == self.docs_path or path.startswith(f"{self.docs_path}/"):
            return self.swagger_policy
        if path == "/redoc":
            return REDOC_POLICY
        return REPORT_POLICY if REPORT_PATH.match(path) else NOTHING_POLICY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = self.policy_for(scope["path"])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                for name, value in COMMON_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_response_middleware(app: FastAPI) -> None:
    """Security headers on every response, and gzip for clients that accept it.

    Compression level 6: nearly level 9's size at a fraction of its CPU. Streamed responses
    (the CSV exports) stay streamed: each chunk is compressed and flushed as it comes.
    """
    app.add_middleware(
        GZipMiddleware,
        minimum_size=1024,
        compresslevel=6,
        exclude_content_types=NOT_COMPRESSED,
    )
    app.add_middleware(SecurityHeadersMiddleware, swagger_policy=_swagger_policy(app))
