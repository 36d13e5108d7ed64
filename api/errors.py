"""One error shape for every error: {"error": ..., "detail": ...}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from infra.errors import LdlError

log = logging.getLogger(__name__)
HTTP_ERROR_NAMES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
}


def error_response(
    status_code: int,
    error: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    if status_code == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(
        {"error": error, "detail": detail, **extra}, status_code=status_code, headers=headers
    )


def ldl_error_response(exc: LdlError) -> JSONResponse:
    return error_response(exc.status_code, exc.error, exc.detail, exc.headers, **exc.extra)


def http_error_response(exc: StarletteHTTPException) -> JSONResponse:
    error = HTTP_ERROR_NAMES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, error, str(exc.detail), getattr(exc, "headers", None))


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LdlError)
    def domain_error(request: Request, exc: LdlError) -> JSONResponse:
        return ldl_error_response(exc)

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Every problem at once, each naming the field to fix.
        problems = [
            {"field": _field_path(error["loc"]), "message": error["msg"], "type": error["type"]}
            for error in exc.errors()
        ]
        return error_response(
            422, "validation", f"{len(problems)} invalid field(s)", problems=problems
        )

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_error_response(exc)

    @app.exception_handler(Exception)
    def unforeseen_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input: still the error shape, and the traceback in the log.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal", "an unexpected error occurred; it has been logged")
