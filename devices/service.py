"""The rules of the registry: credentials, gateways, deployments, who may see what.

Services never commit: the caller owns the transaction (and regenerates the broker files after
its commit, see devices.broker.regenerate).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import psycopg

from access.schemas import Principal, Role
from access.service import record
from devices import repository
from devices.broker import hash_secret, new_secret
from devices.placement import Placement, placement_at
from devices.schemas import (
    Deployment,
    DeploymentCreate,
    Device,
    DeviceCreate,
    DeviceCredentials,
    DeviceHealth,
    DeviceKind,
    DeviceMoved,
    DeviceType,
    DeviceTypeCreate,
)
from i18n import Message
from infra.errors import Conflict, Invalid, NotFound


def _audit_view(device: Device) -> dict[str, object]:
    return device.model_dump(mode="json")


# ------------------------------------------------------------------ device types
def create_device_type(
    conn: psycopg.Connection, actor: Principal, request: DeviceTypeCreate
) -> DeviceType:
    created = repository.insert_device_type(conn, request)
    record(
        conn,
        actor,
        "device_type.create",
        "device_type",
        created.code,
        after=created.model_dump(mode="json"),
    )
    return created


# ----------------------------------------------------------------------- devices
def _check_gateway(conn: psycopg.Connection, gateway_id: str) -> None:
    gateway = repository.get_device(conn, gateway_id)
    if gateway is None:
        raise Invalid("gateway '%(gateway)s' is not registered", {"gateway": gateway_id})
    if gateway.kind != DeviceKind.GATEWAY:
        raise Invalid("'%(gateway)s' is a device, not a gateway", {"gateway": gateway_id})
    if gateway.revoked_at is not None:
        raise Invalid("gateway '%(gateway)s' is revoked", {"gateway": gateway_id})


def register_device(
    conn: psycopg.Connection,
    actor: Principal,
    request: DeviceCreate,
    *,
    reserved_usernames: Collection[str] = (),
) -> DeviceCredentials:
    """Register a device or gateway and issue its MQTT secret (returned once, stored hashed)."""
    if request.id in reserved_usernames:
        raise Conflict(
            "'%(device)s' is reserved for a system account on the broker", {"device": request.id}
        )
    if request.gateway_id is not None:
        _check_gateway(conn, request.gateway_id)
    secret = new_secret()
    device = repository.insert_device(conn, request, hash_secret(secret))
    record(conn, actor, "device.register", "device", device.id, after=_audit_view(device))
    return DeviceCredentials(**device.model_dump(), mqtt_username=device.id, secret=secret)


def _existing_device(conn: psycopg.Connection, device_id: str) -> Device:
    device = repository.get_device(conn, device_id)
    if device is None:
        raise NotFound("device '%(device)s' is not registered", {"device": device_id})
    return device


def rotate_secret(conn: psycopg.Connection, actor: Principal, device_id: str) -> DeviceCredentials:
    """A new secret; the old one stops working at the broker's next reload."""
    _existing_device(conn, device_id)
    secret = new_secret()
    device = repository.set_secret_hash(conn, device_id, hash_secret(secret))
    if device is None:
        raise Conflict(
            "device '%(device)s' is revoked; register a new id instead", {"device": device_id}
        )
    record(conn, actor, "device.rotate_secret", "device", device_id)
    return DeviceCredentials(**device.model_dump(), mqtt_username=device.id, secret=secret)


def revoke_device(conn: psycopg.Connection, actor: Principal, device_id: str) -> Device:
    """Withdraw the broker credentials for good; deployments stay as history."""
    before = _existing_device(conn, device_id)
    device = repository.revoke_device(conn, device_id)
    assert device is not None
    record(
        conn,
        actor,
        "device.revoke",
        "device",
        device_id,
        before=_audit_view(before),
        after=_audit_view(device),
    )
    return device


def visible_device(conn: psycopg.Connection, principal: Principal, device_id: str) -> Device:
    """A company sees only the devices it supplies; to it, others do not exist."""
    device = repository.get_device(conn, device_id)
    if device is None or (
        principal.role == Role.COMPANY and device.company_id != principal.company_id
    ):
        raise NotFound("device '%(device)s' is not registered", {"device": device_id})
    return device


# ------------------------------------------------------------------- deployments
def _insert_deployment(
    conn: psycopg.Connection, device_id: str, request: DeploymentCreate
) -> Deployment:
    site_id, unit_id = request.site_id, request.unit_id
    if request.participant_id is not None:
        home = repository.participant_home(conn, request.participant_id)
        if home is None:
            raise Invalid(
                "participant %(participant)s does not exist",
                {"participant": request.participant_id},
            )
        if home.trial_id != request.trial_id:
            raise Invalid(
                "participant %(participant)s is a participant of trial %(home)s,"
                " not of trial %(trial)s",
                {
                    "participant": request.participant_id,
                    "home": home.trial_id,
                    "trial": request.trial_id,
                },
            )
        if site_id is None:
            site_id, unit_id = home.site_id, home.unit_id
    assert site_id is not None  # DeploymentCreate insists on a site or a participant
    return repository.insert_deployment(
        conn,
        device_id=device_id,
        trial_id=request.trial_id,
        site_id=site_id,
        unit_id=unit_id,
        participant_id=request.participant_id,
        valid_from=request.valid_from,
        valid_until=request.valid_until,
        note=request.note,
    )


def _deployable_device(conn: psycopg.Connection, device_id: str) -> Device:
    device = _existing_device(conn, device_id)
    if device.revoked_at is not None:
        raise Conflict(
            "device '%(device)s' is revoked and cannot be deployed", {"device": device_id}
        )
    return device


def deploy(
    conn: psycopg.Connection, actor: Principal, device_id: str, request: DeploymentCreate
) -> Deployment:
    _deployable_device(conn, device_id)
    deployment = _insert_deployment(conn, device_id, request)
    record(
        conn,
        actor,
        "deployment.create",
        "deployment",
        deployment.id,
        after=deployment.model_dump(mode="json"),
    )
    return deployment


def move(
    conn: psycopg.Connection, actor: Principal, device_id: str, request: DeploymentCreate
) -> DeviceMoved:
    """End the deployment covering `valid_from` there, and start the new one: one transaction."""
    _deployable_device(conn, device_id)
    current = repository.deployment_covering(conn, device_id, request.valid_from)
    ended = None
    if current is not None:
        if current.valid_from >= request.valid_from:
            raise Invalid(
                "deployment #%(deployment)s starts at %(valid_from)s; a move"
                " must come after the start of the deployment it ends",
                {"deployment": current.id, "valid_from": current.valid_from},
            )
        ended = repository.end_deployment(conn, current.id, request.valid_from)
    started = _insert_deployment(conn, device_id, request)
    record(
        conn,
        actor,
        "deployment.move",
        "deployment",
        started.id,
        before=None if ended is None else ended.model_dump(mode="json"),
        after=started.model_dump(mode="json"),
    )
    return DeviceMoved(ended=ended, started=started)


def end_deployment(
    conn: psycopg.Connection, actor: Principal, deployment_id: int, at: datetime
) -> Deployment:
    before = repository.get_deployment(conn, deployment_id)
    if before is None:
        raise NotFound("deployment %(deployment)s does not exist", {"deployment": deployment_id})
    ended = repository.end_deployment(conn, deployment_id, at)
    if ended is None:
        raise Invalid(
            "deployment %(deployment)s runs from %(valid_from)s until %(until)s;"
            " it can only be ended at a time inside that range",
            {
                "deployment": deployment_id,
                "valid_from": before.valid_from,
                "until": before.valid_until or Message("open-ended"),
            },
        )
    record(
        conn,
        actor,
        "deployment.end",
        "deployment",
        deployment_id,
        before=before.model_dump(mode="json"),
        after=ended.model_dump(mode="json"),
    )
    return ended


def placement_of(conn: psycopg.Connection, device_id: str, at: datetime) -> Placement | None:
    """Where device D was deployed at t: the same answer the ingest worker uses."""
    return placement_at(repository.load_placements(conn, device_id), at)


# ------------------------------------------------------------------------ health
def _company_filter(principal: Principal) -> int | None:
    return principal.company_id if principal.role == Role.COMPANY else None


def trial_health(
    conn: psycopg.Connection, principal: Principal, trial_id: int, *, limit: int, offset: int
) -> tuple[list[DeviceHealth], int]:
    owner = repository.trial_owner(conn, trial_id)
    if owner is None or (principal.role == Role.COMPANY and owner != principal.company_id):
        raise NotFound("trial %(trial)s does not exist", {"trial": trial_id})
    return repository.list_health(conn, trial_id=trial_id, limit=limit, offset=offset)


def site_health(
    conn: psycopg.Connection, principal: Principal, site_id: int, *, limit: int, offset: int
) -> tuple[list[DeviceHealth], int]:
    if not repository.site_exists(conn, site_id):
        raise NotFound("site %(site)s does not exist", {"site": site_id})
    return repository.list_health(
        conn, site_id=site_id, company_id=_company_filter(principal), limit=limit, offset=offset
    )
