"""docker-compose.yml is for real deployments: it must stay valid and agree with the code."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from infra.settings import Settings, load_settings
from ldl.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


SECRETS = {
    "LDL_DB_PASSWORD": "db-7f3a9c",
    "LDL_INGEST_MQTT_PASSWORD": "mqtt-51be0d",
    "GRAFANA_ADMIN_PASSWORD": "grafana-c2e871",
    "LDL_GRAFANA_COORDINATOR_DB_PASSWORD": "coord-94d1aa",
}


def render_compose(**secrets: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with exactly these secrets in the environment (and no .env)."""
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    with tempfile.NamedTemporaryFile("w", suffix=".env") as no_env_file:
        return subprocess.run(
            ["docker-compose", "-f", str(COMPOSE), "--env-file", no_env_file.name, "config"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**env, **secrets},
            timeout=60,
        )


def compose_config() -> dict:
    result = render_compose(**SECRETS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("unset", sorted(SECRETS))
def test_the_compose_file_refuses_to_render_without_each_secret(unset: str) -> None:
    result = render_compose(**{k: v for k, v in SECRETS.items() if k != unset})
    assert result.returncode != 0
    assert unset in result.stderr


def test_the_rendered_stack_carries_the_exported_secrets_and_no_default() -> None:
    rendered = render_compose(**SECRETS).stdout
    for secret in SECRETS.values():
        assert secret in rendered
    assert "dev-only" not in rendered and "dev-only" not in COMPOSE.read_text()


def test_every_app_service_accepts_its_settings_in_production() -> None:
    for name, service in compose_config()["services"].items():
        if service.get("image") != "ldl-tracker:latest":
            continue
        env = {k.removeprefix("LDL_").lower(): v for k, v in service["environment"].items()
               if k.startswith("LDL_")}  # fmt: skip
        assert env["environment"] == "production", name
        load_settings(**env)  # a placeholder secret would be a ConfigError


def ldl_commands() -> set[str]:
    import typer.main

    group = typer.main.get_command(app)
    names = set()
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        names.add(name)
        names.update(f"{name} {sub}" for sub in getattr(command, "commands", {}))
    return names


def test_compose_file_is_valid_for_docker_compose() -> None:
    config = compose_config()
    assert {"db", "mosquitto", "api", "ingest", "grafana", "simulator"} <= set(config["services"])
    assert config["services"]["simulator"]["profiles"] == ["demo"]


def test_every_app_service_runs_a_real_ldl_command_with_real_settings() -> None:
    config = compose_config()
    commands = ldl_commands()
    settings_vars = {f"LDL_{name.upper()}" for name in Settings.model_fields}
    for name, service in config["services"].items():
        if service.get("image") != "ldl-tracker:latest":
            continue
        words = [w for w in service["command"] if not w.startswith("-")]
        assert " ".join(words[:2]) in commands or words[0] in commands, (name, words)
        unknown = {
            k for k in service.get("environment", {}) if k.startswith("LDL_")
        } - settings_vars
        assert not unknown, f"{name} sets variables no setting reads: {unknown}"


def test_every_service_has_a_healthcheck_or_is_a_one_shot() -> None:
    config = compose_config()
    for name, service in config["services"].items():
        one_shot = service.get("restart") in ("no", "on-failure")
        assert "healthcheck" in service or one_shot or name == "simulator", name


def test_mosquitto_runs_the_production_config_with_the_registry_files() -> None:
    config = compose_config()
    broker = config["services"]["mosquitto"]
    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    env = config["services"]["api"]["environment"]
    for setting in ("LDL_MOSQUITTO_PASSWORD_FILE", "LDL_MOSQUITTO_ACL_FILE"):
        assert env[setting] in conf, f"{setting} is not the file mosquitto.conf reads"
    assert any("/broker-auth" in str(v) for v in broker["volumes"])
    assert (ROOT / "deploy" / "mosquitto" / "entrypoint.sh").exists()
    assert "max_queued_messages 5000000" in conf and "persistence true" in conf


def test_the_database_archives_wal_with_pgbackrest_into_a_volume_of_its_own() -> None:
    import configparser

    config = compose_config()
    db, backup = config["services"]["db"], config["services"]["backup"]
    settings = dict(arg.split("=", 1) for arg in db["command"] if "=" in arg)
    assert settings["archive_mode"] == "on"
    # The same command tests/ops runs on its clusters (only its configuration file differs).
    assert settings["archive_command"] == "pgbackrest --stanza=ldl archive-push %p"
    assert settings["archive_timeout"] == "60"  # the README's "at most a minute" rests on it
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(ROOT / "deploy" / "pgbackrest" / "pgbackrest.conf")
    repo = conf["global"]["repo1-path"]
    for service in (db, backup):
        assert f"pgbackrest-repo:{repo}:rw" in service["volumes"]
        assert service["environment"]["PGBACKREST_PG1_PATH"] == conf["ldl"]["pg1-path"]
    assert db["environment"]["PGDATA"] == conf["ldl"]["pg1-path"]
    assert backup["image"] == db["image"] and "healthcheck" in backup
    journal = config["services"]["api"]["environment"]["LDL_ERASURE_JOURNAL"]
    assert any(
        v.startswith("erasure-journal:/erasures") for v in config["services"]["api"]["volumes"]
    )
    assert journal.startswith("/erasures/")
    assert "LDL_ERASURE_JOURNAL" in config["services"]["migrate"]["environment"]


def test_the_simulator_waits_until_the_worker_is_subscribed() -> None:
    """Healthy means subscribed (the ready file), so the backfill is not published into the void."""
    services = compose_config()["services"]
    command = services["ingest"]["command"]
    ready_file = command[command.index("--ready-file") + 1]
    assert ready_file in " ".join(services["ingest"]["healthcheck"]["test"])
    assert services["simulator"]["depends_on"]["ingest"]["condition"] == "service_healthy"
