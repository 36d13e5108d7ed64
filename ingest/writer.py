"""Write one batch in one transaction; retry through database outages; isolate poison messages.

A lost connection is retried with backoff until it works (or the worker is told to stop): the
batch stays unacknowledged meanwhile, so the broker holds the rest (back-pressure). Any other
database error is a message the database refuses (e.g. a NUL character inside `attrs`): the batch
is then written one message at a time and the refused one becomes a dead letter.

Consent is decided in the transaction that stores the rows: the batch's participants are locked
(FOR SHARE; a withdrawal locks them FOR UPDATE) and their committed consent periods read; only
if these differ from what the cache judged by is the batch routed again. So a withdrawal either
commits first, and this batch obeys it, or waits for this batch and then sees its rows (deleting
those stamped at or after its time, or all of them with erase). Likewise a batch the cache
refused for want of a device or a deployment (registered or deployed a moment ago, its NOTIFY not
yet heard) is routed again by the committed registry before anything becomes a dead letter.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date

import psycopg
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter
from tenacity.stop import stop_base

from devices.health import record_health
from infra.db import connect
from infra.errors import ConfigError
from ingest import metrics, repository
from ingest.batch import Batch
from ingest.decode import excerpt
from ingest.messages import DeadLetter, DeadLetterReason
from ingest.registry import Registry, consent_periods, load_registry
from ingest.sequences import record_sequences
from trials.consent import ConsentPeriod

log = logging.getLogger(__name__)

# A read-only refusal means the connection sits on a standby (a demoted primary, or a node that a
# URL without target_session_attrs reached): retried on a new connection, never a dead letter.
TRANSIENT = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.ReadOnlySqlTransaction,
    ConfigError,
)


class Stopped(Exception):
    """The worker was told to stop while the database was still away."""


@dataclass(frozen=True, slots=True)
class Written:
    readings: int  # new rows (the rest were already stored)
    events: int
    gaps: int
    dead_letters: tuple[DeadLetter, ...] = ()  # recorded (a redelivery's only if new)
    consent_dropped: int = 0
    deduplicated_readings: int = 0  # offered but already stored
    deduplicated_events: int = 0

    def __add__(self, other: Written) -> Written:
        return Written(
            self.readings + other.readings,
            self.events + other.events,
            self.gaps + other.gaps,
            self.dead_letters + other.dead_letters,
            self.consent_dropped + other.consent_dropped,
            self.deduplicated_readings + other.deduplicated_readings,
            self.deduplicated_events + other.deduplicated_events,
        )


LEDGER_PURGE_SECONDS = 3600  # how often the ledger forgets what the broker no longer redelivers


class BatchWriter:
    def __init__(self, database_url: str, ledger_seconds: int) -> None:
        self._url = database_url
        self._conn: psycopg.Connection | None = None
        self._ledger_seconds = ledger_seconds  # as long as the broker keeps the session
        self._ledger_purged = 0.0  # monotonic
        self.stop_deadline: float | None = None  # monotonic; set when stopping
        self._node: str | None = None  # host:port of the node written to last
        self._standbys = SynchronousStandbys()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def write(self, batch: Batch, registry: Registry) -> Written:
        """Commit the batch, retrying transient failures; raises Stopped if told to give up."""

        retrying = Retrying(
            retry=retry_if_exception_type(TRANSIENT),
            wait=wait_exponential_jitter(multiplier=0.05, max=2.0, jitter=0.05),
            stop=_PastDeadline(self),
            before_sleep=self._before_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._write_isolating_poison(batch, registry)
        except TRANSIENT as exc:
            raise Stopped(str(exc)) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _before_retry(self, state: RetryCallState) -> None:
        metrics.DATABASE_RETRIES.inc()
        failure = state.outcome.exception() if state.outcome else None
        reason = str(failure).strip().splitlines()[0] if str(failure).strip() else repr(failure)
        log.warning("database write failed; retrying: %s", reason)
        self.close()

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url)
            repository.create_stage_tables(self._conn)
            self._note_node(self._conn)
        return self._conn

    def _note_node(self, conn: psycopg.Connection) -> None:
        node = f"{conn.info.host}:{conn.info.port}"
        if self._node is not None and node != self._node:
            metrics.DATABASE_PRIMARY_CHANGES.inc()
            log.warning("database: now writing to %s (was %s): the primary moved", node, self._node)
        elif self._node is None:
            log.info("database: writing to %s", node)
        self._node = node

    def _write_isolating_poison(self, batch: Batch, registry: Registry) -> Written:
        try:
            return self._commit(batch, registry)
        except TRANSIENT:
            raise
        except psycopg.Error as exc:
            if len(batch) == 1:
                return self._commit(_as_storage_error(batch, registry, exc), registry)
            log.warning("batch refused by the database (%s); writing messages one by one", exc)
            self._rollback()
            totals = Written(0, 0, 0)
            for inbound, outcome in batch.entries:
                single = Batch()
                single.add(inbound, outcome, registry)
                totals += self._write_isolating_poison(single, registry)
            return totals

    def _rollback(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.rollback()

    def _commit(self, batch: Batch, registry: Registry) -> Written:
        conn = self._connection()
        try:
            batch, registry = _as_committed_registry_routes(conn, batch, registry)
            batch = _as_committed_consent_decides(conn, batch, registry)
            readings = repository.insert_readings(conn, batch.readings)
            events = repository.insert_events(conn, batch.events)
            dead_letters, consent_drops = self._not_yet_counted(conn, batch)
            if dead_letters:
                repository.insert_dead_letters(conn, (_dead_row(d) for d in dead_letters))
            if consent_drops:
                repository.add_consent_drops(conn, dict(consent_drops))
            gaps = record_sequences(conn, batch.seqs)
            if batch.seen or batch.statuses:
                record_health(conn, batch.health_updates)
            self._standbys.observe(conn)
            conn.commit()
        except BaseException:
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg.Error:
                    self.close()
            raise
        return Written(
            readings,
            events,
            gaps,
            tuple(dead_letters),
            sum(consent_drops.values()),
            len(batch.readings) - readings,
            len(batch.events) - events,
        )

    def _not_yet_counted(
        self, conn: psycopg.Connection, batch: Batch
    ) -> tuple[list[DeadLetter], Counter[tuple[date, int, str]]]:
        """The batch's dead letters and consent drops, and a redelivery's only if new."""
        if not batch.counted and not batch.held:
            return batch.dead_letters, batch.consent_drops
        now = time.monotonic()
        if now - self._ledger_purged > LEDGER_PURGE_SECONDS:
            repository.forget_counted(conn, self._ledger_seconds)
            self._ledger_purged = now
        new = repository.note_counted(conn, [*batch.counted, *batch.held])
        dead_letters, consent_drops = list(batch.dead_letters), Counter(batch.consent_drops)
        for digest, held in batch.held.items():
            if digest in new:
                dead_letters += held.dead_letters
                consent_drops.update(held.consent_drops)
        return dead_letters, consent_drops


# Refusals a stale cache can cause: the device or its deployment is newer than the cache.
CACHE_MISSES = frozenset(
    {
        DeadLetterReason.UNKNOWN_DEVICE,
        DeadLetterReason.NO_DEPLOYMENT,
        DeadLetterReason.BEFORE_REGISTRATION,
    }
)


def _as_committed_registry_routes(
    conn: psycopg.Connection, batch: Batch, registry: Registry
) -> tuple[Batch, Registry]:
    """The batch as the committed registry routes it, when the cache refused any of it for want
    of a device or deployment. The registry is small (loaded whole in milliseconds), and this
    runs only for batches holding such a refusal."""
    refused = [*batch.dead_letters, *(d for held in batch.held.values() for d in held.dead_letters)]
    if not any(dead.reason in CACHE_MISSES for dead in refused):
        return batch, registry
    committed = load_registry(conn)
    return batch.rerouted(committed), committed


def _as_committed_consent_decides(
    conn: psycopg.Connection, batch: Batch, registry: Registry
) -> Batch:
    """The batch as the committed consent decides it; its participants stay locked until commit.

    Re-routing may place a message with a participant not yet locked (the cache has moved on
    since the batch was built): then that one is locked too and the check repeated. It ends, as
    each round locks at least one more participant.
    """
    locked: dict[int, tuple[ConsentPeriod, ...]] = {}
    while pending := sorted(batch.judged_by.keys() - locked.keys()):
        committed = consent_periods(repository.lock_consent_periods(conn, pending))
        locked.update({participant: committed.get(participant, ()) for participant in pending})
        if all(periods == locked[p] for p, periods in batch.judged_by.items()):
            return batch
        registry = registry.with_consents(locked)
        batch = batch.rerouted(registry)
    return batch


class SynchronousStandbys:
    """How many standbys a commit waits for, read from the session at most every few seconds.

    Under Patroni's synchronous mode a commit (and so the broker's ack) waits for one standby;
    when that standby is lost, Patroni (not strict) empties `synchronous_standby_names` and
    ingest goes on with each acknowledged reading on one node only. That is shown, not hidden:
    the gauge `ldl_ingest_database_synchronous_standbys` and a warning in the log.
    """

    CHECK_SECONDS = 2.0

    def __init__(self) -> None:
        self.count: int | None = None
        self._checked = 0.0  # monotonic

    def observe(self, conn: psycopg.Connection) -> None:
        now = time.monotonic()
        if now - self._checked < self.CHECK_SECONDS:
            return
        self._checked = now
        row = conn.execute("SELECT current_setting('synchronous_standby_names')").fetchone()
        names = str(row[0]) if row else ""
        count = synchronous_standby_count(names)
        metrics.DATABASE_SYNCHRONOUS_STANDBYS.set(count)
        if count == self.count:
            return
        if count == 0 and self.count:
            log.warning(
                "database: no synchronous standby any more: commits, and so acks, rest on one"
                " node until a standby is back (synchronous_standby_names is empty)"
            )
        elif count:
            log.info("database: commits wait for %d synchronous standby (%s)", count, names)
        else:
            log.info("database: commits wait for no standby (a single node)")
        self.count = count


def synchronous_standby_count(names: str) -> int:
    """Standbys a commit waits for, from `synchronous_standby_names` (PostgreSQL's grammar:
    `FIRST n (...)`, `ANY n (...)`, `n (...)`, or a plain list, which means one)."""
    text = names.strip()
    if not text:
        return 0
    words = text.replace("(", " ( ").split()
    if words[0].upper() in {"FIRST", "ANY"}:
        words = words[1:]
    return int(words[0]) if words and words[0].isdigit() else 1


class _PastDeadline(stop_base):
    """Retry for ever while running; once stopping, only until the writer's stop deadline."""

    def __init__(self, writer: BatchWriter) -> None:
        self._writer = writer

    def __call__(self, retry_state: RetryCallState) -> bool:
        deadline = self._writer.stop_deadline
        return deadline is not None and time.monotonic() > deadline


def _dead_row(dead: DeadLetter) -> tuple[object, ...]:
    return (
        dead.received_at,
        dead.topic,
        dead.device_id,
        dead.reason.value,
        dead.detail,
        dead.excerpt,
        dead.payload_size,
    )


def _as_storage_error(batch: Batch, registry: Registry, exc: psycopg.Error) -> Batch:
    """The one message the database refused, as a dead letter instead."""
    inbound, outcome = batch.entries[0]
    dead = DeadLetter(
        topic=inbound.topic,
        device_id=getattr(outcome, "device_id", None),
        reason=DeadLetterReason.STORAGE_ERROR,
        detail=str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__,
        excerpt=outcome.excerpt if isinstance(outcome, DeadLetter) else excerpt(inbound.payload),
        payload_size=len(inbound.payload),
        received_at=inbound.received_at,
    )
    replacement = Batch()
    replacement.add(inbound, dead, registry)
    return replacement
