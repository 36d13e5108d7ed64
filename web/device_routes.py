"""Devices: register (the secret shown once, with a ready mosquitto_pub line) and deploy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from access.schemas import Principal
from devices import broker
from devices import repository as device_repository
from devices import service as devices
from devices.routes import _commit_and_sync_broker  # the API's own step: commit, sync broker
from devices.schemas import DeploymentCreate, DeviceCreate, DeviceCredentials
from infra.http import Conn, PageParams
from infra.settings import Settings
from trials import service as trials
from web.deps import CheckedForm, CoordinatorOnly, SignedIn, StaffOnly
from web.forms import FormErrors, attempt, fields, validate
from web.ui import Ui, render

router = APIRouter()
ALL = PageParams(limit=500, offset=0)


def _broker_address(settings: Settings) -> tuple[str, int]:
    """Where devices publish: the ingest account's broker (devices use their own credentials)."""
    parts = urlsplit(settings.mqtt_url or "mqtt://127.0.0.1:1883")
    return parts.hostname or "127.0.0.1", parts.port or 1883


def _devices_page(
    request: Request,
    ui: Ui,
    conn: Conn,
    who: Principal,
    *,
    status_code: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    listed, _ = device_repository.list_devices(
        conn,
        company_id=None,
        kind=None,
        gateway_id=None,
        include_revoked=True,
        limit=ALL.limit,
        offset=ALL.offset,
    )
    return render(
        request, ui, "devices.html", status_code=status_code, devices=listed,
        device_types=device_repository.list_device_types(conn),
        companies=trials.list_companies(conn, who, ALL).items,
        errors=errors or FormErrors(), values=values or dict(request.query_params),
    )  # fmt: skip


@router.get("/devices")
def device_list(request: Request, ui: SignedIn, who: StaffOnly, conn: Conn) -> Response:
    return _devices_page(request, ui, conn, who)


@router.post("/devices")
def register(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm
) -> Response:
    values = fields(form, skip=("csrf_token", "trial_id"))
    registration, errors = validate(DeviceCreate, values)
    settings: Settings = request.app.state.settings
    if registration is not None:
        reserved = broker.reserved_usernames(settings)
        created, errors = attempt(
            conn,
            lambda: devices.register_device(conn, who, registration, reserved_usernames=reserved),
        )
        if created is not None:
            _commit_and_sync_broker(conn, settings)
            return _secret_page(request, ui, settings, created, form.get("trial_id"))
    values["trial_id"] = form.get("trial_id")
    return _devices_page(request, ui, conn, who, status_code=422, errors=errors, values=values)


def _secret_page(
    request: Request, ui: Ui, settings: Settings, created: DeviceCredentials, trial_id: Any
) -> Response:
    host, port = _broker_address(settings)
    topic = f"{settings.mqtt_topic_prefix}/{created.id}/readings"
    command = (
        f"mosquitto_pub -h {host} -p {port} -q 1 -i {created.id} -u {created.id}"
        f" -P '{created.secret}' -t {topic}"
        f""" -m '{{"ts": "'$(date -Iseconds)'", "metric": "heart_rate", "value": 62}}'"""
    )
    return render(
        request, ui, "device_secret.html", device=created, command=command,
        trial_id=trial_id if isinstance(trial_id, str) and trial_id.isdigit() else None,
    )  # fmt: skip


def _device_page(
    request: Request,
    ui: Ui,
    conn: Conn,
    who: Principal,
    device_id: str,
    *,
    status_code: int = 200,
    errors: FormErrors | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    device = devices.visible_device(conn, who, device_id)
    listed = trials.list_trials(conn, who, ALL).items
    trial_ids = [t.id for t in listed]
    participants = {t: trials.list_participants(conn, who, t, ALL).items for t in trial_ids}
    return render(
        request, ui, "device.html", status_code=status_code, device=device,
        deployments=device_repository.list_deployments(conn, device_id),
        trials=listed, participants=participants, now=datetime.now(UTC),
        places=[(s, trials.list_units(conn, s.id, ALL).items) for s in trials.list_sites(conn, ALL).items],
        errors=errors or FormErrors(), values=values or dict(request.query_params),
    )  # fmt: skip


@router.get("/devices/{device_id}")
def device_page(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, device_id: str
) -> Response:
    return _device_page(request, ui, conn, who, device_id)


@router.post("/devices/{device_id}/deployments")
def deploy(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm,
    device_id: str,
) -> Response:  # fmt: skip
    values = fields(form, instants=("valid_from", "valid_until"), skip=("csrf_token", "action"))
    # One select names the place: "site:3", "unit:3:7" or "participant:12".
    place = str(values.pop("place", ""))
    kind, _, rest = place.partition(":")
    if kind == "participant":
        values["participant_id"] = rest
    elif kind == "unit":
        values["site_id"], values["unit_id"] = rest.split(":", 1)
    elif kind == "site":
        values["site_id"] = rest
    deployment, errors = validate(DeploymentCreate, values)
    if deployment is not None:
        if form.get("action") == "move":  # the open deployment ends where this one starts
            moved, errors = attempt(conn, lambda: devices.move(conn, who, device_id, deployment))
            done = moved.started if moved else None
        else:
            done, errors = attempt(conn, lambda: devices.deploy(conn, who, device_id, deployment))
        if done is not None:
            return RedirectResponse(f"/app/trials/{done.trial_id}#devices", status_code=303)
    values["place"] = place
    return _device_page(
        request, ui, conn, who, device_id, status_code=422, errors=errors, values=values
    )


@router.post("/devices/{device_id}/secret")
def rotate_secret(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm,
    device_id: str,
) -> Response:  # fmt: skip
    """A new secret, shown once; the old one stops working when the broker rereads its files."""
    settings: Settings = request.app.state.settings
    rotated = devices.rotate_secret(conn, who, device_id)
    _commit_and_sync_broker(conn, settings)
    return _secret_page(request, ui, settings, rotated, None)


@router.post("/devices/{device_id}/revoke")
def revoke(
    request: Request, ui: SignedIn, who: CoordinatorOnly, conn: Conn, form: CheckedForm,
    device_id: str,
) -> Response:  # fmt: skip
    """The device's broker credentials go for good; its deployments stay as history."""
    devices.revoke_device(conn, who, device_id)
    _commit_and_sync_broker(conn, request.app.state.settings)
    return RedirectResponse(f"/app/devices/{device_id}", status_code=303)
