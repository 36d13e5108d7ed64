"""Security headers on every response, a policy per kind of page, and gzip on request."""

from __future__ import annotations

import gzip

import httpx
import pytest

from api.headers import (
    APP_POLICY,
    NOTHING_POLICY,
    REDOC_POLICY,
    REPORT_POLICY,
    SecurityHeadersMiddleware,
)

COMMON = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


@pytest.mark.parametrize(
    ("path", "status"),
    [("/", 200), ("/health", 200), ("/openapi.json", 200), ("/trials", 401), ("/nowhere", 404)],
)
def test_api_responses_may_load_nothing_and_never_be_framed(
    http: httpx.Client, path: str, status: int
) -> None:
    response = http.get(path)
    assert response.status_code == status
    assert response.headers["content-security-policy"] == NOTHING_POLICY
    assert "frame-ancestors 'none'" in NOTHING_POLICY and "default-src 'none'" in NOTHING_POLICY
    assert {k: response.headers[k] for k in COMMON} == COMMON


def test_swagger_ui_may_run_only_its_bundle_and_its_one_inline_script_by_hash(
    http: httpx.Client,
) -> None:
    policy = http.get("/docs").headers["content-security-policy"]
    script_src = next(d for d in policy.split("; ") if d.startswith("script-src"))
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert script_src.count("'sha256-") == 2  # the page's start script and the OAuth redirect's
    assert "frame-ancestors 'none'" in policy
    assert http.get("/redoc").headers["content-security-policy"] == REDOC_POLICY
    assert "script-src" not in REDOC_POLICY  # ReDoc runs its bundle only ('self')


def test_the_web_apps_policy_allows_only_its_own_files() -> None:
    assert APP_POLICY.startswith("default-src 'self';")
    assert "unsafe" not in APP_POLICY and "script-src" not in APP_POLICY  # nothing inline
    assert "script-src" not in REPORT_POLICY  # the report runs no script at all


@pytest.mark.parametrize(
    ("path", "policy"),
    [
        ("/trials/3/report", REPORT_POLICY),  # the API's HTML report, as the web app's
        ("/app/trials/3/report", REPORT_POLICY),
        ("/trials/3/report.pdf", NOTHING_POLICY),
        ("/app/trials/3/report.pdf", APP_POLICY),
        ("/app/trials/3", APP_POLICY),
        ("/docs/oauth2-redirect", "swagger"),
        ("/docs-assets/swagger-ui-bundle.js", NOTHING_POLICY),
    ],
)
def test_each_path_gets_the_policy_of_what_it_serves(path: str, policy: str) -> None:
    headers = SecurityHeadersMiddleware(app=None, swagger_policy="swagger")  # type: ignore[arg-type]
    assert headers.policy_for(path) == policy


def test_gzip_when_accepted_and_the_body_decodes_to_the_same(http: httpx.Client) -> None:
    plain = http.get("/openapi.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    with http.stream("GET", "/openapi.json", headers={"Accept-Encoding": "gzip"}) as zipped:
        assert zipped.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in zipped.headers["vary"]
        raw = b"".join(zipped.iter_raw())
    assert len(raw) < len(plain.content) / 4
    assert gzip.decompress(raw) == plain.content
