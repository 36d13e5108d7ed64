"""A realistic Living Design Lab for the demo: two care homes, three companies, three trials.

In Danish, as a Danish municipality would enter it: names, needs, activities and costs are the
lab's own data, not the interface's, so they are not translated for English readers.

Seeded once (a second run finds the companies and leaves everything as it is). Times are relative
to the first run, so baselines lie in the past and trials are running now.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

SITES = {
    "Plejecenter Kongebro": (
        "Kolding",
        "Kongebrovej 1, 6000 Kolding",
        ["Afsnit Nord", "Afsnit Syd"],
    ),
    "Plejecenter Marielund": ("Kolding", "Marielundvej 4, 6000 Kolding", ["Skovbrynet", "Engen"]),
}
COMPANIES = {
    "SengeSense ApS": ("31234567", "kontakt@sengesense.dk"),
    "DoseRobot A/S": ("32345678", "info@doserobot.dk"),
    "StrømpeHjælp IVS": ("33456789", "hej@stroempehjaelp.dk"),
}


@dataclass(frozen=True)
class TrialSeed:
    company: str
    title: str
    product: str
    need: str
    form: str
    status: str
    site: str
    unit: str
    device_type: str
    device_prefix: str
    activity: str
    event_type: str
    baseline_minutes: float
    with_tech_minutes: float
    participant_count: int
    per_participant_devices: bool
    costs: tuple[tuple[str, float, bool, str], ...]


TRIALS = (
    TrialSeed(
        company="SengeSense ApS",
        title="Sensorsenge i stedet for natlige tilsyn",
        product="SengeSense Night",
        status="running",
        form="living_design_lab",
        need=(
            "Nattevagten vækker beboerne på faste runder; beboerne sover dårligt, og"
            " personalet går langt."
        ),
        site="Plejecenter Kongebro",
        unit="Afsnit Nord",
        device_type="sensor_bed",
        device_prefix="bed-kb",
        activity="Natligt tilsyn",
        event_type="night_check_avoided",
        baseline_minutes=6.0,
        with_tech_minutes=1.5,
        participant_count=6,
        per_participant_devices=True,
        costs=(
            ("devices", 48000, False, "6 sensorsenge"),
            ("licences", 12000, True, "platform"),
            ("training", 8000, False, "oplæring af nattevagter"),
            ("staff_time", 15000, False, "koordinering af afprøvningen"),
        ),
    ),
    TrialSeed(
        company="DoseRobot A/S",
        title="Automatisk medicindispenser til morgenrunden",
        product="DoseRobot Home",
        status="running",
        form="opi",
        need="Medicinrunden tager en stor del af morgenen, og doser bliver af og til glemt.",
        site="Plejecenter Marielund",
        unit="Skovbrynet",
        device_type="medicine_dispenser",
        device_prefix="dose-ml",
        activity="Medicinrunde",
        event_type="dose_dispensed",
        baseline_minutes=4.0,
        with_tech_minutes=1.0,
        participant_count=5,
        per_participant_devices=True,
        costs=(
            ("devices", 30000, False, "5 dispensere"),
            ("licences", 9000, True, "service"),
            ("training", 5000, False, ""),
        ),
    ),
    TrialSeed(
        company="StrømpeHjælp IVS",
        title="Hjælpemiddel til påtagning af kompressionsstrømper",
        product="StrømpeHjælp 2",
        status="baseline",
        form="living_design_lab",
        need="Kompressionsstrømper kræver to medarbejdere og belaster deres ryg.",
        site="Plejecenter Marielund",
        unit="Engen",
        device_type="stocking_aid",
        device_prefix="aid-ml",
        activity="Påtagning af kompressionsstrømper",
        event_type="stocking_on",
        baseline_minutes=9.0,
        with_tech_minutes=4.0,
        participant_count=4,
        per_participant_devices=False,
        costs=(("devices", 6000, False, "2 hjælpemidler"), ("training", 2000, False, "")),
    ),
)


def already_seeded(conn: psycopg.Connection) -> bool:
    return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM companies)").fetchone()[0])  # type: ignore[index]


def _insert(conn: psycopg.Connection, statement: str, params: dict[str, object]) -> int:
    row = conn.execute(statement + " RETURNING id", params).fetchone()
    assert row is not None
    return int(row[0])


def seed_demo_lab(conn: psycopg.Connection, now: datetime | None = None) -> bool:
    """Seed the lab unless it is there already; returns whether it seeded. Caller commits."""
    if already_seeded(conn):
        return False
    now = now or datetime.now(UTC)
    rng = random.Random(2026)
    baseline_from, trial_from = now - timedelta(days=60), now - timedelta(days=30)

    site_ids: dict[str, int] = {}
    unit_ids: dict[tuple[str, str], int] = {}
    for site, (municipality, address, units) in SITES.items():
        site_ids[site] = _insert(
            conn,
            "INSERT INTO sites (name, municipality, address) VALUES (%(n)s, %(m)s, %(a)s)",
            {"n": site, "m": municipality, "a": address},
        )
        for unit in units:
            unit_ids[site, unit] = _insert(
                conn,
                "INSERT INTO units (site_id, name) VALUES (%(s)s, %(n)s)",
                {"s": site_ids[site], "n": unit},
            )
    company_ids = {
        name: _insert(
            conn,
            "INSERT INTO companies (name, cvr, contact_email) VALUES (%(n)s, %(c)s, %(e)s)",
            {"n": name, "c": cvr, "e": email},
        )
        for name, (cvr, email) in COMPANIES.items()
    }
    gateway = "gw-kongebro-1"
    conn.execute(
        "INSERT INTO devices (id, kind, device_type, company_id, serial, firmware, registered_at)"
        " VALUES (%s, 'gateway', 'gateway', %s, 'GW-0001', '1.4.2', %s)",
        (gateway, company_ids["SengeSense ApS"], baseline_from - timedelta(days=7)),
    )
    for seed in TRIALS:
        _seed_trial(
            conn,
            seed,
            rng,
            site_ids,
            unit_ids,
            company_ids,
            gateway,
            baseline_from,
            trial_from,
            now,
        )
    return True


def _seed_trial(
    conn: psycopg.Connection,
    seed: TrialSeed,
    rng: random.Random,
    site_ids: dict[str, int],
    unit_ids: dict[tuple[str, str], int],
    company_ids: dict[str, int],
    gateway: str,
    baseline_from: datetime,
    trial_from: datetime,
    now: datetime,
) -> None:
    site_id, unit_id = site_ids[seed.site], unit_ids[seed.site, seed.unit]
    running = seed.status == "running"
    trial_id = _insert(
        conn,
        "INSERT INTO trials (company_id, title, product, need, collaboration_form, status,"
        " baseline_from, baseline_until, trial_from, trial_until, success_criteria,"
        " staff_hourly_cost) VALUES (%(c)s, %(t)s, %(p)s, %(need)s, %(f)s, %(s)s, %(bf)s,"
        " %(bu)s, %(tf)s, %(tu)s, %(crit)s, 385.00)",
        {
            "c": company_ids[seed.company],
            "t": seed.title,
            "p": seed.product,
            "need": seed.need,
            "f": seed.form,
            "s": seed.status,
            "bf": baseline_from,
            "bu": trial_from,
            "tf": trial_from if running else None,
            "tu": trial_from + timedelta(days=120),
            "crit": f"{seed.activity}: mindst 30 % mindre personaletid pr. gang",
        },
    )
    conn.execute("INSERT INTO trial_sites VALUES (%s, %s)", (trial_id, site_id))
    conn.execute("INSERT INTO trial_units VALUES (%s, %s)", (trial_id, unit_id))
    for status in ("draft", "baseline", "running")[: (3 if running else 2)]:
        conn.execute(
            "INSERT INTO trial_status_history (trial_id, to_status, actor) VALUES (%s, %s, 'seed')",
            (trial_id, status),
        )
    for category, amount, recurring, description in seed.costs:
        conn.execute(
            "INSERT INTO trial_costs (trial_id, category, amount, recurring, description)"
            " VALUES (%s, %s, %s, %s, %s)",
            (trial_id, category, amount, recurring, description),
        )
    activity_id = _insert(
        conn,
        "INSERT INTO activities (trial_id, name, event_type) VALUES (%(t)s, %(n)s, %(e)s)",
        {"t": trial_id, "n": seed.activity, "e": seed.event_type},
    )
    phases = [("baseline", seed.baseline_minutes, baseline_from)]
    if running:
        phases.append(("intervention", seed.with_tech_minutes, trial_from))
    for phase, minutes, start in phases:
        for i in range(12):
            conn.execute(
                "INSERT INTO observations (trial_id, activity_id, phase, duration_minutes,"
                " staff_role, observed_at, site_id, unit_id) VALUES (%s, %s, %s, %s, %s, %s,"
                " %s, %s)",
                (
                    trial_id,
                    activity_id,
                    phase,
                    round(max(0.2, rng.gauss(minutes, minutes / 5)), 2),
                    "social- og sundhedsassistent",
                    start + timedelta(days=i, hours=rng.randint(0, 8)),
                    site_id,
                    unit_id,
                ),
            )

    _seed_assessment(conn, seed, rng, trial_id, activity_id, baseline_from, trial_from, running)

    initials = seed.unit[:2].upper()
    participants: list[int | None] = []
    for number in range(1, seed.participant_count + 1):
        pseudonym = f"{seed.device_prefix.split('-')[1].upper()}-{initials}-{number:02d}"
        participant_id = _insert(
            conn,
            "INSERT INTO participants (trial_id, pseudonym, site_id, unit_id, enrolled_at)"
            " VALUES (%(t)s, %(p)s, %(s)s, %(u)s, %(e)s)",
            {"t": trial_id, "p": pseudonym, "s": site_id, "u": unit_id, "e": baseline_from},
        )
        participants.append(participant_id)
        _seed_consent(conn, participant_id, number, baseline_from, now)

    if seed.per_participant_devices:
        devices = [(f"{seed.device_prefix}-{i + 1:02d}", p) for i, p in enumerate(participants)]
    else:
        devices = [(f"{seed.device_prefix}-{i:02d}", None) for i in (1, 2)]
    for device_id, wearer in devices:
        conn.execute(
            "INSERT INTO devices (id, device_type, company_id, gateway_id, serial, firmware,"
            " registered_at) VALUES (%s, %s, %s, %s, %s, '2.1.0', %s)",
            (
                device_id,
                seed.device_type,
                company_ids[seed.company],
                gateway if seed.device_type == "sensor_bed" else None,
                device_id.upper(),
                baseline_from - timedelta(days=7),
            ),
        )
        conn.execute(
            "INSERT INTO deployments (device_id, trial_id, site_id, unit_id, participant_id,"
            " valid_from) VALUES (%s, %s, %s, %s, %s, %s)",
            (device_id, trial_id, site_id, unit_id, wearer, baseline_from),
        )


def _seed_consent(
    conn: psycopg.Connection, participant_id: int, number: int, since: datetime, now: datetime
) -> None:
    """Most consent; #2 by a relative (proxy); #4 withdrew last week (data kept); the last none."""
    if number == 5:
        return  # no consent: the gate drops this resident's readings
    all_scopes = ["telemetry", "company_dashboards", "evaluation"]
    proxy = number == 2
    withdrawn = number == 4
    conn.execute(
        "INSERT INTO consents (participant_id, version, scopes, given_by, proxy_relation,"
        " evidence_ref, valid_from, valid_until, ended_by, withdrawal_mode)"
        " VALUES (%s, 1, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            participant_id,
            all_scopes if number != 3 else ["telemetry", "company_dashboards"],
            "proxy" if proxy else "participant",
            "datter" if proxy else None,
            f"ESDH-2026-{participant_id:04d}",
            since - timedelta(days=5),
            now - timedelta(days=7) if withdrawn else None,
            "withdrawn" if withdrawn else None,
            "keep" if withdrawn else None,
        ),
    )


def _seed_assessment(
    conn: psycopg.Connection,
    seed: TrialSeed,
    rng: random.Random,
    trial_id: int,
    activity_id: int,
    baseline_from: datetime,
    trial_from: datetime,
    running: bool,
) -> None:
    """Structured success criteria, and MAST surveys: staff in each phase, relatives with it."""
    for metric, comparison, target, activity in (
        ("time_saved_pct", "at_least", 30, activity_id),
        ("data_completeness_pct", "at_least", 95, None),
        ("payback_months", "at_most", 24, None),
    ):
        conn.execute(
            "INSERT INTO success_criteria (trial_id, metric, comparison, target, activity_id)"
            " VALUES (%s, %s, %s, %s, %s)",
            (trial_id, metric, comparison, target, activity),
        )
    # Staff find the task heavier before the technology than with it.
    phases = [("baseline", baseline_from, 2.5)] + ([("intervention", trial_from, 4.0)] * running)
    for phase, start, centre in phases:
        for i in range(6):
            answers = {
                question: min(5, max(1, round(rng.gauss(centre, 0.8))))
                for question in ("time_for_residents", "physical_strain", "fits_routines")
            }
            if phase == "intervention":
                answers["recommend"] = min(5, max(1, round(rng.gauss(4.2, 0.7))))
            conn.execute(
                "INSERT INTO survey_responses (trial_id, respondent, phase, answered_on, answers)"
                " VALUES (%s, 'staff', %s, %s, %s)",
                (trial_id, phase, (start + timedelta(days=14 + i)).date(), Jsonb(answers)),
            )
    if running:
        for i in range(3):
            answers = {q: min(5, max(1, round(rng.gauss(4.0, 0.7)))) for q in ("comfort", "safety")}
            conn.execute(
                "INSERT INTO survey_responses (trial_id, respondent, phase, answered_on, answers)"
                " VALUES (%s, 'relative', 'intervention', %s, %s)",
                (trial_id, (trial_from + timedelta(days=20 + i)).date(), Jsonb(answers)),
            )
