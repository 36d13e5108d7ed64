"""`ldl`: one command line for every part of the system."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from access.schemas import ApiKeyCreate, Role
from infra.errors import ConfigError, LdlError
from infra.settings import Settings, load_settings

app = typer.Typer(
    help="Living Design Lab tracker: trials, consent, devices and telemetry for care-home labs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="Create and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys", help="Create and revoke API keys for the HTTP API.")
broker_app = typer.Typer(help="Mosquitto credentials and ACLs.", no_args_is_help=True)
app.add_typer(broker_app, name="broker", help="Regenerate Mosquitto's password and ACL files.")
users_app = typer.Typer(help="People's accounts for the web app.", no_args_is_help=True)
app.add_typer(users_app, name="users", help="Create accounts for people to sign in to the web app.")
erasures_app = typer.Typer(help="The erasure journal (LDL_ERASURE_JOURNAL).", no_args_is_help=True)
app.add_typer(erasures_app, name="erasures", help="Re-apply journaled withdrawals after a restore.")
grafana_app = typer.Typer(
    help="Grafana organisations, data sources, dashboards.", no_args_is_help=True
)
app.add_typer(grafana_app, name="grafana", help="Provision Grafana: one organisation per company.")


def _settings(**overrides: object) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


@app.command()
def migrate(
    sync_broker: Annotated[
        bool, typer.Option(help="then write Mosquitto's password and ACL files")
    ] = False,
) -> None:
    """Apply migrations (a no-op when up to date); re-apply erasures."""
    from infra.migrate import apply_migrations

    settings = _settings()
    url = settings.require_database_url()
    journal = settings.erasure_journal
    if journal is not None:
        from evidence.erasure_journal import check_usable

        # Only a new database may start a new journal: a restored one needs its old journal.
        check_usable(journal, create=_database_is_new(url))
    applied = apply_migrations(url, settings.timescale)
    typer.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")
    if journal is not None:
        erasures_reapply()
    if sync_broker:
        broker_sync()


def _database_is_new(url: str) -> bool:
    from infra.db import connect

    with connect(url, as_app=False, autocommit=True) as conn:
        row = conn.execute("SELECT to_regclass('public.participants') IS NULL").fetchone()
    return bool(row and row[0])


@erasures_app.command("reapply")
def erasures_reapply() -> None:
    """Withdraw again what the journal holds and the database does not (after a restore)."""
    from evidence.erase import reapply_erasures
    from evidence.erasure_journal import SETTING
    from infra.db import connection

    settings = _settings()
    if settings.erasure_journal is None:
        raise ConfigError(f"{SETTING} is not set (the journal kept next to the backups)")
    with connection(settings.require_database_url()) as conn:
        reapplied = reapply_erasures(conn, settings.erasure_journal)
    for entry in reapplied:
        typer.echo(
            f"re-applied withdrawal ({entry.mode.value}) of participant {entry.participant_id}"
            f" at {entry.at.isoformat()}, journaled {entry.recorded_at.isoformat()}"
        )
    typer.echo(
        f"erasure journal {settings.erasure_journal}: {len(reapplied)} withdrawal(s) re-applied"
    )


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="overrides LDL_API_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="overrides LDL_API_PORT")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="overrides LDL_API_WORKERS")] = None,
) -> None:
    """Serve the HTTP API for coordinators, evaluators, companies."""
    import uvicorn

    from infra.db import connect
    from ldl.app import create_app

    settings = _settings(api_host=host, api_port=port, api_workers=workers)
    connect(settings.require_database_url()).close()  # fail with one line, not a traceback
    if settings.erasure_journal is not None:
        from evidence.erasure_journal import check_usable

        check_usable(settings.erasure_journal, create=True)  # withdrawals will append to it
    if settings.api_workers == 1:
        uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port)
        return
    # Several processes on one port (one Python process runs on one core at a time); each builds
    # its app, pool and connection gate from the same LDL_* environment.
    uvicorn.run(
        "ldl.app:app_from_environment",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
    )


@app.command()
def ingest(
    ready_file: Annotated[
        Path | None,
        typer.Option(help="write this file once subscribed to the broker; removed on exit"),
    ] = None,
) -> None:
    """Run the MQTT ingest worker: validate, gate, store telemetry."""
    import threading

    from evidence.rollup_scheduler import run_rollup_scheduler
    from infra.db import connect
    from ingest.worker import run_worker

    settings = _settings()
    settings.require_mqtt_url()
    connect(settings.require_database_url()).close()  # one line, not a thread's traceback
    # The rollups and retention are kept fresh beside the worker that feeds them.
    stop = threading.Event()
    rollups = threading.Thread(
        target=run_rollup_scheduler,
        args=(settings, stop, settings.rollup_refresh_seconds),
        name="ldl-rollups",
        daemon=True,
    )
    rollups.start()
    try:
        run_worker(settings, ready_file)
    finally:
        stop.set()
        rollups.join(timeout=10)


@app.command()
def simulate(
    rate: Annotated[float, typer.Option(help="messages per second per device")] = 0.2,
    duration: Annotated[float, typer.Option(help="seconds to run; 0 runs until Ctrl-C")] = 0,
    backfill_days: Annotated[
        float, typer.Option(help="first publish this many days of history")
    ] = 0,
    as_devices: Annotated[
        bool, typer.Option(help="log in as each device with a new secret (demo labs only)")
    ] = False,
) -> None:
    """Publish simulated telemetry for the deployed devices."""
    import signal
    import threading

    from devices.simulator import run_simulator

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        sent = run_simulator(
            _settings(),
            rate=rate,
            duration=duration or None,
            backfill_days=backfill_days,
            stop=stop,
            as_devices=as_devices,
        )
    except KeyboardInterrupt:
        return
    typer.echo(f"simulator sent {sent} messages")


@app.command()
def seed() -> None:
    """Seed the demo lab into the database (once; a no-op after)."""
    from infra.db import connection
    from ldl.seed import seed_demo_lab

    with connection(_settings().require_database_url()) as conn:
        seeded = seed_demo_lab(conn)
    typer.echo("seeded the demo lab" if seeded else "the database already has a lab; left as is")


@app.command()
def demo(
    port: Annotated[int | None, typer.Option(help="API port (default 8000)")] = None,
) -> None:
    """Run the whole system on this machine with a seeded lab."""
    from ldl.demo import run_demo

    run_demo(_settings(api_port=port))


@keys_app.command("create")
def keys_create(
    role: Annotated[Role, typer.Option(help="coordinator, evaluator or company")],
    company: Annotated[
        int | None, typer.Option(help="the company's id (role company only)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="who holds the key")] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from access.schemas import OPERATOR
    from access.service import create_key
    from infra.db import connection

    request = ApiKeyCreate(name=name or f"{role.value} key", role=role, company_id=company)
    with connection(_settings().require_database_url()) as conn:
        created = create_key(conn, OPERATOR, request)
    typer.echo(f"key id {created.id} ({created.role}): {created.key}")


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke an API key at once."""
    from access.schemas import OPERATOR
    from access.service import revoke_key
    from infra.db import connection

    with connection(_settings().require_database_url()) as conn:
        revoke_key(conn, OPERATOR, key_id)
    typer.echo(f"key {key_id} revoked")


@users_app.command("create")
def users_create(
    role: Annotated[Role, typer.Option(help="coordinator, evaluator or company")],
    email: Annotated[str, typer.Option(help="the person's email; they sign in with it")],
    company: Annotated[
        int | None, typer.Option(help="the company's id (role company only)")
    ] = None,
) -> None:
    """Create a person's account; the password is asked for (or read from stdin when piped)."""
    from access.accounts import create_user
    from access.schemas import UserCreate
    from infra.db import connection

    if sys.stdin.isatty():
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    request = UserCreate(email=email, role=role, company_id=company, password=password)
    with connection(_settings().require_database_url()) as conn:
        user = create_user(conn, request)
    typer.echo(f"user id {user.id} ({user.role}): {user.email}")


@broker_app.command("sync")
def broker_sync() -> None:
    """Rewrite the broker's password and ACL files from the registry; reload it."""
    from devices.broker import sync_broker

    result = sync_broker(_settings())
    reloaded = (
        "broker reloaded" if result.reloaded else f"not reloaded: {result.not_reloaded_because}"
    )
    typer.echo(
        f"{result.accounts} accounts -> {result.password_file}, {result.acl_file}; {reloaded}"
    )


@grafana_app.command("sync")
def grafana_sync() -> None:
    """Create or update each company's organisation; remove those of companies gone."""
    from grafana.apply import sync_grafana

    changes = sync_grafana(_settings())
    typer.echo("\n".join(changes) if changes else "grafana is up to date")


def main() -> None:
    """Entry point: a known failure is one line on stderr and exit code 2, never a traceback."""
    try:
        app()
    except LdlError as exc:
        typer.echo(f"ldl: {exc.detail}", err=True)
        sys.exit(2)
    except ValidationError as exc:  # CLI input checked by a model, e.g. a company key w/o company
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        typer.echo(f"ldl: {problems}", err=True)
        sys.exit(2)
