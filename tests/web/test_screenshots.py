"""Screenshots of the main pages, for the README (`make screenshots` writes docs/screenshots/);
each page is also checked for form fields without a label.

In the ordinary test run they go to a temporary folder: the pages still render in a real browser.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

from access.schemas import Role
from infra.db import connection
from tests.web.browser import Browser
from tests.web.conftest import Person, add_criterion, add_person, add_survey_response

DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


# Visible form fields that no <label> names (nor aria-label): a screen reader would read nothing.
UNLABELLED = """
return [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map(e => e.name || e.id);
"""


def _shoot(b: Browser, folder: Path, name: str) -> Path:
    assert b.driver.execute_script(UNLABELLED) == [], name
    assert b.driver.execute_script("return document.documentElement.lang") in ("da", "en")
    height = b.driver.execute_script("return document.documentElement.scrollHeight")
    b.driver.set_window_size(1280, min(int(height) + 20, 4000))
    path = folder / f"{name}.png"
    assert b.driver.save_screenshot(str(path))
    b.driver.set_window_size(1280, 900)
    return path


def _assess(db_url: str, trial_id: int) -> None:
    """Criteria with each verdict, and a few staff questionnaires, so the trial pages show them."""
    with connection(db_url) as conn:
        night = conn.execute(
            "SELECT id FROM activities WHERE trial_id = %s ORDER BY id LIMIT 1", (trial_id,)
        ).fetchone()
    assert night
    add_criterion(db_url, trial_id, metric="time_saved_pct", target=30, activity_id=night[0])
    add_criterion(db_url, trial_id, metric="payback_months", comparison="at_most", target=3)
    add_criterion(db_url, trial_id, metric="data_completeness_pct", target=95)
    for phase, score in (
        ("baseline", 2),
        ("baseline", 3),
        ("intervention", 4),
        ("intervention", 4),
    ):
        answers = {"time_for_residents": score, "physical_strain": score + 1}
        add_survey_response(
            db_url, trial_id, respondent="staff", phase=phase, answered_on=date(2026, 1, 12),
            answers=answers,
        )  # fmt: skip


def test_screenshots_of_the_main_pages(
    browser: Browser, coordinator: Person, seeded: Any, db_url: str, tmp_path: Path
) -> None:
    folder = DOCS if os.environ.get("LDL_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    _assess(db_url, seeded.trial_id)
    b = browser
    b.driver.delete_all_cookies()
    b.go("/app/login")
    shots = [_shoot(b, folder, "01-sign-in")]
    b.sign_in(coordinator.email, coordinator.password)
    shots.append(_shoot(b, folder, "02-portfolio"))
    b.go("/app/trials/new")
    shots.append(_shoot(b, folder, "03-new-trial"))
    b.go(f"/app/trials/{seeded.trial_id}")
    shots.append(_shoot(b, folder, "04-trial-coordinator"))
    b.go(f"/app/trials/{seeded.trial_id}/time-motion")
    shots.append(_shoot(b, folder, "09-time-motion"))
    b.go(f"/app/participants/{seeded.participant}")
    shots.append(_shoot(b, folder, "05-participant-consent"))
    b.find("#mode-erase").click()
    b.submit("#withdraw button[type=submit]")
    shots.append(_shoot(b, folder, "06-erase-confirmation"))
    b.go(f"/app/devices?trial_id={seeded.trial_id}")
    b.fill("#id", "bed-birkely-07")
    b.choose("#device_type", value="sensor_bed")
    b.choose("#company_id", value=str(seeded.company_a))
    b.submit()
    shots.append(_shoot(b, folder, "07-device-secret"))
    company = add_person(db_url, Person("lab@sengeteknik.dk", Role.COMPANY, seeded.company_a))
    b.sign_in(company.email, company.password)
    b.go(f"/app/trials/{seeded.trial_id}")
    shots.append(_shoot(b, folder, "08-trial-company"))
    assert all(path.stat().st_size > 10_000 for path in shots)
