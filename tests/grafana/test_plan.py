"""The sync's plan against real database states; Grafana's side is plain data."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import psycopg

from grafana.plan import (
    COORDINATOR_ORG_ID,
    Action,
    DashboardState,
    DatabaseTarget,
    DatasourceState,
    GrafanaState,
    OrgState,
    desired_orgs,
    plan,
)
from grafana.roles import provision_company_roles
from tests.grafana.conftest import Seed

TARGET = DatabaseTarget(host="db:5432", database="ldl")
FRESH_GRAFANA = GrafanaState((OrgState(COORDINATOR_ORG_ID, "Main Org."),))


def applied(state: GrafanaState, actions: list[Action]) -> GrafanaState:
    """What Grafana holds after the actions: the applier's effect, as plain data."""
    orgs = {org.id: org for org in state.orgs}
    created: dict[str, int] = {}
    for action in actions:
        org_id = action.org_id or created.get(action.org_key)
        payload = dict(action.payload or {})
        if action.kind == "create_org":
            org_id = max(orgs) + 1
            created[action.org_key] = org_id
            orgs[org_id] = OrgState(org_id, payload["name"])
            continue
        assert org_id is not None
        org = orgs[org_id]
        if action.kind == "delete_org":
            del orgs[org_id]
        elif action.kind == "rename_org":
            orgs[org_id] = replace(org, name=payload["name"])
        elif action.kind in {"create_datasource", "update_datasource"}:
            kept = tuple(d for d in org.datasources if d.uid != action.uid)
            ds = DatasourceState(
                payload["uid"],
                payload["name"],
                payload["type"],
                payload["url"],
                payload["user"],
                payload["jsonData"],
            )
            orgs[org_id] = replace(org, datasources=(*kept, ds))
        elif action.kind in {"create_folder", "update_folder"}:
            orgs[org_id] = replace(org, folders={**org.folders, str(action.uid): payload["title"]})
        elif action.kind == "upsert_dashboard":
            body = payload["dashboard"]
            others = tuple(d for d in org.dashboards if d.uid != action.uid)
            board = DashboardState(
                body["uid"], body["title"], payload["folderUid"], tuple(body["tags"])
            )
            orgs[org_id] = replace(org, dashboards=(*others, board))
        elif action.kind == "delete_dashboard":
            orgs[org_id] = replace(
                org, dashboards=tuple(d for d in org.dashboards if d.uid != action.uid)
            )
    return GrafanaState(tuple(orgs.values()))


def test_two_companies_get_two_orgs_data_sources_folders_and_dashboards(seed: Seed) -> None:
    actions = plan(desired_orgs(seed.access, TARGET), FRESH_GRAFANA)
    kinds = Counter(a.kind for a in actions)
    assert kinds == {
        "create_org": 2,
        "create_datasource": 3,
        "create_folder": 3,
        "upsert_dashboard": 4,
    }
    company_sources = [
        a for a in actions if a.kind == "create_datasource" and a.org_key != "coordinator"
    ]
    for action, company in zip(company_sources, seed.access.companies, strict=True):
        assert action.payload is not None
        assert action.payload["user"] == company.login.role
        assert action.payload["secureJsonData"] == {"password": company.login.password}
        assert action.payload["jsonData"]["database"] == "ldl"
    names = [a.org_name for a in actions if a.kind == "create_org"]
    assert names == [
        f"Alpha Care (ldl company {seed.company_a})",
        f"Beta Robotics (ldl company {seed.company_b})",
    ]


def test_an_already_synced_state_needs_no_changes(seed: Seed) -> None:
    wanted = desired_orgs(seed.access, TARGET)
    synced = applied(FRESH_GRAFANA, plan(wanted, FRESH_GRAFANA))
    assert plan(wanted, synced) == []


def test_a_removed_company_loses_its_organisation_and_its_role(
    admin: psycopg.Connection, seed: Seed
) -> None:
    leaving = admin.execute(
        "INSERT INTO companies (name) VALUES ('Gamma Aps') RETURNING id"
    ).fetchone()[0]
    with_gamma = provision_company_roles(admin)
    admin.commit()
    synced = applied(FRESH_GRAFANA, plan(desired_orgs(with_gamma, TARGET), FRESH_GRAFANA))

    admin.execute("DELETE FROM companies WHERE id = %s", (leaving,))
    without = provision_company_roles(admin)
    admin.commit()
    assert any("dropped role" in change for change in without.changes)
    actions = plan(desired_orgs(without, TARGET), synced)
    assert [(a.kind, a.org_name) for a in actions] == [
        ("delete_org", f"Gamma Aps (ldl company {leaving})")
    ]
    assert plan(desired_orgs(without, TARGET), applied(synced, actions)) == []


def test_renamed_company_new_password_and_changed_dashboard_are_updated(
    admin: psycopg.Connection, seed: Seed
) -> None:
    wanted = desired_orgs(seed.access, TARGET)
    synced = applied(FRESH_GRAFANA, plan(wanted, FRESH_GRAFANA))

    admin.execute(
        "UPDATE companies SET name = 'Alpha Care Nordic' WHERE id = %s", (seed.company_a,)
    )
    role = seed.access.companies[0].login.role
    admin.execute(
        "UPDATE ldl_grafana_private.role_credentials SET password = 'rotated' WHERE role_name = %s",
        (role,),
    )
    access = provision_company_roles(admin)  # keeps the stored password, as the data source must
    admin.commit()
    stale_board = replace(
        next(o for o in synced.orgs if o.id == COORDINATOR_ORG_ID).dashboards[0], tags=("ldl",)
    )
    coordinator = next(o for o in synced.orgs if o.id == COORDINATOR_ORG_ID)
    synced = replace(
        synced,
        orgs=tuple(
            replace(o, dashboards=(stale_board, *o.dashboards[1:])) if o is coordinator else o
            for o in synced.orgs
        ),
    )
    actions = plan(desired_orgs(access, TARGET), synced)
    assert Counter(a.kind for a in actions) == {
        "rename_org": 1,
        "update_datasource": 1,
        "upsert_dashboard": 1,
    }
    update = next(a for a in actions if a.kind == "update_datasource")
    assert update.payload is not None and update.payload["secureJsonData"] == {
        "password": "rotated"
    }


def test_file_provisioned_coordinator_data_source_and_dashboards_are_left_alone(seed: Seed) -> None:
    wanted = desired_orgs(seed.access, TARGET)
    synced = applied(FRESH_GRAFANA, plan(wanted, FRESH_GRAFANA))
    coordinator = next(o for o in synced.orgs if o.id == COORDINATOR_ORG_ID)
    from_files = replace(
        coordinator,
        datasources=tuple(
            replace(d, url="elsewhere:5432", read_only=True) for d in coordinator.datasources
        ),
        dashboards=tuple(
            replace(d, tags=("ldl",), provisioned=True) for d in coordinator.dashboards
        ),
    )
    state = replace(synced, orgs=tuple(from_files if o is coordinator else o for o in synced.orgs))
    assert plan(wanted, state) == []
