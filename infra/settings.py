"""The one settings class. Every value comes from an `LDL_` environment variable."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

import platformdirs
import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.db import WRITABLE_SESSION_ATTRS
from infra.errors import ConfigError

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "admin", "password", "postgres"}
# Words that mark a secret as written for development or documentation, e.g. `ldl-dev-only`.
PLACEHOLDER_MARKERS = ("dev-only", "changeme", "change-me", "placeholder", "example")


def is_placeholder_secret(secret: str) -> bool:
    lowered = secret.strip().lower()
    return lowered in PLACEHOLDER_SECRETS or any(mark in lowered for mark in PLACEHOLDER_MARKERS)


def _url_password(url: str | None) -> str | None:
    password = urlsplit(url).password if url else None
    return unquote(password) if password is not None else None


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("ldl", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LDL_", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    # None means "not configured": `ldl demo` then starts embedded services; other commands refuse.
    database_url: str | None = Field(
        None, description="PostgreSQL URL, e.g. postgresql://ldl@db:5432/ldl"
    )
    mqtt_url: str | None = Field(None, description="MQTT broker URL, e.g. mqtt://user:pw@host:1883")
    # For mqtts:// URLs: the CA that signed the broker's certificate (default: the system's CAs).
    mqtt_ca_file: Path | None = None
    mqtt_topic_prefix: str = "ldl/v1"
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    # `ldl api` processes sharing the port; each has its own pool of LDL_DB_POOL_MAX connections.
    api_workers: int = Field(1, ge=1)
    # Larger request bodies are refused (413) before they are read; the largest real one is a
    # trial with its plan, a few KiB.
    api_max_body_bytes: int = Field(1024 * 1024, ge=1024)
    data_dir: Path = Field(default_factory=default_data_dir)
    db_pool_min: int = Field(1, ge=0)
    db_pool_max: int = Field(10, ge=1)
    # Load shedding (infra/capacity.py): requests beyond the pool's connections wait in a queue of
    # at most this many for at most this long; the rest get 503 with Retry-After at once.
    api_queue_limit: int = Field(200, ge=0)
    api_queue_timeout_seconds: float = Field(0.5, gt=0)
    # No request's statement may hold a connection longer (a 503 "took too long"); 0 = no limit.
    api_statement_timeout_ms: int = Field(10_000, ge=0)
    ingest_client_id: str = "ldl-ingest-1"
    ingest_metrics_port: int = Field(9108, ge=0, le=65535)
    ingest_batch_size: int = Field(2000, ge=1)
    ingest_batch_seconds: float = Field(0.05, gt=0)
    # Workers sharing this group split the load; "" subscribes plainly (one worker), which
    # Mosquitto 2.0 also keeps routing to across its own restart (it does not for shared ones).
    ingest_share_group: str = Field("ldl-ingest", pattern=r"^[A-Za-z0-9_.-]*$")
    ingest_session_expiry_seconds: int = Field(7 * 24 * 3600, ge=0)
    mosquitto_password_file: Path | None = None
    mosquitto_acl_file: Path | None = None
    mosquitto_pid_file: Path | None = None
    telemetry_retention_days: int = Field(730, ge=1)
    # Which path `ldl migrate` builds: TimescaleDB hypertables and continuous aggregates, or plain
    # tables. auto: TimescaleDB when installed and preloaded; on: refuse to go without it; off:
    # never create the extension (one cluster can host both kinds of database).
    timescale: Literal["auto", "on", "off"] = "auto"
    # Consent withdrawals (and the erasures they make) are appended here, outside the database,
    # before they are acknowledged, so a restore from backup can re-apply them (README "Backup").
    erasure_journal: Path | None = None
    rollup_refresh_seconds: float = Field(60, gt=0)
    grafana_url: str | None = None
    grafana_admin_user: str = "admin"
    grafana_admin_password: str | None = None
    # Company roles are cluster-wide; the prefix keeps databases on one cluster apart.
    grafana_role_prefix: str | None = None
    grafana_coordinator_db_password: str | None = None
    # How Grafana reaches PostgreSQL (host:port), when it differs from LDL_DATABASE_URL's host.
    grafana_database_host: str | None = None

    @field_validator("database_url")
    @classmethod
    def _database_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"postgresql", "postgres"} or (
            not parts.hostname and "host=" not in (parts.query)
        ):
            raise ValueError("must look like postgresql://user@host:5432/dbname")
        try:
            params = conninfo_to_dict(value)
        except psycopg.ProgrammingError as exc:
            raise ValueError(str(exc).strip()) from None
        # Several nodes: `postgresql://h1:5432,h2:5432/ldl?target_session_attrs=read-write`.
        ports = [port for port in str(params.get("port", "")).split(",") if port]
        bad = [port for port in ports if not port.isdigit() or not 0 < int(port) < 65536]
        if bad:
            raise ValueError(f"bad port: {', '.join(bad)}")
        several = "," in str(params.get("host", ""))
        if several and params.get("target_session_attrs") not in WRITABLE_SESSION_ATTRS:
            raise ValueError(
                "names several hosts: add ?target_session_attrs=read-write, so it reaches"
                " the primary"
            )
        if not parts.path.strip("/"):
            raise ValueError("must name a database, e.g. postgresql://user@host:5432/ldl")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError("must look like mqtt://user:password@host:1883")
        try:
            parts.port  # noqa: B018
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        secrets = {
            "LDL_DATABASE_URL's password": _url_password(self.database_url),
            "LDL_MQTT_URL's password": _url_password(self.mqtt_url),
            "LDL_GRAFANA_COORDINATOR_DB_PASSWORD": self.grafana_coordinator_db_password,
            # Grafana's admin password is needed (so checked even when empty) once Grafana is.
            "LDL_GRAFANA_ADMIN_PASSWORD": self.grafana_admin_password
            or ("" if self.grafana_url else None),
        }
        weak = [name for name, secret in secrets.items() if secret is not None
                and is_placeholder_secret(secret)]  # fmt: skip
        if weak:
            raise ValueError(
                f"{', '.join(weak)}: a development or placeholder secret; set a real one"
                " (LDL_ENVIRONMENT=production)"
            )
        return self

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "LDL_DATABASE_URL is not set (e.g. postgresql://postgres@127.0.0.1/ldl)"
            )
        return self.database_url

    def require_mqtt_url(self) -> str:
        if not self.mqtt_url:
            raise ConfigError("LDL_MQTT_URL is not set (e.g. mqtt://127.0.0.1:1883)")
        return self.mqtt_url


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; a bad value becomes one ConfigError naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            # A check across settings names them in its message.
            problems.append(f"LDL_{field.upper()}: {message}" if field else message)
        raise ConfigError("; ".join(problems)) from None
