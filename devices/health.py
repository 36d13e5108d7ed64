"""Device health from the messages themselves: last seen, battery, signal, firmware.

Every accepted message says "seen at its own ts"; a `status` message also carries battery, rssi
and firmware. The ingest worker hands a batch of `HealthUpdate`s to `record_health`, which folds
them per device and upserts once per device. Last seen never moves backwards, and an older status
never overwrites a newer one (messages may arrive late or be redelivered).

A device is offline when nothing arrived for `OFFLINE_AFTER_INTERVALS` of its type's
expected_interval; the SQL view `device_health_status` (migration 0004) is where that is decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from devices import repository
from devices.schemas import FoldedHealth

OFFLINE_AFTER_INTERVALS = 3  # mirrored in the view device_health_status (0004_devices.sql)


@dataclass(frozen=True, slots=True)
class HealthUpdate:
    """What one message says about its device; battery/rssi/firmware only from status messages."""

    device_id: str
    seen_at: datetime
    battery: float | None = None
    rssi: float | None = None
    firmware: str | None = None

    @property
    def has_status(self) -> bool:
        return self.battery is not None or self.rssi is not None or self.firmware is not None


def _valid_battery(value: float | None) -> float | None:
    # The table refuses values outside 0-100; one bad status must not sink the whole batch.
    return value if value is not None and 0 <= value <= 100 else None


def fold_updates(updates: Iterable[HealthUpdate]) -> list[FoldedHealth]:
    """Fold a batch into one row per device, sorted by id (a stable lock order for the upsert)."""
    by_device: dict[str, list[HealthUpdate]] = {}
    for update in updates:
        by_device.setdefault(update.device_id, []).append(update)
    folded = []
    for device_id in sorted(by_device):
        ordered = sorted(by_device[device_id], key=lambda u: u.seen_at)
        statuses = [u for u in reversed(ordered) if u.has_status]  # newest first
        folded.append(
            FoldedHealth(
                device_id=device_id,
                last_seen_at=ordered[-1].seen_at,
                last_status_at=statuses[0].seen_at if statuses else None,
                battery=next(
                    (b for u in statuses if (b := _valid_battery(u.battery)) is not None), None
                ),
                rssi=next((u.rssi for u in statuses if u.rssi is not None), None),
                firmware=next((u.firmware for u in statuses if u.firmware is not None), None),
            )
        )
    return folded


def record_health(conn: psycopg.Connection, updates: Sequence[HealthUpdate]) -> int:
    """Upsert a batch of health updates in the caller's transaction; returns devices touched.

    Updates for unknown device ids are skipped rather than failing the batch.
    """
    folded = fold_updates(updates)
    if not folded:
        return 0
    return repository.upsert_health(conn, folded)
