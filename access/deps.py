"""FastAPI dependencies for who is calling and whether they may."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from access import service
from access.schemas import Principal, Role
from infra.errors import Forbidden
from infra.http import Conn

_bearer = HTTPBearer(auto_error=False, description="an API key from `ldl keys create`")


def _current_principal(
    request: Request,
    conn: Conn,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    admitted: Principal | None = getattr(request.state, "principal", None)
    if admitted is not None:  # writes: api/admission.py checked the key before the body
        return admitted
    return service.authenticate(conn, credentials.credentials if credentials else None)


CurrentPrincipal = Annotated[Principal, Depends(_current_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    allowed = ", ".join(role.value for role in roles)

    def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"this needs the role {allowed}; your key has '{principal.role}'")
        return principal

    return check


Coordinator = Annotated[Principal, Depends(require_roles(Role.COORDINATOR))]
CoordinatorOrEvaluator = Annotated[
    Principal, Depends(require_roles(Role.COORDINATOR, Role.EVALUATOR))
]
AnyRole = CurrentPrincipal
