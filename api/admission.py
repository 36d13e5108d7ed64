"""What a request must show before the application reads its body.

FastAPI reads and parses a body before it resolves dependencies, so an anonymous caller could
make the server parse megabytes (and answer 422) before learning it has no key. This middleware,
pure ASGI so that nothing reads the body before it decides, refuses a write (POST, PUT, PATCH,
DELETE; every one needs a key, the public routes are all GETs) without a valid key with 401, and
every body larger than LDL_API_MAX_BODY_BYTES with 413. The principal it found goes on in the
request's state, so the route's own dependency does not look the key up again. The web app for
people (under `own_auth_prefix`) signs them in with a session and a CSRF token of its own: its
writes carry no key, and only the body cap applies there.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from access import service
from access.schemas import Principal
from api.errors import http_error_response, ldl_error_response
from infra.errors import LdlError

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def _authenticate(state: Any, authorization: str | None) -> Principal:
    token = service.require_token(_bearer_token(authorization))  # no pool connection for none
    async with state.connection_gate.connection() as conn:  # the gate every request goes through
        return await run_in_threadpool(service.authenticate, conn, token)


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, own_auth_prefix: str) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.own_auth_prefix = own_auth_prefix.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        web = f"{scope['path'].rstrip('/')}/".startswith(self.own_auth_prefix)
        if scope["method"] in WRITE_METHODS and not web:
            try:
                principal = await _authenticate(scope["app"].state, headers.get("authorization"))
            except LdlError as exc:
                await ldl_error_response(exc)(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await http_error_response(self._too_large())(scope, receive, send)
            return
        await self.app(scope, self._capped(receive), send)

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"the request body exceeds {self.max_body_bytes} bytes")

    def _capped(self, receive: Receive) -> Receive:
        """Count what a body without (or with a false) Content-Length really sends."""
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI passes an HTTPException raised while reading the body on as is.
                    raise self._too_large()
            return message

        return capped_receive
