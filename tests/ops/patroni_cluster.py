"""A Patroni cluster on one machine for tests: one etcd, two PostgreSQL nodes under Patroni.

Each node has its own ports (PostgreSQL, Patroni's REST API) and data directory under one
temporary directory. PostgreSQL refuses to run as root, so as root Patroni runs as `postgres`.
TimescaleDB is preloaded on both nodes where it is installed. The cluster runs Patroni's
synchronous mode (not strict) and fails over at once when the primary's postmaster dies
(`primary_start_timeout: 0`), as `deploy/patroni/` does.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import free_port


def _newest_postgresql() -> Path:
    """Debian's newest PostgreSQL (/usr/lib/postgresql/<major>), the one the cluster runs."""
    majors = sorted(
        (
            path
            for path in Path("/usr/lib/postgresql").glob("*")
            if (path / "bin/postgres").exists()
        ),
        key=lambda path: int(path.name) if path.name.isdigit() else 0,
    )
    return majors[-1] if majors else Path("/usr/lib/postgresql/15")


PG_HOME = _newest_postgresql()
PG_BIN = PG_HOME / "bin"
TIMESCALEDB_LIBRARY = PG_HOME / "lib/timescaledb.so"


def missing_tools() -> str | None:
    """Why the cluster cannot run here, or None."""
    missing = [name for name in ("patroni", "etcd") if shutil.which(name) is None]
    if not (PG_BIN / "postgres").exists():
        missing.append(str(PG_BIN / "postgres"))
    if missing:
        return (
            f"{', '.join(missing)} not installed (Debian: patroni, etcd-server, postgresql);"
            " the failover tests need them"
        )
    return None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def _as_postgres() -> dict[str, Any]:
    """Popen arguments that drop root to the postgres user (PostgreSQL refuses root)."""
    if os.getuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres"}


def _give_to_postgres(path: Path) -> None:
    if os.getuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _clean_env(home: Path) -> dict[str, str]:
    # Debian's patroni runs on the system Python: none of this virtualenv's settings.
    keep = ("PATH", "LANG", "LC_ALL", "TZ")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["PATH"] = ":".join(
        part for part in env.get("PATH", "/usr/bin:/bin").split(":") if ".venv" not in part
    )
    env["HOME"] = str(home)
    return env


@dataclass
class Etcd:
    directory: Path
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        log = (self.directory / "etcd.log").open("ab")
        self.process = subprocess.Popen(
            [
                "etcd",
                "--name=ldl-test",
                f"--data-dir={self.directory / 'etcd-data'}",
                f"--listen-client-urls=http://{self.endpoint}",
                f"--advertise-client-urls=http://{self.endpoint}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=ldl-test={peer}",
                "--initial-cluster-state=new",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self._healthy, 20, "etcd to answer")

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"etcd exited:\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as answer:
                return bool(json.loads(answer.read()).get("health") == "true")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log(self) -> str:
        path = self.directory / "etcd.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class PatroniNode:
    name: str
    directory: Path
    scope: str
    etcd: Etcd
    pg_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.pg_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "patroni.log"

    def url(self, database: str = "postgres", attrs: str = "any") -> str:
        return f"postgresql://postgres@{self.address}/{database}?target_session_attrs={attrs}"

    def write_config(self) -> Path:
        parameters: dict[str, Any] = {
            "max_connections": 100,
            "max_worker_processes": 16,
            "wal_keep_size": "256MB",
            "unix_socket_directories": str(self.directory),
        }
        if TIMESCALEDB_LIBRARY.exists():
            parameters.update(
                {
                    "shared_preload_libraries": "timescaledb",
                    "timescaledb.max_background_workers": 8,
                    "timescaledb.telemetry_level": "off",
                }
            )
        config = {
            "scope": self.scope,
            "namespace": "/ldl-test/",
            "name": self.name,
            "log": {"level": "INFO"},
            "restapi": {
                "listen": f"127.0.0.1:{self.api_port}",
                "connect_address": f"127.0.0.1:{self.api_port}",
            },
            "etcd3": {"hosts": [self.etcd.endpoint]},
            "bootstrap": {
                "dcs": {
                    # As deploy/patroni/patroni.yml (a test keeps the two in step).
                    "ttl": 30,
                    "loop_wait": 2,
                    "retry_timeout": 10,
                    "maximum_lag_on_failover": 16 * 1024 * 1024,
                    "synchronous_mode": True,
                    "synchronous_mode_strict": False,
                    "primary_start_timeout": 0,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "wal_log_hints": "on",
                            "max_wal_senders": 5,
                            "max_replication_slots": 5,
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
            },
            "postgresql": {
                "listen": self.address,
                "connect_address": self.address,
                "data_dir": str(self.data_dir),
                "bin_dir": str(PG_BIN),
                "pgpass": str(self.directory / "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": "test-only"},
                    "replication": {"username": "replicator", "password": "test-only"},
                },
                "pg_hba": [
                    "local all all trust",
                    "host all all 127.0.0.1/32 trust",
                    "host replication replicator 127.0.0.1/32 trust",
                ],
                "parameters": parameters,
            },
        }
        path = self.directory / "patroni.yml"
        path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        return path

    def start(self) -> None:
        self.directory.mkdir(exist_ok=True)
        self.directory.chmod(0o700)
        _give_to_postgres(self.directory)
        config = self.write_config()
        _give_to_postgres(config)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            ["patroni", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_clean_env(self.directory),
            cwd=self.directory,
            **_as_postgres(),
        )

    def status(self) -> dict[str, Any] | None:
        """Patroni's view of this node (GET /patroni), or None when it does not answer."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.api_port}/patroni", timeout=2
            ) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as exc:  # 503 still carries the status
            return dict(json.loads(exc.read()))
        except (OSError, ValueError):
            return None

    def role(self) -> str | None:
        status = self.status()
        if not status or status.get("state") != "running":
            return None
        return str(status.get("role"))

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill_postmaster(self) -> int:
        pid = self.postmaster_pid()
        assert pid is not None, f"{self.name} has no running postmaster"
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill(self) -> None:
        """The machine dies: Patroni first (so it restarts nothing), then PostgreSQL."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        pid = self.postmaster_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not _alive(pid), 10, f"{self.name}'s postmaster to die")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # Patroni stops PostgreSQL, then itself
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        pid = self.postmaster_pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child of a killed Patroni still answers signal 0; it no longer listens.
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


class PatroniCluster:
    def __init__(self, size: int = 2) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="ldl-patroni-"))
        self.directory.chmod(0o755)
        self.etcd = Etcd(self.directory)
        scope = f"ldl-{uuid.uuid4().hex[:8]}"
        self.nodes = [
            PatroniNode(f"node{index}", self.directory / f"node{index}", scope, self.etcd)
            for index in range(1, size + 1)
        ]

    def start(self, timeout: float = 120) -> None:
        self.etcd.start()
        first, *others = self.nodes
        first.start()
        wait_for(lambda: first.role() in ("master", "primary"), timeout, "node1 to bootstrap")
        for node in others:
            node.start()
        self.wait_healthy(timeout)

    def multi_host_url(self, database: str, nodes: list[PatroniNode] | None = None) -> str:
        hosts = ",".join(node.address for node in nodes or self.nodes)
        return f"postgresql://postgres@{hosts}/{database}?target_session_attrs=read-write"

    def leader(self) -> PatroniNode | None:
        leaders = [node for node in self.nodes if node.role() in ("master", "primary")]
        return leaders[0] if len(leaders) == 1 else None

    def replicas(self) -> list[PatroniNode]:
        return [node for node in self.nodes if node.role() == "replica"]

    def sync_standby(self) -> PatroniNode | None:
        """The replica the leader names as its synchronous standby (from Patroni's /cluster)."""
        leader = self.leader()
        if leader is None:
            return None
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{leader.api_port}/cluster", timeout=2
            ) as answer:
                members = json.loads(answer.read())["members"]
        except (OSError, ValueError, KeyError):
            return None
        names = {m["name"] for m in members if m.get("role") == "sync_standby"}
        synced = [node for node in self.nodes if node.name in names]
        return synced[0] if synced else None

    def wait_healthy(self, timeout: float = 120) -> PatroniNode:
        """Until one leader streams synchronously to every other node; returns the leader."""

        def healthy() -> PatroniNode | None:
            leader = self.leader()
            if leader is None or len(self.replicas()) != len(self.nodes) - 1:
                return None
            return leader if self.sync_standby() is not None else None

        try:
            return wait_for(healthy, timeout, "one leader and a synchronous standby", step=0.25)
        except AssertionError:
            for node in self.nodes:
                print(f"--- {node.name} (patroni.log)\n{node.log()[-3000:]}")
            raise

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.etcd.stop()

    def logs(self) -> str:
        parts = [f"--- {node.name}\n{node.log()[-4000:]}" for node in self.nodes]
        return "\n".join([*parts, f"--- etcd\n{self.etcd.log()[-1500:]}"])

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
