"""Broker credentials and ACLs: Mosquitto's password and ACL files, rendered from the database.

The database is the only source: `regenerate` rewrites both files from the registry (atomically:
temp file + os.replace), then sends Mosquitto SIGHUP so it rereads them without a restart. A
device secret is 256 random bits shown once; only its hash is stored, in exactly the format
Mosquitto 2.0's `mosquitto_passwd` writes (`$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>`), so
the password file is the stored hashes copied out. 101 iterations is what mosquitto_passwd uses;
with random 256-bit secrets the iteration count is not what keeps them safe.

ACL, per account (the topic prefix comes from settings.mqtt_topic_prefix, `ldl/v1` by default):
- a device writes only `ldl/v1/{its id}/#`; a gateway also its active children's topics;
- only the ingest worker's account reads `ldl/v1/#` (and its shared subscription
  `$share/{LDL_INGEST_SHARE_GROUP}/ldl/v1/#`); nobody else receives anything.
Mosquitto 2.0's ACL file never checks SUBSCRIBE itself, only delivery: a device may subscribe
but is sent nothing. It could, though, join the worker's share group by name and swallow its share
of the messages; so in production LDL_INGEST_SHARE_GROUP is a random, unguessable name.
The ingest account is the user and password in LDL_MQTT_URL (the worker connects with it).
Revoked devices are left out of both files: once reloaded they can neither connect nor publish.
Mosquitto run as root drops to user `mosquitto` before reading these files (also on SIGHUP), so
they are written world-readable (0644): they hold only hashes of random secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import signal
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg

from devices import repository
from devices.repository import BrokerCredential
from infra.db import connection
from infra.errors import ConfigError
from infra.settings import Settings

log = logging.getLogger(__name__)

MOSQUITTO_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes
SALT_BYTES = 12
FILE_MODE = 0o644


# ------------------------------------------------------------------- secrets
def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str, *, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    """A Mosquitto 2.0 password hash: `$7$<iterations>$<b64 salt>$<b64 PBKDF2-SHA512>`."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, hashed: str) -> bool:
    try:
        _, algorithm, iterations, salt, digest = hashed.split("$")
        if algorithm != "7":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha512", secret.encode(), base64.b64decode(salt), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# ------------------------------------------------------------------- accounts
@dataclass(frozen=True, slots=True)
class BrokerAccount:
    username: str
    password_hash: str
    publish: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()


def topic_prefix(settings: Settings) -> str:
    prefix = settings.mqtt_topic_prefix.strip("/")
    if not prefix or any(char in prefix for char in "+# "):
        raise ConfigError(f"LDL_MQTT_TOPIC_PREFIX: '{prefix}' must be a plain topic like ldl/v1")
    return prefix


def device_accounts(credentials: Sequence[BrokerCredential], prefix: str) -> list[BrokerAccount]:
    children: dict[str, list[str]] = {}
    for credential in credentials:
        if credential.gateway_id is not None:
            children.setdefault(credential.gateway_id, []).append(credential.id)
    return [
        BrokerAccount(
            username=credential.id,
            password_hash=credential.secret_hash,
            publish=tuple(
                f"{prefix}/{device_id}/#"
                for device_id in [credential.id, *children.get(credential.id, [])]
            ),
        )
        for credential in credentials
    ]


def _ingest_credentials(settings: Settings) -> tuple[str, str] | None:
    parts = urlsplit(settings.mqtt_url or "")
    if not parts.username or parts.password is None:
        return None
    return unquote(parts.username), unquote(parts.password)


def reserved_usernames(settings: Settings) -> set[str]:
    """Broker usernames no device may take."""
    credentials = _ingest_credentials(settings)
    return {credentials[0]} if credentials else set()


def ingest_account(settings: Settings, prefix: str) -> BrokerAccount | None:
    """The worker's account: the user and password in LDL_MQTT_URL, allowed to read everything."""
    credentials = _ingest_credentials(settings)
    if credentials is None:
        log.warning("LDL_MQTT_URL has no user:password; no account may subscribe to %s/#", prefix)
        return None
    username, password = credentials
    topics = [f"{prefix}/#"]
    if settings.ingest_share_group:
        topics.append(f"$share/{settings.ingest_share_group}/{prefix}/#")
    return BrokerAccount(
        username=username, password_hash=hash_secret(password), subscribe=tuple(topics)
    )


# ---------------------------------------------------------------- rendering
HEADER = (
    "# Generated by ldl from the device registry; `ldl broker sync` rewrites it. Do not edit.\n"
)


def render_password_file(accounts: Iterable[BrokerAccount]) -> str:
    return "".join(f"{account.username}:{account.password_hash}\n" for account in accounts)


def render_acl_file(accounts: Iterable[BrokerAccount]) -> str:
    blocks = []
    for account in accounts:
        lines = [f"user {account.username}"]
        lines += [f"topic write {topic}" for topic in account.publish]
        lines += [f"topic read {topic}" for topic in account.subscribe]
        blocks.append("\n".join(lines) + "\n")
    return HEADER + "\n" + "\n".join(blocks)


def write_atomically(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Readers (Mosquitto on SIGHUP) see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as temp:
            temp.write(text)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def signal_reload(pid_file: Path | None) -> str | None:
    """SIGHUP the broker named by its pid file; None when signalled, else why it was not."""
    if pid_file is None:
        return "LDL_MOSQUITTO_PID_FILE is not set"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except FileNotFoundError:
        problem = f"LDL_MOSQUITTO_PID_FILE {pid_file} does not exist (is Mosquitto running?)"
    except ValueError:
        problem = f"LDL_MOSQUITTO_PID_FILE {pid_file} holds no process id"
    except OSError as exc:
        problem = f"cannot signal the process in LDL_MOSQUITTO_PID_FILE {pid_file}: {exc}"
    else:
        return None
    log.warning("could not reload Mosquitto: %s; it rereads the files on restart", problem)
    return problem


# -------------------------------------------------------------- regeneration
@dataclass(frozen=True, slots=True)
class BrokerSync:
    accounts: int
    password_file: Path
    acl_file: Path
    not_reloaded_because: str | None  # None: Mosquitto was signalled to reread the files

    @property
    def reloaded(self) -> bool:
        return self.not_reloaded_because is None


def configured_paths(settings: Settings) -> tuple[Path, Path] | None:
    password_file, acl_file = settings.mosquitto_password_file, settings.mosquitto_acl_file
    if password_file is None and acl_file is None:
        return None
    if password_file is None or acl_file is None:
        missing = "PASSWORD_FILE" if password_file is None else "ACL_FILE"
        raise ConfigError(f"LDL_MOSQUITTO_{missing} is not set; the broker needs both files")
    return password_file, acl_file


def regenerate(conn: psycopg.Connection, settings: Settings) -> BrokerSync | None:
    """Rewrite both files from what `conn` sees and reload the broker; None when not configured.

    Call it after the registry change has committed, so the files never run ahead of the database.
    """
    paths = configured_paths(settings)
    if paths is None:
        return None
    password_file, acl_file = paths
    prefix = topic_prefix(settings)
    repository.lock_broker_files(conn)
    accounts = device_accounts(repository.active_credentials(conn), prefix)
    ingest = ingest_account(settings, prefix)
    if ingest is not None:
        if any(account.username == ingest.username for account in accounts):
            raise ConfigError(f"a device is registered under the ingest username {ingest.username}")
        accounts.insert(0, ingest)
    write_atomically(password_file, render_password_file(accounts))
    write_atomically(acl_file, render_acl_file(accounts))
    not_reloaded_because = signal_reload(settings.mosquitto_pid_file)
    return BrokerSync(len(accounts), password_file, acl_file, not_reloaded_because)


def sync_broker(settings: Settings) -> BrokerSync:
    """`ldl broker sync`: regenerate the password and ACL files from the database, then reload."""
    if configured_paths(settings) is None:
        raise ConfigError("set LDL_MOSQUITTO_PASSWORD_FILE and LDL_MOSQUITTO_ACL_FILE")
    with connection(settings.require_database_url()) as conn:
        result = regenerate(conn, settings)
    assert result is not None
    return result
