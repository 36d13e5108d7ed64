"""Every kind of page works under its Content-Security-Policy in a real browser: no console
violations, htmx refreshes, app.js runs, the charts draw, the docs render."""

from __future__ import annotations

from typing import Any

from tests.web.browser import Browser
from tests.web.conftest import Person

# ReDoc's sidebar shows Redocly's logo from their CDN; refusing it is the policy's point (the
# docs make no call-outs, and a care home's closed network would not reach it anyway).
REFUSED_ON_PURPOSE = "https://cdn.redoc.ly/"


def _violations(b: Browser) -> list[str]:
    return [
        line
        for line in b.console_problems()
        if "Content Security Policy" in line and REFUSED_ON_PURPOSE not in line
    ]


def test_every_kind_of_page_runs_under_the_csp_without_a_violation(
    browser: Browser, coordinator: Person, seeded: Any
) -> None:
    b = browser
    b.console_problems()  # earlier tests' messages
    b.sign_in(coordinator.email, coordinator.password)

    b.go(f"/app/trials/{seeded.trial_id}")
    assert len(b.all("figure.chart svg")) == 2  # inline SVG charts, drawn without inline style
    assert b.driver.execute_script("return typeof htmx") == "object"
    # htmx-config from the meta element: no injected <style>, no eval
    assert b.driver.execute_script("return htmx.config.includeIndicatorStyles") is False
    # htmx's every-5s refresh goes through (its request is same-origin, its swap no inline code)
    b.driver.execute_script(
        "window.refreshed = 0; document.body.addEventListener('htmx:afterSwap',"
        " () => { window.refreshed += 1; });"
    )
    b.wait(lambda: b.driver.execute_script("return window.refreshed") > 0, 12, "a refresh")

    b.go("/app/companies")
    b.fill("#cvr", "123")
    b.submit()
    b.wait(lambda: b.driver.execute_script("return document.activeElement.id") == "error-summary")

    b.go(f"/app/devices/{seeded.bed_device}")  # the revoke button asks first (app.js, no onsubmit)
    b.find("form[data-confirm] button").click()
    b.wait(lambda: _alert_open(b), what="the confirmation")
    b.driver.switch_to.alert.dismiss()
    assert b.path == f"/app/devices/{seeded.bed_device}"
    assert b.find("form[data-confirm]")  # still there: not revoked

    b.go(f"/app/trials/{seeded.trial_id}/report")
    assert b.find("h1").text  # its inline <style> is allowed by the report's own policy

    b.go("/docs")
    b.wait(lambda: len(b.all(".opblock")) > 10, 15, "Swagger UI's operations")
    b.go("/redoc")
    b.wait(lambda: len(b.all("[data-section-id]")) > 10, 20, "ReDoc's sections")

    assert _violations(b) == []


def _alert_open(b: Browser) -> bool:
    try:
        b.driver.switch_to.alert  # noqa: B018 (raises while there is none)
    except Exception:
        return False
    return True
