"""File provisioning for the compose stack agrees with what the sync and the dashboards expect."""

from __future__ import annotations

from pathlib import Path

import yaml

from grafana.plan import (
    COORDINATOR_DASHBOARDS,
    COORDINATOR_DATASOURCE_UID,
    COORDINATOR_ORG_ID,
    DASHBOARDS_DIR,
    DATASOURCE_TYPE,
    FOLDER_UID,
)

PROVISIONING = Path(DASHBOARDS_DIR).parent / "provisioning"


def test_coordinator_data_source_file_matches_the_dashboards() -> None:
    [source] = yaml.safe_load((PROVISIONING / "datasources" / "ldl.yaml").read_text())[
        "datasources"
    ]
    assert source["uid"] == COORDINATOR_DATASOURCE_UID
    assert source["type"] == DATASOURCE_TYPE
    assert source["orgId"] == COORDINATOR_ORG_ID
    assert source["user"].endswith("_coordinator")
    assert "password" in source["secureJsonData"]


def test_dashboard_provider_serves_exactly_the_coordinator_dashboards() -> None:
    [provider] = yaml.safe_load((PROVISIONING / "dashboards" / "ldl.yaml").read_text())["providers"]
    assert provider["orgId"] == COORDINATOR_ORG_ID and provider["folderUid"] == FOLDER_UID
    served = sorted(
        f"coordinator/{p.name}" for p in (DASHBOARDS_DIR / "coordinator").glob("*.json")
    )
    assert served == sorted(COORDINATOR_DASHBOARDS)
