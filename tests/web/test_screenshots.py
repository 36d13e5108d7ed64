"""Screenshots of the main pages, for the README (`make screenshots` writes docs/screenshots/);
each page is also checked for form fields without a label.

In the ordinary test run they go to a temporary folder: the pages still render in a real browser.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.web.browser import Browser
from tests.web.conftest import DemoLab

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


def test_screenshots_of_the_main_pages(browser: Browser, demo_lab: DemoLab, tmp_path: Path) -> None:
    """The Danish demo lab, as `make demo` seeds it, with some weeks of the sensor beds' data."""
    folder = DOCS if os.environ.get("LDL_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    trial = demo_lab.trials[0]
    b = browser
    b.driver.delete_all_cookies()
    b.go("/app/login")
    shots = [_shoot(b, folder, "01-sign-in")]
    b.sign_in(demo_lab.coordinator.email, demo_lab.coordinator.password)
    shots.append(_shoot(b, folder, "02-portfolio"))
    b.go("/app/trials/new")
    shots.append(_shoot(b, folder, "03-new-trial"))
    b.go(f"/app/trials/{trial}")
    shots.append(_shoot(b, folder, "04-trial-coordinator"))
    b.go(f"/app/trials/{trial}/time-motion")
    shots.append(_shoot(b, folder, "09-time-motion"))
    b.go(f"/app/participants/{demo_lab.participants[0]}")
    shots.append(_shoot(b, folder, "05-participant-consent"))
    b.find("#mode-erase").click()
    b.submit("#withdraw button[type=submit]")
    shots.append(_shoot(b, folder, "06-erase-confirmation"))
    b.go(f"/app/devices?trial_id={trial}")
    b.fill("#id", "bed-kb-07")
    b.choose("#device_type", value="sensor_bed")
    b.choose("#company_id", value=str(demo_lab.company.company_id))
    b.submit()
    shots.append(_shoot(b, folder, "07-device-secret"))
    b.sign_in(demo_lab.company.email, demo_lab.company.password)
    b.go(f"/app/trials/{trial}")
    shots.append(_shoot(b, folder, "08-trial-company"))
    assert all(path.stat().st_size > 10_000 for path in shots)
