"""The project's error base. Domain code raises these; the API renders them as {error, detail}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from i18n import Message


class LdlError(Exception):
    """A failure with a status code and a message a person can act on.

    `detail` is an English msgid of the `messages` catalog, with `%(name)s` placeholders filled
    from `params`: the API answers in English (`self.detail`), the web app in the reader's
    language (`self.message`). `extra` goes into the API's error body as it is.
    """

    status_code = 400
    error = "bad_request"
    # Sent with the error's response (e.g. Retry-After).
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str, params: Mapping[str, Any] | None = None, **extra: Any) -> None:
        self.message = Message(detail, dict(params or {}))
        self.detail = str(self.message)
        super().__init__(self.detail)
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
