"""Clusters of a test's own, archiving WAL with pgBackRest into a repository of their own.

Each cluster is initdb'd into a temporary directory and run on a free port as a non-root user
(`postgres` when the tests run as root: PostgreSQL refuses root), with deploy/pgbackrest's own
configuration file, only its paths and port changed. TimescaleDB is preloaded when installed.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port, with_database
from tests.ingest.conftest import broker, publisher  # noqa: F401 - fixtures used here

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_CONF = ROOT / "deploy" / "pgbackrest" / "pgbackrest.conf"
RESTORE_TO_TIME = ROOT / "deploy" / "pgbackrest" / "restore-to-time"
STANZA = "ldl"
# Shorter than production's 60 s so a test waits less; the lag it measures is bounded by it.
TEST_ARCHIVE_TIMEOUT = 10


def _pg_bindir() -> Path | None:
    found = shutil.which("pg_config")
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version)
    if candidates:
        return candidates[-1].parent
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True).stdout.strip()
        return Path(out) if (Path(out) / "initdb").exists() else None
    return None


def _version(path: Path) -> float:
    try:
        return float(path.parts[-3])
    except ValueError:
        return 0.0


def _as_cluster_user() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


class Cluster:
    """One PostgreSQL cluster in `directory`, with pgBackRest's configuration beside it."""

    def __init__(self, directory: Path, bindir: Path, data: Path, port: int) -> None:
        self.directory = directory
        self.bindir = bindir
        self.data = data
        self.port = port
        self.config = directory / "pgbackrest.conf"
        self.repo = directory / "repo"
        self.log = directory / f"postgres-{data.name}.log"

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """As the cluster's user, with pgbackrest reading this cluster's configuration."""
        env = [f"PGBACKREST_CONFIG={self.config}", f"PATH={os.environ['PATH']}"]
        result = subprocess.run(
            [*_as_cluster_user(), "env", *env, *command],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{command} failed ({result.returncode}):\n{result.stderr}")
        return result

    def pgbackrest(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("pgbackrest", f"--stanza={STANZA}", *args)

    def start(self, *settings: str) -> None:
        options = " ".join(
            [f"-p {self.port}", f"-k {self.directory}", *(f"-c {s}" for s in settings)]
        )
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                 "-o", options, "-w", "-t", "120", "start")  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                     "-w", "stop", check=False)  # fmt: skip

    def url(self, dbname: str = "postgres") -> str:
        return with_database(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", dbname)

    def execute(self, query: str, *params: object, dbname: str = "postgres") -> list[tuple]:
        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cursor = conn.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    def wait_promoted(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.execute("SELECT pg_is_in_recovery()")[0][0]:
            if time.monotonic() > deadline:
                raise AssertionError(f"still in recovery:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)


def _write_pgbackrest_conf(cluster: Cluster) -> None:
    """deploy/pgbackrest/pgbackrest.conf, with this cluster's paths and port."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY_CONF)
    parser["global"].update(
        {
            "repo1-path": str(cluster.repo),
            "log-path": str(cluster.directory / "log"),
            "lock-path": str(cluster.directory / "lock"),
            "spool-path": str(cluster.directory / "spool"),
            "log-level-console": "warn",
        }
    )
    parser[STANZA].update(
        {
            "pg1-path": str(cluster.data),
            "pg1-port": str(cluster.port),
            "pg1-socket-path": str(cluster.directory),
            "pg1-user": "postgres",
        }
    )
    with cluster.config.open("w") as out:
        parser.write(out, space_around_delimiters=False)


class Clusters:
    """The clusters a test starts: `make()` one that archives, `restored()` one from its backups."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.made: list[Cluster] = []
        self.directories: list[Path] = []

    def make(self, timescale: bool = False) -> Cluster:
        directory = Path(tempfile.mkdtemp(prefix="ldl-pitr-"))
        self.directories.append(directory)
        directory.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        cluster = Cluster(directory, self.bindir, directory / "data", free_port())
        self.made.append(cluster)
        _write_pgbackrest_conf(cluster)
        cluster.run(str(self.bindir / "initdb"), "-D", str(cluster.data), "-A", "trust",
                    "-U", "postgres", "--no-sync")  # fmt: skip
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "wal_level": "replica",
            "archive_mode": "on",
            # As in docker-compose.yml; the configuration file comes from PGBACKREST_CONFIG.
            "archive_command": f"'pgbackrest --stanza={STANZA} archive-push %p'",
            "archive_timeout": str(TEST_ARCHIVE_TIMEOUT),
            # The test decides what a restore to T must hold from each row's commit time.
            "track_commit_timestamp": "on",
            "max_worker_processes": "16",
        }
        if timescale:
            settings["shared_preload_libraries"] = "'timescaledb'"
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        cluster.start()
        cluster.pgbackrest("stanza-create")
        return cluster

    def restored(self, source: Cluster, data: Path) -> Cluster:
        """A cluster on `data` (restored from `source`'s repository), on a port of its own."""
        cluster = Cluster(source.directory, self.bindir, data, free_port())
        self.made.append(cluster)
        return cluster

    def close(self) -> None:
        for cluster in reversed(self.made):
            cluster.stop()
        for directory in self.directories:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def clusters() -> Iterator[Clusters]:
    if not shutil.which("pgbackrest"):
        pytest.skip("pgbackrest is not installed (.ci/run installs Debian's pgbackrest)")
    bindir = _pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's server binaries (initdb) are not installed")
    made = Clusters(bindir)
    yield made
    made.close()


def timescale_installed(bindir: Path | None = None) -> bool:
    bindir = bindir or _pg_bindir()
    return bindir is not None and (bindir.parent / "lib" / "timescaledb.so").exists()
