"""A batch: the routed outcome of some messages, ready to be written in one transaction.

Every message in a batch ends as stored rows, dead letters or consent drops (or a mix, for a
batch message); the messages are acknowledged together once the transaction has committed.
The consent decisions here come from the worker's cache; the batch notes which consent periods
it judged each participant by, and the writer confirms them against the committed ones in the
transaction that stores the rows (`rerouted` re-decides the batch when they differ).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from devices.health import HealthUpdate
from devices.placement import Placement
from ingest.decode import excerpt
from ingest.messages import DeadLetter, DeadLetterReason, DeviceMessage, Inbound
from ingest.registry import ConsentDrop, Refused, Registry
from ingest.sequences import SeqSeen
from trials.consent import ConsentPeriod


@dataclass
class Batch:
    entries: list[tuple[Inbound, DeviceMessage | DeadLetter]] = field(default_factory=list)
    readings: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    consent_drops: Counter[tuple[date, int, str]] = field(default_factory=Counter)
    seen: dict[str, datetime] = field(default_factory=dict)  # newest sighting per device
    statuses: list[HealthUpdate] = field(default_factory=list)
    seqs: list[SeqSeen] = field(default_factory=list)
    device_times: list[datetime] = field(default_factory=list)  # one per message, for lag
    # Dead letters and consent drops are not idempotent rows: each message that has some is
    # noted in the ledger (ingest_counted_messages) by digest; a redelivered (DUP) message's are
    # held apart and recorded only if the ledger had not noted it yet (writer.py decides).
    counted: list[bytes] = field(default_factory=list)  # digests to note in the ledger
    held: dict[bytes, Held] = field(default_factory=dict)  # a DUP message's, by digest
    # The consent periods each participant's items were judged by (None: by more than one
    # registry version); the writer compares them with the committed ones.
    judged_by: dict[int, tuple[ConsentPeriod, ...] | None] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def rows(self) -> int:
        return len(self.readings) + len(self.events)

    @property
    def health_updates(self) -> list[HealthUpdate]:
        return [*(HealthUpdate(d, ts) for d, ts in self.seen.items()), *self.statuses]

    def rerouted(self, registry: Registry) -> Batch:
        """The same messages routed afresh (drops, dead letters and ledger digests included)."""
        batch = Batch()
        for inbound, outcome in self.entries:
            batch.add(inbound, outcome, registry)
        return batch

    def add(
        self, inbound: Inbound, outcome: DeviceMessage | DeadLetter, registry: Registry
    ) -> None:
        self.entries.append((inbound, outcome))
        dead_before = len(self.dead_letters)
        drops_before = Counter(self.consent_drops) if inbound.dup else None
        if isinstance(outcome, DeadLetter):
            self.dead_letters.append(outcome)
        elif not _route(self, inbound, outcome, registry):
            return  # stored rows only: idempotent, nothing for the ledger
        digest = message_digest(inbound)
        if drops_before is None:
            self.counted.append(digest)
            return
        # A redelivery: its dead letters and drops wait for the ledger (writer.py).
        self.held[digest] = Held(self.dead_letters[dead_before:], self.consent_drops - drops_before)
        del self.dead_letters[dead_before:]
        self.consent_drops = drops_before


@dataclass(frozen=True)
class Held:
    """A redelivered message's dead letters and consent drops, until the ledger is asked."""

    dead_letters: list[DeadLetter]
    consent_drops: Counter[tuple[date, int, str]]


def message_digest(inbound: Inbound) -> bytes:
    """What identifies a message across deliveries: its topic and its bytes."""
    digest = hashlib.blake2b(inbound.topic.encode(), digest_size=16)
    digest.update(b"\0")
    digest.update(inbound.payload)
    return digest.digest()


def _route(batch: Batch, inbound: Inbound, message: DeviceMessage, registry: Registry) -> bool:
    """Route into the batch; True if the message left dead letters or consent drops."""
    device_id, received_at = message.device_id, inbound.received_at
    if not registry.knows(device_id):
        batch.dead_letters.append(_dead(inbound, message, DeadLetterReason.UNKNOWN_DEVICE, ""))
        return True
    if message.status is not None:
        status = message.status
        refused = registry.check_time(device_id, status.ts, received_at)
        if refused:
            batch.dead_letters.append(_dead(inbound, message, refused.reason, f"ts={status.ts}"))
            return True
        batch.statuses.append(
            HealthUpdate(device_id, status.ts, status.battery, status.rssi, status.firmware)
        )
        _note(batch, message, status.ts, None)
        return False
    if message.readings:
        stamps = [reading[0] for reading in message.readings]
    else:
        stamps = [event.ts for event in message.events]
    first, last = min(stamps), max(stamps)
    span = registry.route_span(device_id, first, last, received_at)
    if span is not None:  # the common case: one deployment and one consent for the message
        if span.placement.participant_id is not None:
            _judged(batch, registry, span.placement.participant_id)
        _store(batch, message, span.placement, received_at)
        _note(batch, message, last, span.placement.trial_id)
        return False
    refusals: Counter[DeadLetterReason] = Counter()
    first_refused: dict[DeadLetterReason, datetime] = {}
    accepted_ts: datetime | None = None
    trial_id: int | None = None
    dropped = False
    for index, ts in enumerate(stamps):
        route = registry.route(device_id, ts, received_at)
        if isinstance(route, Refused):
            refusals[route.reason] += 1
            first_refused.setdefault(route.reason, ts)
            continue
        accepted_ts = ts if accepted_ts is None else max(accepted_ts, ts)
        if isinstance(route, ConsentDrop):
            _judged(batch, registry, route.participant_id)
            batch.consent_drops[(ts.date(), route.trial_id, route.reason)] += 1
            dropped = True
            trial_id = trial_id or route.trial_id
            continue
        trial_id = trial_id or route.placement.trial_id
        if route.placement.participant_id is not None:
            _judged(batch, registry, route.placement.participant_id)
        _store(batch, message, route.placement, received_at, index)
    for reason, count in refusals.items():
        detail = f"{count} of {len(stamps)} {message.channel}; first ts={first_refused[reason]}"
        batch.dead_letters.append(_dead(inbound, message, reason, detail))
    if accepted_ts is not None:
        _note(batch, message, accepted_ts, trial_id)
    elif message.seqs:
        _note(batch, message, stamps[0], None, seen=False)
    return dropped or bool(refusals)


def _judged(batch: Batch, registry: Registry, participant_id: int) -> None:
    """Note the periods the participant's items were judged by, for the writer to confirm."""
    periods = registry.consents.get(participant_id, ())
    noted = batch.judged_by.setdefault(participant_id, periods)
    if noted is not periods and noted != periods:
        batch.judged_by[participant_id] = None  # two registry versions: re-judge at commit


def _store(
    batch: Batch,
    message: DeviceMessage,
    placement: Placement,
    received_at: datetime,
    index: int | None = None,
) -> None:
    """Rows for the message's items, or only item `index` (routing and consent decided)."""
    device_id, trial_id, site_id = message.device_id, placement.trial_id, placement.site_id
    unit_id, participant_id = placement.unit_id, placement.participant_id
    if message.readings:
        readings = message.readings if index is None else message.readings[index : index + 1]
        batch.readings.extend(
            [
                (ts, device_id, metric, value,
                 trial_id, site_id, unit_id, participant_id, seq, received_at)
                for ts, metric, value, seq in readings
            ]
        )  # fmt: skip
        return
    events = message.events if index is None else message.events[index : index + 1]
    for event in events:
        attrs = orjson.dumps(event.attrs).decode() if event.attrs else None
        batch.events.append(
            (
                event.ts, device_id, event.type, event.duration_s, attrs,
                trial_id, site_id, unit_id, participant_id, event.seq, received_at,
            )
        )  # fmt: skip


def _note(
    batch: Batch, message: DeviceMessage, ts: datetime, trial_id: int | None, seen: bool = True
) -> None:
    """Record the sighting (health), the sequence numbers (gaps) and the device time (lag)."""
    if seen:
        previous = batch.seen.get(message.device_id)
        if previous is None or previous < ts:
            batch.seen[message.device_id] = ts
        batch.device_times.append(ts)
    for seq in message.seqs:
        batch.seqs.append(SeqSeen(message.device_id, message.channel.value, seq, trial_id, ts))


def _dead(
    inbound: Inbound, message: DeviceMessage, reason: DeadLetterReason, detail: str
) -> DeadLetter:
    return DeadLetter(
        topic=inbound.topic,
        device_id=message.device_id,
        reason=reason,
        detail=detail,
        excerpt=excerpt(inbound.payload),
        payload_size=len(inbound.payload),
        received_at=inbound.received_at,
    )
