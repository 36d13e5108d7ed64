"""The thin part of `ldl grafana sync`: read Grafana's state and carry out a plan, via grafana-client.

Everything that decides lives in grafana.plan (tested against real database states); this file
only maps actions onto Grafana's HTTP API. Acting inside an organisation is done with the
`X-Grafana-Org-Id` header; the admin user is a member of every organisation it creates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from grafana_client import GrafanaApi

from grafana.plan import (
    MANAGED_TAG,
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
from infra.db import connection, node_addresses
from infra.errors import ConfigError
from infra.migrate import timescale_enabled
from infra.settings import Settings

_ORG_HEADER = "X-Grafana-Org-Id"


@contextmanager
def in_org(api: GrafanaApi, org_id: int) -> Iterator[GrafanaApi]:
    headers = api.client.s.headers
    previous = headers.get(_ORG_HEADER)
    headers[_ORG_HEADER] = str(org_id)
    try:
        yield api
    finally:
        if previous is None:
            headers.pop(_ORG_HEADER, None)
        else:
            headers[_ORG_HEADER] = previous


def _datasource(item: dict[str, Any]) -> DatasourceState:
    return DatasourceState(
        uid=item.get("uid", ""),
        name=item.get("name", ""),
        type=item.get("type", ""),
        url=item.get("url", ""),
        user=item.get("user", ""),
        json_data=item.get("jsonData") or {},
        read_only=bool(item.get("readOnly")),
    )


def read_state(api: GrafanaApi) -> GrafanaState:
    orgs = []
    for org in api.organizations.list_organization():
        with in_org(api, org["id"]):
            datasources = tuple(_datasource(d) for d in api.datasource.list_datasources())
            folders = {f["uid"]: f["title"] for f in api.folder.get_all_folders()}
            dashboards = []
            for hit in api.search.search_dashboards(tag=MANAGED_TAG, type_="dash-db"):
                found = api.dashboard.get_dashboard(hit["uid"])
                meta, body = found.get("meta", {}), found.get("dashboard", {})
                dashboards.append(
                    DashboardState(
                        uid=hit["uid"],
                        title=body.get("title", hit.get("title", "")),
                        folder_uid=meta.get("folderUid") or None,
                        tags=tuple(body.get("tags", [])),
                        provisioned=bool(meta.get("provisioned")),
                    )
                )
        orgs.append(OrgState(org["id"], org["name"], datasources, folders, tuple(dashboards)))
    return GrafanaState(tuple(orgs))


def apply_actions(api: GrafanaApi, actions: Sequence[Action]) -> list[str]:
    created: dict[str, int] = {}
    done = []
    for action in actions:
        payload = dict(action.payload or {})
        if action.kind == "create_org":
            created[action.org_key] = int(api.organization.create_organization(payload)["orgId"])
        elif action.kind == "rename_org":
            api.organizations.update_organization(action.org_id, payload)
        elif action.kind == "delete_org":
            api.organizations.delete_organization(action.org_id)
        else:
            org_id = action.org_id or created[action.org_key]
            with in_org(api, org_id):
                _apply_in_org(api, action, payload)
        done.append(action.describe())
    return done


def _apply_in_org(api: GrafanaApi, action: Action, payload: dict[str, Any]) -> None:
    if action.kind == "create_datasource":
        api.datasource.create_datasource(payload)
    elif action.kind == "update_datasource":
        api.datasource.update_datasource_by_uid(action.uid, payload)
    elif action.kind == "create_folder":
        api.folder.create_folder(payload["title"], uid=action.uid)
    elif action.kind == "update_folder":
        api.folder.update_folder(action.uid, title=payload["title"], overwrite=True)
    elif action.kind == "upsert_dashboard":
        api.dashboard.update_dashboard(payload)
    elif action.kind == "delete_dashboard":
        api.dashboard.delete_dashboard(action.uid)
    else:
        raise ValueError(f"unknown action {action.kind}")


def database_target(settings: Settings, timescaledb: bool) -> DatabaseTarget:
    """Grafana's way to PostgreSQL: LDL_GRAFANA_DATABASE_HOST if set, else the database URL's."""
    url = settings.require_database_url()
    # Grafana takes one host: of a multi-host URL the first (it only reads; a standby serves).
    host = getattr(settings, "grafana_database_host", None) or node_addresses(url)[0].replace(
        "local socket", "localhost"
    )
    return DatabaseTarget(
        host=host, database=urlsplit(url).path.lstrip("/"), timescaledb=timescaledb
    )


def sync_grafana(settings: Settings) -> list[str]:
    """`ldl grafana sync`: database roles first (a removed company loses access at once), then
    Grafana. Returns what changed; an already synced state returns []."""
    if not settings.grafana_url:
        raise ConfigError("LDL_GRAFANA_URL is not set (e.g. http://grafana:3000)")
    if not settings.grafana_admin_password:
        raise ConfigError("LDL_GRAFANA_ADMIN_PASSWORD is not set")
    with connection(settings.require_database_url(), as_app=False) as conn:
        access = provision_company_roles(
            conn,
            prefix=getattr(settings, "grafana_role_prefix", None),
            coordinator_password=getattr(settings, "grafana_coordinator_db_password", None),
        )
        target = database_target(settings, timescale_enabled(conn))
    api = GrafanaApi.from_url(
        settings.grafana_url,
        credential=(settings.grafana_admin_user, settings.grafana_admin_password),
    )
    actions = plan(desired_orgs(access, target), read_state(api))
    return [*access.changes, *apply_actions(api, actions)]
