"""The project's error base. Domain code raises these; the API renders them as {error, detail}."""

from __future__ import annotations

from typing import Any, ClassVar


class LdlError(Exception):
    """A failure with a status code and a message a person can act on."""

    status_code = 400
    error = "bad_request"
    # Sent with the error's response (e.g. Retry-After).
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ConfigError(LdlError):
    """Bad configuration: the message names the setting."""

    error = "configuration"


class NotFound(LdlError):
    status_code = 404
    error = "not_found"


class Conflict(LdlError):
    status_code = 409
    error = "conflict"


class Invalid(LdlError):
    status_code = 422
    error = "invalid"


class Unauthorized(LdlError):
    status_code = 401
    error = "unauthorized"


class Forbidden(LdlError):
    status_code = 403
    error = "forbidden"
