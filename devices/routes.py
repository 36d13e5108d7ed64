"""The HTTP face of this domain: thin handlers that parse, authorise, call the service, return.

Changes to credentials (register, rotate, revoke) commit first and then regenerate the broker's
password and ACL files, so Mosquitto never knows of a device the database does not.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import AwareDatetime

from access.deps import Coordinator, CurrentPrincipal
from access.schemas import Role
from devices import broker, repository, service
from devices.placement import Placement
from devices.schemas import (
    Deployment,
    DeploymentCreate,
    DeploymentEnd,
    Device,
    DeviceCreate,
    DeviceCredentials,
    DeviceHealth,
    DeviceId,
    DeviceKind,
    DeviceMoved,
    DeviceType,
    DeviceTypeCreate,
)
from infra.errors import LdlError, NotFound
from infra.http import Conn, Page, Paging
from infra.settings import Settings
from infra.types import Id

log = logging.getLogger(__name__)
router = APIRouter(tags=["devices"])
DevicePath = Annotated[DeviceId, Path()]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(_settings)]


def _commit_and_sync_broker(conn: psycopg.Connection, settings: Settings) -> None:
    conn.commit()
    try:
        broker.regenerate(conn, settings)
    except (OSError, LdlError):
        # The change is committed and a new secret must still reach the caller; the files
        # catch up with `ldl broker sync` or the next change.
        log.exception("could not regenerate the Mosquitto files; run `ldl broker sync`")


# ------------------------------------------------------------------ device types
@router.get("/device-types", response_model=list[DeviceType])
def list_device_types(conn: Conn, who: CurrentPrincipal) -> list[DeviceType]:
    return repository.list_device_types(conn)


@router.post("/device-types", status_code=status.HTTP_201_CREATED, response_model=DeviceType)
def create_device_type(body: DeviceTypeCreate, conn: Conn, who: Coordinator) -> DeviceType:
    return service.create_device_type(conn, who, body)


@router.get("/device-schemas", tags=["device makers"])
def device_payload_schemas() -> dict[str, Any]:
    """The JSON Schemas of the MQTT payloads, keyed by kind (reading, event, status, ...)."""
    from devices.payloads import payload_json_schemas  # owned by the ingest side

    return payload_json_schemas()


# ----------------------------------------------------------------------- devices
@router.post("/devices", status_code=status.HTTP_201_CREATED, response_model=DeviceCredentials)
def register_device(
    body: DeviceCreate, conn: Conn, who: Coordinator, settings: AppSettings
) -> DeviceCredentials:
    """Register a device or gateway. The response holds its MQTT secret: the only time it is shown."""
    reserved = broker.reserved_usernames(settings)
    created = service.register_device(conn, who, body, reserved_usernames=reserved)
    _commit_and_sync_broker(conn, settings)
    return created


@router.get("/devices", response_model=Page[Device])
def list_devices(
    conn: Conn,
    who: CurrentPrincipal,
    paging: Paging,
    kind: DeviceKind | None = None,
    gateway_id: Annotated[DeviceId | None, Query()] = None,
    company_id: Annotated[Id | None, Query()] = None,
    include_revoked: bool = False,
) -> Page[Device]:
    """All devices; a company key sees the devices its company supplies."""
    if who.role == Role.COMPANY:
        company_id = who.company_id
    items, total = repository.list_devices(
        conn,
        company_id=company_id,
        kind=kind,
        gateway_id=gateway_id,
        include_revoked=include_revoked,
        limit=paging.limit,
        offset=paging.offset,
    )
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.get("/devices/{device_id}", response_model=Device)
def get_device(device_id: DevicePath, conn: Conn, who: CurrentPrincipal) -> Device:
    return service.visible_device(conn, who, device_id)


@router.post("/devices/{device_id}/secret", response_model=DeviceCredentials)
def rotate_device_secret(
    device_id: DevicePath, conn: Conn, who: Coordinator, settings: AppSettings
) -> DeviceCredentials:
    """Issue a new secret (shown once); the old one stops working when the broker reloads."""
    rotated = service.rotate_secret(conn, who, device_id)
    _commit_and_sync_broker(conn, settings)
    return rotated


@router.post("/devices/{device_id}/revoke", response_model=Device)
def revoke_device(
    device_id: DevicePath, conn: Conn, who: Coordinator, settings: AppSettings
) -> Device:
    """Withdraw the device's broker credentials; takes effect at once, without a broker restart."""
    revoked = service.revoke_device(conn, who, device_id)
    _commit_and_sync_broker(conn, settings)
    return revoked


# ------------------------------------------------------------------- deployments
@router.get("/devices/{device_id}/deployments", response_model=list[Deployment])
def list_deployments(device_id: DevicePath, conn: Conn, who: CurrentPrincipal) -> list[Deployment]:
    service.visible_device(conn, who, device_id)
    return repository.list_deployments(conn, device_id)


@router.post(
    "/devices/{device_id}/deployments",
    status_code=status.HTTP_201_CREATED,
    response_model=Deployment,
)
def deploy_device(
    device_id: DevicePath, body: DeploymentCreate, conn: Conn, who: Coordinator
) -> Deployment:
    """Place a device in a trial at a site/unit or with a participant; 409 if it overlaps."""
    return service.deploy(conn, who, device_id, body)


@router.post(
    "/devices/{device_id}/move", status_code=status.HTTP_201_CREATED, response_model=DeviceMoved
)
def move_device(
    device_id: DevicePath, body: DeploymentCreate, conn: Conn, who: Coordinator
) -> DeviceMoved:
    """End the deployment that covers `valid_from` there and start this one, in one step."""
    return service.move(conn, who, device_id, body)


@router.post("/deployments/{deployment_id}/end", response_model=Deployment)
def end_deployment(
    deployment_id: Annotated[Id, Path()], body: DeploymentEnd, conn: Conn, who: Coordinator
) -> Deployment:
    return service.end_deployment(conn, who, deployment_id, body.at)


@router.get("/devices/{device_id}/placement", response_model=Placement)
def device_placement(
    device_id: DevicePath,
    conn: Conn,
    who: CurrentPrincipal,
    at: Annotated[AwareDatetime, Query(description="the moment asked about")],
) -> Placement:
    """Where the device was deployed at `at` (from inclusive, until exclusive); 404 if nowhere."""
    service.visible_device(conn, who, device_id)
    placement = service.placement_of(conn, device_id, at)
    if placement is None:
        raise NotFound(f"device '{device_id}' was not deployed at {at.isoformat()}")
    return placement


# ------------------------------------------------------------------------ health
@router.get("/trials/{trial_id}/devices/health", response_model=Page[DeviceHealth])
def trial_device_health(
    trial_id: Annotated[Id, Path()], conn: Conn, who: CurrentPrincipal, paging: Paging
) -> Page[DeviceHealth]:
    """Devices deployed in the trial now, offline first."""
    items, total = service.trial_health(
        conn, who, trial_id, limit=paging.limit, offset=paging.offset
    )
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)


@router.get("/sites/{site_id}/devices/health", response_model=Page[DeviceHealth])
def site_device_health(
    site_id: Annotated[Id, Path()], conn: Conn, who: CurrentPrincipal, paging: Paging
) -> Page[DeviceHealth]:
    """Devices deployed at the site now, offline first; a company sees its own trials' only."""
    items, total = service.site_health(conn, who, site_id, limit=paging.limit, offset=paging.offset)
    return Page(items=items, total=total, limit=paging.limit, offset=paging.offset)
