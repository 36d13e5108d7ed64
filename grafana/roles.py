"""Database roles Grafana logs in as: one per company, one for the coordinator.

A company role can log in, has USAGE on its own schema `company_<id>` only, and SELECT on the
views there: security-barrier views of `ldl_grafana` (migration 0007) filtered to that company's
trials and to rows its participants' consent lets a company see. The views belong to
`ldl_grafana_owner`, which no login role is a member of. The coordinator role reads
`grafana_coordinator` (all trials, data quality). Roles are cluster-wide and many databases may
share a cluster, so role names start with a prefix of this database's own (see `role_prefix`).
On TimescaleDB a chunk carries its hypertable's grants, so a company role, granted nothing on the
hypertables, reads no chunk; the extension's own schemas stay open to PUBLIC, as TimescaleDB
reads its catalog there on every session's first query.

All SQL runs on the caller's connection, which needs CREATEROLE and the right to act as
`ldl_grafana_owner` (the migration user does); the caller commits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import psycopg
from psycopg import sql

from infra.db import APP_ROLE

OWNER_ROLE = "ldl_grafana_owner"
SOURCE_SCHEMA = "ldl_grafana"
COORDINATOR_SCHEMA = "grafana_coordinator"
_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_STATEMENT_TIMEOUT = "30s"  # a dashboard query must never hold the database for long
_CONNECTION_LIMIT = 10


@dataclass(frozen=True)
class DatabaseLogin:
    """What a Grafana data source needs to log in: the role, its password and its schema."""

    role: str
    password: str
    schema: str

    @property
    def fingerprint(self) -> str:
        """Changes when the password does; kept in the data source so a plan can compare."""
        return hashlib.sha256(f"{self.role}:{self.password}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CompanyAccess:
    company_id: int
    name: str
    login: DatabaseLogin


@dataclass(frozen=True)
class DatabaseAccess:
    coordinator: DatabaseLogin
    companies: tuple[CompanyAccess, ...]
    changes: tuple[str, ...]


# ------------------------------------------------------------------------------- names
def role_prefix(conn: psycopg.Connection, configured: str | None = None) -> str:
    """`configured` when given (LDL_GRAFANA_ROLE_PREFIX), else `ldl_` + a hash of the database name."""
    if configured:
        if not _PREFIX.match(configured):
            raise ValueError("the Grafana role prefix must match ^[a-z][a-z0-9_]{0,39}$")
        return configured
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return "ldl_" + hashlib.sha256(str(row[0]).encode()).hexdigest()[:8]


def company_role(prefix: str, company_id: int) -> str:
    return f"{prefix}_co_{company_id}"


def coordinator_role(prefix: str) -> str:
    return f"{prefix}_coordinator"


def company_schema(company_id: int) -> str:
    return f"company_{company_id}"


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier, so the plain password never reaches the server log."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


# ----------------------------------------------------------------------------- helpers
def _role_exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _stored_password(conn: psycopg.Connection, role: str, wanted: str | None) -> tuple[str, bool]:
    """The role's password from the credential store; a new one (or `wanted`) when it differs."""
    row = conn.execute(
        "SELECT password FROM ldl_grafana_private.role_credentials WHERE role_name = %s", (role,)
    ).fetchone()
    current = row[0] if row else None
    password = wanted or current or secrets.token_urlsafe(32)
    if password == current:
        return password, False
    conn.execute(
        "INSERT INTO ldl_grafana_private.role_credentials (role_name, password) VALUES (%s, %s)"
        " ON CONFLICT (role_name) DO UPDATE SET password = excluded.password, updated_at = now()",
        (role, password),
    )
    return password, True


def _ensure_login_role(
    conn: psycopg.Connection,
    role: str,
    schema: str,
    wanted_password: str | None,
    changes: list[str],
) -> DatabaseLogin:
    password, changed = _stored_password(conn, role, wanted_password)
    ident = sql.Identifier(role)
    if not _role_exists(conn, role):
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOINHERIT CONNECTION LIMIT {} PASSWORD {}").format(
                ident, sql.Literal(_CONNECTION_LIMIT), sql.Literal(scram_verifier(password))
            )
        )
        changes.append(f"database: created login role {role}")
    elif changed:
        conn.execute(
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                ident, sql.Literal(scram_verifier(password))
            )
        )
        changes.append(f"database: set a new password for {role}")
    dbname = sql.Identifier(_current_database(conn))
    # Grafana's PostgreSQL data source has no search_path setting: the role carries it, so the
    # same dashboard SQL reads each company's own views. `public` comes after, for the functions
    # of extensions such as TimescaleDB's time_bucket (Grafana's $__timeGroup writes it
    # unqualified); the role has no SELECT on any table or view there, so it reads nothing more.
    conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}, public").format(
            ident, dbname, sql.Identifier(schema)
        )
    )
    conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET statement_timeout = {}").format(
            ident, dbname, sql.Literal(_STATEMENT_TIMEOUT)
        )
    )
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(dbname, ident))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), ident))
    conn.execute(
        sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
            sql.Identifier(schema), ident
        )
    )
    return DatabaseLogin(role, password, schema)


def _current_database(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def _source_views(conn: psycopg.Connection) -> list[tuple[str, bool]]:
    """The company-facing views of ldl_grafana, and whether each carries `company_visible`."""
    rows = conn.execute(
        "SELECT c.relname, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
        "   AND a.attname = 'company_visible' AND NOT a.attisdropped)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'v' ORDER BY c.relname",
        (SOURCE_SCHEMA,),
    ).fetchall()
    return [(str(name), bool(visible)) for name, visible in rows]


def _build_company_schema(conn: psycopg.Connection, company_id: int) -> None:
    """(Re)create company_<id>'s views in one go; the caller's transaction makes it atomic."""
    schema = sql.Identifier(company_schema(company_id))
    owner = sql.Identifier(OWNER_ROLE)
    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
    conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, owner))
    conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
    for view, has_consent_column in _source_views(conn):
        condition = sql.SQL("company_id = {}").format(sql.Literal(company_id))
        if has_consent_column:
            condition += sql.SQL(" AND company_visible")
        target = sql.SQL("{}.{}").format(schema, sql.Identifier(view))
        conn.execute(
            sql.SQL(
                "CREATE VIEW {} WITH (security_barrier) AS SELECT * FROM {}.{} WHERE {}"
            ).format(target, sql.Identifier(SOURCE_SCHEMA), sql.Identifier(view), condition)
        )
        # The view runs with its owner's rights; the company role is never a member of it.
        conn.execute(sql.SQL("ALTER VIEW {} OWNER TO {}").format(target, owner))


def _temp_tables_closed(conn: psycopg.Connection) -> None:
    """No TEMP for Grafana's login roles: a company role only reads its views, and temporary
    tables would let it write to the database (and fill the disk). PostgreSQL grants TEMP on a
    database to PUBLIC and a grant cannot be denied to one role, so it is taken from PUBLIC and
    given back to the application role (the ingest worker stages its COPY in temp tables)."""
    dbname = sql.Identifier(_current_database(conn))
    conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(dbname))
    conn.execute(
        sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(dbname, sql.Identifier(APP_ROLE))
    )


def _managed_company_roles(conn: psycopg.Connection, prefix: str) -> dict[int, str]:
    pattern = re.compile(rf"^{re.escape(prefix)}_co_(\d+)$")
    rows = conn.execute(
        "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (f"{prefix}_co_",)
    ).fetchall()
    found = {}
    for (name,) in rows:
        match = pattern.match(name)
        if match:
            found[int(match.group(1))] = str(name)
    return found


# ------------------------------------------------------------------------------ public
def provision_company_roles(
    conn: psycopg.Connection,
    *,
    prefix: str | None = None,
    coordinator_password: str | None = None,
) -> DatabaseAccess:
    """Make the database match the companies table: a role and schema per company, the
    coordinator's role, no access left for companies that are gone. Idempotent."""
    prefix = role_prefix(conn, prefix)
    changes: list[str] = []
    _temp_tables_closed(conn)
    coordinator = _ensure_login_role(
        conn, coordinator_role(prefix), COORDINATOR_SCHEMA, coordinator_password, changes
    )
    companies = conn.execute("SELECT id, name FROM public.companies ORDER BY id").fetchall()
    existing = _managed_company_roles(conn, prefix)
    granted: list[CompanyAccess] = []
    for company_id, name in companies:
        _build_company_schema(conn, company_id)
        login = _ensure_login_role(
            conn, company_role(prefix, company_id), company_schema(company_id), None, changes
        )
        granted.append(CompanyAccess(int(company_id), str(name), login))
    for company_id in sorted(set(existing) - {c.company_id for c in granted}):
        drop_company_access(conn, company_id, prefix=prefix)
        changes.append(
            f"database: dropped role {existing[company_id]} (company {company_id} is gone)"
        )
    return DatabaseAccess(coordinator, tuple(granted), tuple(changes))


def drop_company_access(
    conn: psycopg.Connection, company_id: int, *, prefix: str | None = None
) -> None:
    """Close a company's door: end its sessions, drop its schema, its grants and its role."""
    prefix = role_prefix(conn, prefix)
    role = company_role(prefix, company_id)
    conn.execute(
        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
            sql.Identifier(company_schema(company_id))
        )
    )
    conn.execute("DELETE FROM ldl_grafana_private.role_credentials WHERE role_name = %s", (role,))
    if not _role_exists(conn, role):
        return
    ident = sql.Identifier(role)
    conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN PASSWORD NULL").format(ident))
    # Grafana keeps pooled connections open; a dropped login must not keep reading.
    conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
    )
    conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
    conn.execute(sql.SQL("DROP ROLE {}").format(ident))
