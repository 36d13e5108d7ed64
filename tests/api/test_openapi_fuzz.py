"""Property-based fuzzing of the app's own OpenAPI: no operation answers 500 or breaks its schema.

Valid and invalid requests (schemathesis's positive and negative modes), with a key and without.
A small budget per operation (seeded, so a run is repeatable); it runs with the unit tests.
Requests go out through httpx: schemathesis's own `requests` transport breaks where
grafana-client's niquests has installed urllib3-future over urllib3.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from access.schemas import Role
from tests.trials.lab import bearer, build_lab, make_key

EXAMPLES_PER_OPERATION = 6
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Revoking keys would revoke the fuzzer's own key and turn the rest of the run into 401s.
SKIPPED = {"DELETE /api-keys/{key_id}"}


def _send(http: httpx.Client, case: schemathesis.Case, auth: dict[str, str]) -> httpx.Response:
    request = case.as_transport_kwargs(headers=auth)
    request.pop("cookies", None)  # none are used; httpx wants them on the client
    if isinstance(request.get("data"), bytes | str):
        request["content"] = request.pop("data")
    try:
        return http.request(**request)
    except httpx.LocalProtocolError:  # a header no HTTP client can send (e.g. trailing space)
        reject()


def _fuzz(
    api_url: str,
    http: httpx.Client,
    auth: dict[str, str],
    mode: GenerationMode,
    expect: Callable[[schemathesis.Case, httpx.Response], None] | None = None,
) -> list[str]:
    """Every operation's failures (not only the first), and how many operations were tried."""
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.label in SKIPPED:
            continue
        tried += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:
            response = _send(http, case, auth)
            case.validate_response(response, checks=CHECKS)
            if expect is not None:
                expect(case, response)

        try:
            exercise()
        except Unsatisfiable:  # no parameters to break: nothing negative to send
            assert mode == GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as exc:
            failures.append(f"{operation.label}: {exc}")
    assert tried > 20
    return failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_operation_answers_500_or_breaks_its_schema(
    api_url: str, conn: psycopg.Connection, http: httpx.Client, mode: GenerationMode
) -> None:
    build_lab(conn, http)  # rows with small ids, so generated ids sometimes hit something
    auth = bearer(make_key(conn, Role.COORDINATOR))
    failures = _fuzz(api_url, http, auth, mode)
    assert not failures, "\n\n".join(failures)


PUBLIC = {"GET /device-schemas"}


def test_without_a_key_every_operation_answers_401_whatever_the_input(
    api_url: str, http: httpx.Client
) -> None:
    def unauthorized(case: schemathesis.Case, response: httpx.Response) -> None:
        if case.operation.label not in PUBLIC:
            assert response.status_code == 401, (response.status_code, response.text[:300])

    failures = _fuzz(api_url, http, {}, GenerationMode.NEGATIVE, expect=unauthorized)
    assert not failures, "\n\n".join(failures)
