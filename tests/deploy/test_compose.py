"""docker-compose.yml is for real deployments: it must stay valid and agree with the code."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.settings import Settings
from ldl.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def compose_config() -> dict:
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


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
