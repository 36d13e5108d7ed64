"""LDL_ENVIRONMENT=production refuses a development or placeholder secret in every setting."""

from __future__ import annotations

import pytest

from infra.errors import ConfigError
from infra.settings import load_settings

WEAK = [
    ("LDL_DATABASE_URL", {"database_url": "postgresql://ldl:ldl-dev-only@db:5432/ldl"}),
    ("LDL_DATABASE_URL", {"database_url": "postgresql://ldl:changeme@db:5432/ldl"}),
    ("LDL_MQTT_URL", {"mqtt_url": "mqtt://ldl-ingest:ingest-dev-only@mosquitto:1883"}),
    ("LDL_MQTT_URL", {"mqtt_url": "mqtts://ldl-ingest:password@mosquitto:8883"}),
    ("LDL_GRAFANA_ADMIN_PASSWORD", {"grafana_url": "http://g", "grafana_admin_password": "admin"}),
    ("LDL_GRAFANA_ADMIN_PASSWORD", {"grafana_url": "http://g"}),  # none at all
    (
        "LDL_GRAFANA_ADMIN_PASSWORD",
        {"grafana_url": "http://g", "grafana_admin_password": "grafana-dev-only"},
    ),
    ("LDL_GRAFANA_COORDINATOR_DB_PASSWORD", {"grafana_coordinator_db_password": "coordinator-dev-only"}),
]  # fmt: skip


@pytest.mark.parametrize(("setting", "values"), WEAK)
def test_production_refuses_a_placeholder_secret_naming_the_setting(
    setting: str, values: dict[str, str]
) -> None:
    with pytest.raises(ConfigError, match=setting):
        load_settings(environment="production", **values)
    load_settings(environment="development", **values)  # fine on a laptop


def test_production_accepts_real_secrets_and_urls_without_a_password() -> None:
    load_settings(
        environment="production",
        database_url="postgresql://ldl:Xq7-vT2p9w@db:5432/ldl",
        mqtt_url="mqtt://ldl-ingest:Lm4-z8Rk1c@mosquitto:1883",
        grafana_url="http://grafana:3000",
        grafana_admin_password="Gh5-w2Nq8e",
        grafana_coordinator_db_password="Cp3-y7Ds6a",
    )
    load_settings(environment="production", database_url="postgresql://ldl@db:5432/ldl")
