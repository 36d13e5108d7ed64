from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from infra.types import Id, Rule, Text

COMPANY_FOR_ROLE = Rule(
    "company_for_role", "company_id is required for role 'company' and only for it"
)


class Role(StrEnum):
    COORDINATOR = "coordinator"
    EVALUATOR = "evaluator"
    COMPANY = "company"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: an API key's holder, or the operator at the command line."""

    name: str
    role: Role
    company_id: int | None = None
    key_id: int | None = None

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}:{self.name}" if self.key_id is not None else self.name


OPERATOR = Principal(name="cli", role=Role.COORDINATOR)


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Sengeteknik A/S dashboards", "role": "company", "company_id": 1}]
        },
    )

    name: Annotated[Text, StringConstraints(min_length=1, max_length=100)]
    role: Role
    company_id: Id | None = Field(None, description="required for, and only for, role=company")

    @model_validator(mode="after")
    def _company_iff_company_role(self) -> ApiKeyCreate:
        if (self.role == Role.COMPANY) != (self.company_id is not None):
            raise COMPANY_FOR_ROLE.error(field="company_id")
        return self


class ApiKey(BaseModel):
    id: int
    name: str
    role: Role
    company_id: int | None
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="the secret; shown only once, stored only as a hash")


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    entity: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


# ------------------------------------------------------------------ people's accounts
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
    ),
]
MIN_PASSWORD_LENGTH = 10


class UserCreate(BaseModel):
    """A person's account: a coordinator, an evaluator, or a user of one company."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    role: Role
    company_id: int | None = Field(None, description="required for, and only for, role=company")
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=1000, repr=False)

    @model_validator(mode="after")
    def _company_iff_company_role(self) -> UserCreate:
        if (self.role == Role.COMPANY) != (self.company_id is not None):
            raise COMPANY_FOR_ROLE.error(field="company_id")
        return self


class UserAccount(BaseModel):
    id: int
    email: str
    role: Role
    company_id: int | None
    created_at: datetime
    disabled_at: datetime | None

    def principal(self) -> Principal:
        return Principal(
            name=f"user:{self.id}:{self.email}", role=self.role, company_id=self.company_id
        )


class StoredUser(UserAccount):
    password_hash: str = Field(repr=False)


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in person: who, and the token their forms must echo (CSRF)."""

    user: UserAccount
    csrf_token: str

    @property
    def principal(self) -> Principal:
        return self.user.principal()
