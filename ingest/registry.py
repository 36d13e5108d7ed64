"""The worker's cache of devices, deployments and consents, and the routing decision it feeds.

The registry is small (hundreds of devices), so it is loaded whole and replaced whole: a reload
builds a new frozen `Registry` and swaps one reference. A listener thread LISTENs on the channel
that migration 0005's triggers NOTIFY, so a consent withdrawal reaches the gate within
milliseconds; after a lost connection it reloads, as it may have missed a notification.
Its consent answer is a fast first judgement only: the writer confirms it against the committed
consent in the transaction that stores the rows (ingest/writer.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import psycopg

from devices.placement import Placement, placement_at
from infra.db import connect
from ingest import repository
from ingest.messages import NO_TELEMETRY_CONSENT, DeadLetterReason
from trials.consent import ConsentPeriod, Scope, scope_active

log = logging.getLogger(__name__)

REGISTRY_CHANNEL = "ldl_registry_changed"
MAX_CLOCK_SKEW = timedelta(minutes=5)  # a settings candidate: LDL_INGEST_MAX_FUTURE_SECONDS


@dataclass(frozen=True, slots=True)
class Stored:
    placement: Placement


@dataclass(frozen=True, slots=True)
class ConsentDrop:
    trial_id: int
    participant_id: int
    reason: str = NO_TELEMETRY_CONSENT


@dataclass(frozen=True, slots=True)
class Refused:
    reason: DeadLetterReason


Route = Stored | ConsentDrop | Refused
UNKNOWN_DEVICE = Refused(DeadLetterReason.UNKNOWN_DEVICE)
NO_DEPLOYMENT = Refused(DeadLetterReason.NO_DEPLOYMENT)
FUTURE = Refused(DeadLetterReason.FUTURE_TIMESTAMP)
BEFORE_REGISTRATION = Refused(DeadLetterReason.BEFORE_REGISTRATION)


@dataclass(frozen=True)
class Registry:
    # Per device, the earliest time of record accepted: its registration less the clock skew a
    # device may have (a device registered at 10:00:00.4 whose first reading says 10:00:00 is
    # not "before registration"; its clock rounds to the second, or runs a little behind).
    accepts_from: Mapping[str, datetime] = field(default_factory=dict)
    placements: Mapping[str, tuple[Placement, ...]] = field(default_factory=dict)
    consents: Mapping[int, tuple[ConsentPeriod, ...]] = field(default_factory=dict)

    def knows(self, device_id: str) -> bool:
        return device_id in self.accepts_from

    def check_time(self, device_id: str, ts: datetime, received_at: datetime) -> Refused | None:
        """Refuse a device time from the future or from before the device existed."""
        if ts > received_at + MAX_CLOCK_SKEW:
            return FUTURE
        if ts < self.accepts_from[device_id]:
            return BEFORE_REGISTRATION
        return None

    def route_span(
        self, device_id: str, first: datetime, last: datetime, received_at: datetime
    ) -> Stored | None:
        """`Stored` when every time in [first, last] is stored the same way, else None.

        One deployment covering both ends covers everything between them (deployments and
        consent periods are intervals), and so does one telemetry consent period; anything
        else (a boundary inside the span, a refusal, a consent drop) is left to `route` per item.
        """
        accepts_from = self.accepts_from.get(device_id)
        if accepts_from is None or first < accepts_from or last > received_at + MAX_CLOCK_SKEW:
            return None
        for placement in self.placements.get(device_id, ()):
            if placement.covers(first):
                if not placement.covers(last):
                    return None
                participant = placement.participant_id
                if participant is None or any(
                    Scope.TELEMETRY in period.scopes
                    and period.covers(first)
                    and period.covers(last)
                    for period in self.consents.get(participant, ())
                ):
                    return Stored(placement)
                return None
        return None

    def route(self, device_id: str, ts: datetime, received_at: datetime) -> Route:
        """Where a reading or event at `ts` belongs, or why it is not stored."""
        if device_id not in self.accepts_from:
            return UNKNOWN_DEVICE
        refused = self.check_time(device_id, ts, received_at)
        if refused:
            return refused
        placement = placement_at(self.placements.get(device_id, ()), ts)
        if placement is None:
            return NO_DEPLOYMENT
        if placement.participant_id is not None and not scope_active(
            self.consents.get(placement.participant_id, ()), Scope.TELEMETRY, ts
        ):
            return ConsentDrop(placement.trial_id, placement.participant_id)
        return Stored(placement)

    def with_consents(self, consents: Mapping[int, tuple[ConsentPeriod, ...]]) -> Registry:
        """This registry with these participants' consent periods replaced."""
        return replace(self, consents={**self.consents, **consents})


def _utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


def _utc_or_none(at: datetime | None) -> datetime | None:
    return None if at is None else at.astimezone(UTC)


def load_registry(conn: psycopg.Connection) -> Registry:
    # Every time in UTC (the tzinfo device times carry): comparing datetimes that share one
    # tzinfo object skips the utcoffset() calls, and the gate compares per reading.
    devices, placements, consents = repository.load_registry_rows(conn)
    by_device: dict[str, list[Placement]] = {}
    for placement in placements:
        by_device.setdefault(placement.device_id, []).append(
            replace(
                placement,
                valid_from=_utc(placement.valid_from),
                valid_until=_utc_or_none(placement.valid_until),
            )
        )
    return Registry(
        accepts_from={device_id: _utc(at) - MAX_CLOCK_SKEW for device_id, at in devices},
        placements={key: tuple(value) for key, value in by_device.items()},
        consents=consent_periods(consents),
    )


def consent_periods(
    rows: Iterable[tuple[int, ConsentPeriod]],
) -> dict[int, tuple[ConsentPeriod, ...]]:
    """Periods per participant, in UTC and in the order loaded (the writer compares tuples)."""
    by_participant: dict[int, list[ConsentPeriod]] = {}
    for participant_id, period in rows:
        by_participant.setdefault(participant_id, []).append(
            ConsentPeriod(period.scopes, _utc(period.valid_from), _utc_or_none(period.valid_until))
        )
    return {key: tuple(value) for key, value in by_participant.items()}


class RegistryCache:
    """The current `Registry`, kept fresh by a LISTEN thread."""

    def __init__(self, database_url: str, on_reload: Callable[[], None] | None = None) -> None:
        self._url = database_url
        self._on_reload = on_reload
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._listen, name="ldl-ingest-registry", daemon=True
        )
        self.current = Registry()

    def start(self, timeout: float = 30) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("could not load the device registry from the database")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._url, autocommit=True) as conn:
                    # LISTEN before loading, so no change can slip between the two.
                    conn.execute(f"LISTEN {REGISTRY_CHANNEL}")
                    self._reload(conn)
                    while not self._stop.is_set():
                        changed = False
                        for _ in conn.notifies(timeout=0.2, stop_after=1):
                            changed = True
                        if changed:
                            for _ in conn.notifies(timeout=0.02):  # one reload per burst
                                pass
                            self._reload(conn)
            except Exception as exc:  # the listener must outlive any database outage
                log.warning("registry listener: %s; retrying", exc)
                self._stop.wait(0.5)

    def _reload(self, conn: psycopg.Connection) -> None:
        self.current = load_registry(conn)
        self._ready.set()
        if self._on_reload:
            self._on_reload()
