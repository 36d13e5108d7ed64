"""A coordinator sets up a trial in the browser, end to end, and sees the first reading counted."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from i18n import TIMEZONE
from tests.web.browser import Browser
from tests.web.conftest import Person
from tests.web.test_screenshots import DOCS, _shoot

TIMINGS = Path(__file__).parent / "last_setup_timing.txt"


def _local(moment: datetime) -> str:
    return moment.astimezone(TIMEZONE).strftime("%Y-%m-%dT%H:%M")


def test_a_coordinator_sets_up_a_trial_and_sees_its_first_reading(
    browser: Browser, coordinator: Person, ingest_worker: Any, db_url: str
) -> None:
    b = browser
    b.sign_in(coordinator.email, coordinator.password)
    assert b.path == "/app/" and "Alle afprøvninger" in b.text  # Danish by default

    # The registry: a company, a care home and its unit.
    b.click_link("Virksomheder")
    b.fill("#name", "Sengeteknik A/S")
    b.fill("#cvr", "12345678")
    b.submit()
    assert "Sengeteknik A/S" in b.text
    b.click_link("Plejecentre")
    b.fill("#name", "Plejecenter Kolding Å")
    b.fill("#municipality", "Kolding")
    b.submit()
    b.fill("#name", "Afdeling Syd")
    b.submit()
    assert "Afdeling Syd" in b.text

    # From "new trial" to the first reading: what the README reports.
    started, visits_before = time.monotonic(), b.visits
    b.click_link("Næste: opret en afprøvning")
    b.choose("#company_id", text="Sengeteknik A/S")
    b.fill("#title", "Sensorsenge på Afdeling Syd")
    b.fill("#product", "SleepWell v2")
    b.choose("#collaboration_form", value="living_design_lab")
    b.check("input[name=site_ids]")
    b.check("input[name=unit_ids]")
    today = datetime.now(TIMEZONE).date()
    b.set_value("#baseline_from", (today - timedelta(days=14)).isoformat())
    b.set_value("#baseline_until", today.isoformat())
    b.set_value("#trial_from", today.isoformat())
    b.set_value("#trial_until", (today + timedelta(days=90)).isoformat())
    b.fill("#staff_hourly_cost", "385.00")
    b.fill("#cost_amount", "48000.00")
    b.fill("#cost_description", "12 sensorsenge")
    b.submit()
    assert b.path.startswith("/app/trials/"), b.text
    trial_id = int(b.path.split("/")[3].split("#")[0])
    assert "kladde" in b.text and "48.000,00" in b.text  # Danish status label and number format
    assert "Sådan kommer afprøvningen i gang" in b.text  # what to do next, on the page
    if os.environ.get("LDL_SCREENSHOTS"):
        _shoot(b, DOCS, "10-new-trial-next-steps")

    # The lifecycle: only the allowed transitions are offered.
    buttons = [e.text for e in b.all("#lifecycle button")]
    assert buttons == ["Gå til: baseline (før)"]
    b.submit("#lifecycle button")
    b.submit("#lifecycle form:first-of-type button")  # baseline → running
    assert "i gang" in b.find("h1").text

    # A participant with a relative's (proxy) consent.
    b.fill("#participant_pseudonym", "P-017")
    b.submit("#participants form button[type=submit]")
    assert b.path.startswith("/app/participants/")
    b.check("#scope-telemetry")
    b.check("#scope-company_dashboards")
    b.find("#given-proxy").click()
    b.fill("#proxy_relation", "datter")
    b.fill("#evidence_ref", "DOC-2026-0142")
    b.set_value("#valid_from", _local(datetime.now(TIMEZONE) - timedelta(hours=1)))
    b.submit("#consent form button[type=submit]")
    assert "Aktivt samtykke" in b.text and "datter" in b.text

    # A device: registered (its secret shown once, with a ready command), then deployed.
    b.click_link("Sensorsenge på Afdeling Syd")
    b.click_link("Registrér eller udrul en enhed")
    b.fill("#id", "bed-kolding-014")
    b.choose("#device_type", value="sensor_bed")
    b.choose("#company_id", text="Sengeteknik A/S")
    b.submit()
    command = b.find("[data-testid=mosquitto-command]").get_attribute("value") or ""
    assert command.startswith("mosquitto_pub") and "bed-kolding-014" in command
    b.click_link("Næste: udrul enheden")
    b.choose("#trial_id", value=str(trial_id))
    b.choose("#place", text="P-017")
    b.submit("#deploy-form button[type=submit]")
    assert b.path.startswith(f"/app/trials/{trial_id}")
    assert b.find("[data-testid=readings-last-hour]").text == "0"

    # The device publishes one reading with the command the page gave; the page counts it.
    subprocess.run(["bash", "-c", command], check=True, timeout=20)
    b.wait(
        lambda: b.find("[data-testid=readings-last-hour]").text == "1",
        timeout=30,
        what="the reading to be counted on the trial page",
    )
    seconds, visits = time.monotonic() - started, b.visits - visits_before
    TIMINGS.write_text(f"{visits} page visits, {seconds:.1f} s\n")
    print(f"new trial -> first reading visible: {visits} page visits, {seconds:.1f} s")

    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT participant_id IS NOT NULL, trial_id FROM telemetry_readings"
        ).fetchall()
    assert stored == [(True, trial_id)]
