"""A small lab set up over the real API: companies, a site with units, keys for every role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import psycopg

from access.schemas import OPERATOR, ApiKeyCreate, Role
from access.service import create_key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_key(conn: psycopg.Connection, role: Role, company_id: int | None = None) -> str:
    created = create_key(
        conn, OPERATOR, ApiKeyCreate(name=f"test {role}", role=role, company_id=company_id)
    )
    conn.commit()
    return created.key


@dataclass
class Lab:
    http: httpx.Client
    coordinator: dict[str, str]
    evaluator: dict[str, str]
    company_a: dict[str, str]
    company_b: dict[str, str]
    company_a_id: int
    company_b_id: int
    site_id: int
    unit_ids: list[int]

    def post(self, path: str, body: dict[str, Any], as_: dict[str, str] | None = None) -> Any:
        response = self.http.post(path, json=body, headers=as_ or self.coordinator)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def get(
        self, path: str, *, as_: dict[str, str] | None = None, **params: str | int
    ) -> httpx.Response:
        return self.http.get(path, params=params, headers=as_ or self.coordinator)

    def trial(self, company_id: int | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "company_id": company_id or self.company_a_id,
            "title": "Sensor beds",
            "product": "SleepWell v2",
            "collaboration_form": "living_design_lab",
            "site_ids": [self.site_id],
            "unit_ids": self.unit_ids[:1],
            "staff_hourly_cost": "385.00",
            **fields,
        }
        return self.post("/trials", body)

    def participant(self, trial_id: int, pseudonym: str = "P-017") -> dict[str, Any]:
        body = {"pseudonym": pseudonym, "site_id": self.site_id, "unit_id": self.unit_ids[0]}
        return self.post(f"/trials/{trial_id}/participants", body)

    def consent(self, participant_id: int, **fields: Any) -> dict[str, Any]:
        body = {
            "scopes": ["telemetry"],
            "given_by": "participant",
            "evidence_ref": "DOC-1",
            "valid_from": "2026-01-01T00:00:00+00:00",
            **fields,
        }
        return self.post(f"/participants/{participant_id}/consents", body)


def build_lab(conn: psycopg.Connection, http: httpx.Client) -> Lab:
    coordinator = bearer(make_key(conn, Role.COORDINATOR))
    evaluator = bearer(make_key(conn, Role.EVALUATOR))

    def post(path: str, body: dict[str, Any]) -> Any:
        response = http.post(path, json=body, headers=coordinator)
        assert response.status_code == 201, response.text
        return response.json()

    company_a = post("/companies", {"name": "Sengeteknik A/S", "cvr": "12345678"})["id"]
    company_b = post("/companies", {"name": "Konkurrent ApS"})["id"]
    site = post("/sites", {"name": "Plejecenter Å", "municipality": "Kolding"})["id"]
    units = [post(f"/sites/{site}/units", {"name": name})["id"] for name in ("Syd", "Nord")]
    return Lab(
        http=http,
        coordinator=coordinator,
        evaluator=evaluator,
        company_a=bearer(make_key(conn, Role.COMPANY, company_a)),
        company_b=bearer(make_key(conn, Role.COMPANY, company_b)),
        company_a_id=company_a,
        company_b_id=company_b,
        site_id=site,
        unit_ids=units,
    )
