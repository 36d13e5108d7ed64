"""What PostgreSQL cannot store is refused at the edge with 422, never a 500: NUL characters in
any string (body, path, query) and ids beyond a bigint."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from access.schemas import Role
from tests.trials.lab import bearer, make_key

BEYOND_BIGINT = 2**63

BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("/api-keys", {"name": "a\x00", "role": "coordinator"}),
    ("/api-keys", {"name": "c", "role": "company", "company_id": BEYOND_BIGINT}),
    ("/devices", {"id": "bed-1", "device_type": "sensor_bed", "company_id": BEYOND_BIGINT}),
    ("/devices", {"id": "bed-1", "device_type": "sensor\x00bed", "company_id": 1}),
    ("/devices", {"id": "bed-1", "device_type": "sensor_bed", "company_id": 1, "serial": "\x00"}),
    ("/device-types", {"code": "hip", "name": "Hip", "metrics": ["a\x00"]}),
    ("/device-types", {"code": "hip", "name": "Hip", "description": "\x00"}),
    ("/devices/bed-kb-01/deployments", {"trial_id": BEYOND_BIGINT, "site_id": 1,
                                        "valid_from": "2026-11-24T08:00:00+01:00"}),
    ("/devices/bed-kb-01/move", {"trial_id": 1, "site_id": BEYOND_BIGINT,
                                 "valid_from": "2026-11-24T08:00:00+01:00"}),
    ("/devices/bed-kb-01/deployments", {"trial_id": 1, "site_id": 1, "note": "room\x00",
                                        "valid_from": "2026-11-24T08:00:00+01:00"}),
]  # fmt: skip

BAD_GETS = [
    "/devices/a%00b",
    "/devices/a%00b/deployments",
    "/devices/a%00b/placement?at=2026-11-24T08:00:00%2B01:00",
    f"/devices?company_id={BEYOND_BIGINT}",
    "/devices?gateway_id=gw%00",
    "/audit?action=a%00",
    "/audit?entity=a%00",
    "/audit?entity_id=a%00",
    f"/trials/{BEYOND_BIGINT}/devices/health",
    f"/sites/{BEYOND_BIGINT}/devices/health",
    f"/trials/{BEYOND_BIGINT}/data-completeness",
]
BAD_WRITES_WITHOUT_BODY = [
    ("POST", "/devices/a%00b/secret"),
    ("POST", "/devices/a%00b/revoke"),
    ("DELETE", f"/api-keys/{BEYOND_BIGINT}"),
]


@pytest.fixture
def coordinator(conn: psycopg.Connection) -> dict[str, str]:
    return bearer(make_key(conn, Role.COORDINATOR))


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "validation" and body["problems"], body


@pytest.mark.parametrize(("path", "body"), BAD_BODIES)
def test_a_body_with_nul_or_an_id_beyond_bigint_is_a_422(
    http: httpx.Client, coordinator: dict[str, str], path: str, body: dict[str, Any]
) -> None:
    _assert_refused(http.post(path, json=body, headers=coordinator))


@pytest.mark.parametrize("path", BAD_GETS)
def test_a_path_or_query_with_nul_or_an_id_beyond_bigint_is_a_422(
    http: httpx.Client, coordinator: dict[str, str], path: str
) -> None:
    _assert_refused(http.get(path, headers=coordinator))


@pytest.mark.parametrize(("method", "path"), BAD_WRITES_WITHOUT_BODY)
def test_a_write_to_a_path_with_nul_or_an_id_beyond_bigint_is_a_422(
    http: httpx.Client, coordinator: dict[str, str], method: str, path: str
) -> None:
    _assert_refused(http.request(method, path, headers=coordinator))


def test_an_unforeseen_failure_still_answers_the_error_shape(
    http: httpx.Client, coordinator: dict[str, str], conn: psycopg.Connection
) -> None:
    # A schema the code does not expect: the kind of bug no validation foresees.
    conn.execute("RESET ROLE")
    conn.execute("ALTER TABLE device_types RENAME TO device_types_gone")
    conn.commit()
    response = http.get("/device-types", headers=coordinator)
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal",
        "detail": "an unexpected error occurred; it has been logged",
    }
