"""Fixtures on real services: PostgreSQL (a migrated template cloned per test) and MQTT brokers.

Defaults are this machine's services (PostgreSQL on 127.0.0.1:5432, Mosquitto on 127.0.0.1:1883);
LDL_TEST_ADMIN_DATABASE_URL and LDL_TEST_MQTT_URL point elsewhere; when neither the setting nor the
default is reachable the embedded services from `ldl.embedded` are started instead.

Every database test runs once per database path: `plain` always, `timescale` where the cluster has
TimescaleDB installed and preloaded (one template database per path on the same cluster); where
it has not, the run ends with one line saying the TimescaleDB path was skipped.
LDL_TEST_DATABASE_PATHS (e.g. `plain`) narrows the paths.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import uvicorn
from psycopg import sql

from infra.db import connect
from infra.migrate import apply_migrations, timescale_preloaded
from infra.settings import Settings

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ldl_environment(**settings: str) -> dict[str, str]:
    """The environment for an `ldl` subprocess: this one's, without the shell's own LDL_* settings
    (a developer's exported LDL_DATABASE_URL must not leak into a test), plus `settings`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("LDL_")}, **settings}


def run_ldl(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`ldl <args>` as an operator runs it, with only `settings` for configuration."""
    return subprocess.run(
        [sys.executable, "-m", "ldl", *args],
        env=ldl_environment(**settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------------ PostgreSQL
@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("LDL_TEST_ADMIN_DATABASE_URL", DEFAULT_ADMIN_URL)
    parts = urlsplit(url)
    if _reachable(parts.hostname or "127.0.0.1", parts.port or 5432):
        yield url
        return
    from ldl.embedded import start_postgres

    service = start_postgres(tmp_path_factory.mktemp("embedded-pg"))
    try:
        yield with_database(service.url, "postgres")
    finally:
        service.stop()


def _admin(pg_admin_url: str) -> psycopg.Connection:
    return psycopg.connect(pg_admin_url, autocommit=True)


def create_database(pg_admin_url: str, name: str, template: str | None = None) -> str:
    with _admin(pg_admin_url) as admin:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        admin.execute(statement)
    return with_database(pg_admin_url, name)


def drop_database(pg_admin_url: str, name: str) -> None:
    with _admin(pg_admin_url) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


DATABASE_PATHS = ("plain", "timescale")


@dataclass
class _PathChoice:
    paths: list[str]
    skipped: str | None  # why the TimescaleDB path does not run, when it does not


_path_choice: _PathChoice | None = None


def _choose_database_paths() -> _PathChoice:
    """Once per run, at collection: which paths this cluster can run."""
    global _path_choice
    if _path_choice is not None:
        return _path_choice
    url = os.environ.get("LDL_TEST_ADMIN_DATABASE_URL", DEFAULT_ADMIN_URL)
    parts = urlsplit(url)
    target = f"{parts.hostname}:{parts.port or 5432}"
    skipped: str | None = None
    if not _reachable(parts.hostname or "127.0.0.1", parts.port or 5432):
        skipped = "the embedded PostgreSQL has no TimescaleDB"
    else:
        with psycopg.connect(url, autocommit=True) as admin:
            installed = admin.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone()
            if installed is None:
                skipped = f"TimescaleDB is not installed on {target}"
            elif not timescale_preloaded(admin):
                skipped = f"TimescaleDB is not in shared_preload_libraries on {target}"
    paths = ["plain"] if skipped else list(DATABASE_PATHS)
    wanted = os.environ.get("LDL_TEST_DATABASE_PATHS")
    if wanted:
        chosen = [p.strip() for p in wanted.split(",") if p.strip()]
        unknown = set(chosen) - set(DATABASE_PATHS)
        if unknown:
            raise pytest.UsageError(f"LDL_TEST_DATABASE_PATHS: unknown path(s) {sorted(unknown)}")
        if "timescale" in paths and "timescale" not in chosen:
            skipped = "LDL_TEST_DATABASE_PATHS leaves it out"
        paths = [p for p in paths if p in chosen]
    _path_choice = _PathChoice(paths, skipped)
    return _path_choice


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_path" in metafunc.fixturenames:
        metafunc.parametrize("database_path", _choose_database_paths().paths, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `timescale` run on the TimescaleDB path only (not once per path)."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        path = callspec.params.get("database_path") if callspec else None
        on_plain = path == "plain" or path is None
        (dropped if item.get_closest_marker("timescale") and on_plain else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _path_choice is None:
        return
    if _path_choice.skipped:
        terminalreporter.write_line(
            f"SKIPPED the TimescaleDB path of every database test: {_path_choice.skipped}"
            " (the plain PostgreSQL path ran)",
            yellow=True,
        )
    else:
        terminalreporter.write_line(f"database tests ran on: {', '.join(_path_choice.paths)}")


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str, database_path: str) -> Iterator[str]:
    """A database migrated once per run and path; tests clone it."""
    name = f"ldl_test_template_{database_path}_{os.getpid()}"
    drop_database(pg_admin_url, name)
    url = create_database(pg_admin_url, name)
    apply_migrations(url, "on" if database_path == "timescale" else "off")
    with _admin(pg_admin_url) as admin:
        # TimescaleDB's scheduler keeps a session in every database that has the extension, and
        # CREATE DATABASE ... TEMPLATE refuses a template anyone is connected to.
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own (superuser URL; the app role is SET on use)."""
    name = f"ldl_test_{uuid.uuid4().hex[:12]}"
    url = create_database(pg_admin_url, name, template=template_db)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection]:
    """A connection acting as the application role, in a transaction the test may commit."""
    connection = connect(db_url)
    yield connection
    connection.close()


@pytest.fixture
def settings(db_url: str, mqtt_url: str, tmp_path: Path) -> Settings:
    return Settings(environment="test", database_url=db_url, mqtt_url=mqtt_url, data_dir=tmp_path)


# ------------------------------------------------------------------------- HTTP API
class _ThreadedServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test process keeps its own handlers
        pass


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The real app for `settings`, served over real HTTP by uvicorn on a free port."""
    from ldl.app import create_app

    port = free_port()
    server = _ThreadedServer(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def api_url(settings: Settings) -> Iterator[str]:
    with serve(settings) as url:
        yield url


@pytest.fixture
def http(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=10) as client:
        yield client


# ------------------------------------------------------------------------------ MQTT
@pytest.fixture(scope="session")
def mqtt_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("LDL_TEST_MQTT_URL", DEFAULT_MQTT_URL)
    parts = urlsplit(url)
    if _reachable(parts.hostname or "127.0.0.1", parts.port or 1883):
        yield url
        return
    from ldl.embedded import start_broker

    service = start_broker(tmp_path_factory.mktemp("embedded-broker"))
    try:
        yield service.url
    finally:
        service.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own, so tests sharing a broker never see each other."""
    return f"test-{uuid.uuid4().hex[:10]}/ldl/v1"


@dataclass
class PrivateMosquitto:
    """A Mosquitto of one test's own, on a free port, with the config the test gave it."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, Path] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def reload(self) -> None:
        """SIGHUP: Mosquitto rereads its password and ACL files without a restart."""
        self.process.send_signal(signal.SIGHUP)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        """Stop and start again with the same config and persistence (a broker restart)."""
        self.stop()
        self.process = _spawn_mosquitto(self.directory / "mosquitto.conf", self.log_path)
        _wait_for_port(self.port, self.process, self.log_path)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _spawn_mosquitto(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    log = log_path.open("ab")
    return subprocess.Popen([binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 10
    while not _reachable("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"mosquitto did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.05)


@pytest.fixture
def private_mosquitto() -> Iterator[Callable[..., PrivateMosquitto]]:
    """Start a Mosquitto with `config` (a text with a {port} and {dir} placeholder)."""
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.skip("mosquitto is not installed")
    started: list[PrivateMosquitto] = []

    def start(config: str = "", **files: str) -> PrivateMosquitto:
        directory = Path(tempfile.mkdtemp(prefix="ldl-mosq-"))
        # Mosquitto started as root drops to its own user, which must read the files and may
        # write its persistence file here.
        directory.chmod(0o777)
        port = free_port()
        extra: dict[str, Path] = {}
        for name, content in files.items():
            path = directory / name
            path.write_text(content)
            path.chmod(0o644)
            extra[name] = path
        body = config.format(port=port, dir=directory)
        if "listener" not in body:
            body = f"listener {port} 127.0.0.1\nallow_anonymous true\n" + body
        config_path = directory / "mosquitto.conf"
        config_path.write_text(body)
        log_path = directory / "mosquitto.log"
        process = _spawn_mosquitto(config_path, log_path)
        broker = PrivateMosquitto(port, directory, process, log_path, extra)
        started.append(broker)
        _wait_for_port(port, process, log_path)
        return broker

    yield start
    for broker in started:
        broker.stop()
        shutil.rmtree(broker.directory, ignore_errors=True)


# ----------------------------------------------------------------- hygiene checks
@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Fail a test that leaves its threads running."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3
    while True:
        leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        leftover = [t for t in leftover if not t.name.startswith(("ldl-session", "asyncio_"))]
        if not leftover or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leftover, f"threads left running: {[t.name for t in leftover]}"
