"""What Grafana must hold for a database state, and the changes that get it there.

Pure data in, pure data out: `desired_orgs` turns the database's access (grafana.roles) into the
organisations, data sources, folders and dashboards that must exist; `plan` compares them with
Grafana's current state (read by grafana.apply) and returns the actions. The plan never talks to
Grafana, so it is tested against real database states without one.

Users are not managed: company staff are invited to their organisation in Grafana (or arrive by
SSO); an organisation is what confines them, and its one data source is what confines its data.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grafana.roles import DatabaseAccess, DatabaseLogin

DASHBOARDS_DIR = Path(__file__).parent / "dashboards"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
COMPANY_DATASOURCE_UID = "ldl-company"
COORDINATOR_DATASOURCE_UID = "ldl-coordinator"
FOLDER_UID = "ldl"
FOLDER_TITLE = "Living Design Lab"
MANAGED_TAG = "ldl"
REVISION_TAG_PREFIX = "ldl-rev:"
COORDINATOR_ORG_ID = 1  # Grafana's first organisation; file provisioning serves it too
COORDINATOR_KEY = "coordinator"
COMPANY_DASHBOARDS = ("company/trial.json",)
COORDINATOR_DASHBOARDS = ("coordinator/portfolio.json", "coordinator/data_quality.json")
_COMPANY_ORG = re.compile(r"\(ldl company (\d+)\)$")

ActionKind = Literal[
    "create_org",
    "rename_org",
    "delete_org",
    "create_datasource",
    "update_datasource",
    "create_folder",
    "update_folder",
    "upsert_dashboard",
    "delete_dashboard",
]


# ---------------------------------------------------------------------- Grafana's state
@dataclass(frozen=True)
class DatasourceState:
    uid: str
    name: str
    type: str
    url: str
    user: str
    json_data: Mapping[str, Any] = field(default_factory=dict)
    read_only: bool = False  # provisioned from a file: the API cannot change it


@dataclass(frozen=True)
class DashboardState:
    uid: str
    title: str
    folder_uid: str | None
    tags: tuple[str, ...] = ()
    provisioned: bool = False

    @property
    def revision(self) -> str | None:
        found = [t for t in self.tags if t.startswith(REVISION_TAG_PREFIX)]
        return found[0].removeprefix(REVISION_TAG_PREFIX) if found else None


@dataclass(frozen=True)
class OrgState:
    id: int
    name: str
    datasources: tuple[DatasourceState, ...] = ()
    folders: Mapping[str, str] = field(default_factory=dict)  # uid -> title
    dashboards: tuple[DashboardState, ...] = ()


@dataclass(frozen=True)
class GrafanaState:
    orgs: tuple[OrgState, ...] = ()


# ------------------------------------------------------------------------- what we want
@dataclass(frozen=True)
class DatabaseTarget:
    """Where Grafana reaches PostgreSQL (its own view of the network, e.g. `db:5432`)."""

    host: str
    database: str
    sslmode: str = "disable"
    timescaledb: bool = False


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    body: Mapping[str, Any]

    @property
    def revision(self) -> str:
        canonical = json.dumps(self.body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def payload(self, folder_uid: str) -> dict[str, Any]:
        """The body for POST /api/dashboards/db, tagged so the next plan can compare."""
        body = dict(self.body)
        body.pop("id", None)
        body["tags"] = [*body.get("tags", []), REVISION_TAG_PREFIX + self.revision]
        return {"dashboard": body, "folderUid": folder_uid, "overwrite": True}


@dataclass(frozen=True)
class DesiredOrg:
    key: str  # "company:<id>" or "coordinator"
    name: str | None  # None: keep whatever the organisation is called (the coordinator's)
    datasource: Mapping[str, Any]
    dashboards: tuple[Dashboard, ...]
    org_id: int | None = None  # fixed id (the coordinator's organisation)


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    org_key: str
    org_name: str | None
    org_id: int | None = None  # None when the organisation is created by an earlier action
    uid: str | None = None
    payload: Mapping[str, Any] | None = None

    def describe(self) -> str:
        where = self.org_name or f"organisation {self.org_id}"
        target = f" {self.uid}" if self.uid else ""
        return f"grafana: {self.kind.replace('_', ' ')}{target} in {where!r}"


def load_dashboard(name: str, directory: Path = DASHBOARDS_DIR) -> Dashboard:
    body = json.loads((directory / name).read_text())
    return Dashboard(uid=body["uid"], title=body["title"], body=body)


def company_org_name(company_id: int, name: str) -> str:
    return f"{name} (ldl company {company_id})"


def company_id_of_org(org_name: str) -> int | None:
    match = _COMPANY_ORG.search(org_name)
    return int(match.group(1)) if match else None


def datasource_spec(
    uid: str, name: str, login: DatabaseLogin, target: DatabaseTarget
) -> dict[str, Any]:
    """A PostgreSQL data source logging in as `login`; the password goes in secureJsonData."""
    return {
        "uid": uid,
        "name": name,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": target.host,
        "user": login.role,
        "isDefault": True,
        "jsonData": {
            "database": target.database,
            "sslmode": target.sslmode,
            "postgresVersion": 1500,
            "timescaledb": target.timescaledb,
            "maxOpenConns": 5,
            "ldlCredential": login.fingerprint,
        },
        "secureJsonData": {"password": login.password},
    }


def desired_orgs(
    access: DatabaseAccess, target: DatabaseTarget, directory: Path = DASHBOARDS_DIR
) -> list[DesiredOrg]:
    company_dashboards = tuple(load_dashboard(n, directory) for n in COMPANY_DASHBOARDS)
    coordinator_dashboards = tuple(load_dashboard(n, directory) for n in COORDINATOR_DASHBOARDS)
    orgs = [
        DesiredOrg(
            key=COORDINATOR_KEY,
            name=None,
            org_id=COORDINATOR_ORG_ID,
            datasource=datasource_spec(
                COORDINATOR_DATASOURCE_UID,
                "Living Design Lab (all trials)",
                access.coordinator,
                target,
            ),
            dashboards=coordinator_dashboards,
        )
    ]
    for company in access.companies:
        orgs.append(
            DesiredOrg(
                key=f"company:{company.company_id}",
                name=company_org_name(company.company_id, company.name),
                datasource=datasource_spec(
                    COMPANY_DATASOURCE_UID, f"{company.name} trials", company.login, target
                ),
                dashboards=company_dashboards,
            )
        )
    return orgs


# ------------------------------------------------------------------------------- plan
def _datasource_differs(current: DatasourceState, wanted: Mapping[str, Any]) -> bool:
    wanted_json = wanted["jsonData"]
    return (
        current.name != wanted["name"]
        or current.type != wanted["type"]
        or current.url != wanted["url"]
        or current.user != wanted["user"]
        or any(current.json_data.get(k) != v for k, v in wanted_json.items())
    )


def _plan_contents(
    wanted: DesiredOrg, current: OrgState | None, org_name: str | None
) -> list[Action]:
    org_id = current.id if current else wanted.org_id
    actions: list[Action] = []

    def act(
        kind: ActionKind, uid: str | None = None, payload: Mapping[str, Any] | None = None
    ) -> None:
        actions.append(Action(kind, wanted.key, org_name, org_id, uid, payload))

    datasources = {d.uid: d for d in current.datasources} if current else {}
    existing_ds = datasources.get(wanted.datasource["uid"])
    if existing_ds is None:
        act("create_datasource", wanted.datasource["uid"], wanted.datasource)
    elif not existing_ds.read_only and _datasource_differs(existing_ds, wanted.datasource):
        act("update_datasource", wanted.datasource["uid"], wanted.datasource)

    folders = current.folders if current else {}
    if FOLDER_UID not in folders:
        act("create_folder", FOLDER_UID, {"title": FOLDER_TITLE})
    elif folders[FOLDER_UID] != FOLDER_TITLE:
        act("update_folder", FOLDER_UID, {"title": FOLDER_TITLE})

    dashboards = {d.uid: d for d in current.dashboards} if current else {}
    for dashboard in wanted.dashboards:
        have = dashboards.get(dashboard.uid)
        if have is not None and have.provisioned:
            continue  # served from files (the compose stack); the API may not overwrite it
        if have is None or have.revision != dashboard.revision or have.folder_uid != FOLDER_UID:
            act("upsert_dashboard", dashboard.uid, dashboard.payload(FOLDER_UID))
    wanted_uids = {d.uid for d in wanted.dashboards}
    for have in dashboards.values():
        if MANAGED_TAG in have.tags and have.uid not in wanted_uids and not have.provisioned:
            act("delete_dashboard", have.uid)
    return actions


def plan(wanted: Sequence[DesiredOrg], state: GrafanaState) -> list[Action]:
    """The actions, in an order that works: organisations first, removals last."""
    by_id = {org.id: org for org in state.orgs}
    by_company = {
        company_id: org
        for org in state.orgs
        if (company_id := company_id_of_org(org.name)) is not None
    }
    actions: list[Action] = []
    for org in wanted:
        if org.org_id is not None:
            current = by_id.get(org.org_id)
        else:
            current = by_company.get(int(org.key.split(":", 1)[1]))
        if current is None and org.org_id is None:
            actions.append(Action("create_org", org.key, org.name, payload={"name": org.name}))
        elif current is not None and org.name is not None and current.name != org.name:
            actions.append(
                Action("rename_org", org.key, org.name, current.id, payload={"name": org.name})
            )
        actions.extend(
            _plan_contents(org, current, org.name or (current.name if current else None))
        )
    wanted_companies = {org.key for org in wanted}
    for company_id, gone in sorted(by_company.items()):
        if f"company:{company_id}" not in wanted_companies:
            actions.append(Action("delete_org", f"company:{company_id}", gone.name, gone.id))
    return actions
