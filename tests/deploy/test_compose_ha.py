"""The compose stack's HA variant (deploy/patroni/docker-compose.ha.yml over docker-compose.yml):
valid, refusing to render without its secrets, and running what the failover test proves."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from infra.settings import load_settings
from tests.deploy.test_compose import COMPOSE, ROOT, SECRETS
from tests.ops.patroni_cluster import Etcd, PatroniNode

HA = ROOT / "deploy" / "patroni" / "docker-compose.ha.yml"
PATRONI = ROOT / "deploy" / "patroni" / "patroni.yml"
HA_SECRETS = {
    **SECRETS,
    "LDL_PATRONI_SUPERUSER_PASSWORD": "super-3b71c0",
    "LDL_PATRONI_REPLICATION_PASSWORD": "repl-0d9e4f",
}
NODES = "db:5432,db-2:5432"


def render_ha(**env: str) -> subprocess.CompletedProcess[str]:
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    clean = {k: v for k, v in os.environ.items() if k not in HA_SECRETS and k != "LDL_DB_NODES"}
    files = ["-f", str(COMPOSE), "-f", str(HA)]
    with tempfile.NamedTemporaryFile("w", suffix=".env") as no_env_file:
        return subprocess.run(
            ["docker-compose", *files, "--env-file", no_env_file.name, "config"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**clean, **env},
            timeout=60,
        )


def test_the_ha_variant_runs_two_patroni_nodes_and_etcd_and_the_app_finds_the_primary() -> None:
    result = render_ha(**HA_SECRETS, LDL_DB_NODES=NODES)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"etcd", "db", "db-2"} <= set(services)
    for node in ("db", "db-2"):
        assert services[node]["image"].startswith("timescale/timescaledb-ha:"), node
        assert services[node]["command"] == ["patroni", "/etc/patroni/patroni.yml"]
        assert services[node]["environment"]["PATRONI_NAME"] == node
    for name, service in services.items():
        if service.get("image") != "ldl-tracker:latest":
            continue
        url = service["environment"]["LDL_DATABASE_URL"]
        assert f"@{NODES}/ldl?target_session_attrs=read-write" in url, name
        env = {k.removeprefix("LDL_").lower(): v for k, v in service["environment"].items()
               if k.startswith("LDL_")}  # fmt: skip
        load_settings(**env)  # the multi-host URL passes production's checks


@pytest.mark.parametrize(
    "unset", ["LDL_PATRONI_SUPERUSER_PASSWORD", "LDL_PATRONI_REPLICATION_PASSWORD"]
)
def test_the_ha_variant_refuses_to_render_without_each_patroni_secret(unset: str) -> None:
    result = render_ha(**{k: v for k, v in HA_SECRETS.items() if k != unset})
    assert result.returncode != 0
    assert unset in result.stderr


def test_patroni_runs_what_the_failover_test_proves() -> None:
    """Synchronous (not strict), failing over at once on a dead postmaster, rewinding the old
    primary, with the same timings: the settings the test cluster runs."""
    deployed = yaml.safe_load(PATRONI.read_text())
    tested = _test_cluster_config()
    same = ("synchronous_mode", "synchronous_mode_strict", "primary_start_timeout")
    for key in (*same, "ttl", "loop_wait", "retry_timeout"):
        assert deployed["bootstrap"]["dcs"][key] == tested["bootstrap"]["dcs"][key], key
    for key in ("use_pg_rewind", "use_slots"):
        assert deployed["bootstrap"]["dcs"]["postgresql"][key] is True, key
    parameters = deployed["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert parameters["shared_preload_libraries"] == "timescaledb"
    post_init = ROOT / "deploy" / "patroni" / "post_init.sh"
    assert deployed["bootstrap"]["post_init"] == f"sh /etc/patroni/{post_init.name}"
    assert "CREATE ROLE ldl" in post_init.read_text()


def _test_cluster_config() -> dict:
    """The configuration the test cluster writes for a node (written only, nothing started)."""
    directory = Path(tempfile.mkdtemp(prefix="ldl-patroni-config-"))
    try:
        node = PatroniNode("node1", directory, "ldl", Etcd(directory))
        return dict(yaml.safe_load(node.write_config().read_text()))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_ha_nodes_run_the_ha_image_as_it_is_and_the_single_node_backup_stays_off() -> None:
    import yaml

    result = render_ha(**HA_SECRETS, LDL_DB_NODES=NODES)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    for node in ("db", "db-2"):
        build = services[node]["build"]
        assert build["dockerfile"] == "patroni/Dockerfile"  # not the single node's Alpine build
        assert build["args"]["BASE"] == services[node]["image"]
        assert services[node]["environment"]["PGDATA"] == "/home/postgres/pgdata/data"
    assert services["backup"]["profiles"] == ["single-node"]
    dockerfile = (ROOT / "deploy" / "patroni" / "Dockerfile").read_text()
    assert [line for line in dockerfile.splitlines() if line and not line.startswith("#")] == [
        "ARG BASE=timescale/timescaledb-ha:pg15-ts2.28",
        "FROM ${BASE}",
    ]
