"""The MQTT ingest: station events in, one transaction each batch, ack after commit.

paho's network thread only puts messages on a queue (``_on_message``): one queue per
station, served round-robin (``server.ingest.queues.FairQueue``), so a station that
floods the broker adds a few messages to each batch instead of delaying everyone. One
worker thread takes them in batches (up to ``batch_max``), answers a ``msg_id`` it
has answered before from memory (``RecentAnswers``: no write transaction), answers a
station's garbage beyond ``INGEST_GARBAGE_RATE`` ``rate_limited`` without recording
it, orders each station's events by ``seq``, and decides the rest in one
write transaction, each through ``station.service.handle`` (dedupe on ``msg_id``,
workflow, records) sharing one catalog cache (``station.cache.Cache``; on SQLite the
stations' states, lots and reservations carry on to the next batch while no other
connection writes: ``_carry``; the events of new ``msg_id`` s (``service.expect``) and
the picks' consumptions, outbox events and ledger lines are inserted together, one
executemany per table, before the commit: ``service.flush``). After the
commit, ``station.publish.after_commit`` (the same as for the tablet and the API)
publishes each event's ``cmd/feedback``, acknowledges it (paho manual ack: the broker
keeps a message until then, and redelivers it to our persistent session if we die
first), and publishes each touched station's retained ``state`` once, from its last
event. Group commit keeps SQLite's one-writer lock busy with useful work.

The batch runs without a savepoint per effect (``handle(savepoint=False)``): a
database refusal (a serial built in twice by another ingest, stock gone) rolls the
whole batch back, and it is retried one transaction per message with savepoints, so
one bad scan never sinks the others and nothing is counted twice. A database error
(locked, connection lost) retries the batch without acking; a message that still
fails on its own is answered ``internal_error`` with an incident id and kept as a
dead letter (``server.ingest.deadletters``), like every payload that does not decode,
then acknowledged: one message can never stop the ingest or come back after a restart.
Should the worker thread die anyway, ``alive()`` turns false: ``/healthz`` answers 503
and ``taktline ingest`` exits non-zero for its service manager to restart it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from firmware_bridge import topics
from server.db import WalCheckpointer, begin_write, deadlocked
from server.dispatch import DispatchError
from server.ingest import deadletters, partition
from server.ingest.partition import Partition
from server.ingest.payload import Envelope, InvalidPayload, decode, envelope
from server.ingest.queues import FairQueue, RecentAnswers, TokenBucket
from server.messaging import client as server_mqtt
from server.models.types import EventResult
from server.operations import metrics
from station import messages, publish, service
from station.cache import Cache

log = logging.getLogger(__name__)
SHARE_GROUP = "taktline-ingest"
# The worker notes the time at least this often; beyond it, it is taken for dead.
HEARTBEAT_LIMIT_SECONDS = 30.0
# How long batches share what they read of the catalog (issue 19): at a scan or two a
# batch, reading the station, its parts and their substitutes again every time was a
# third of a scan's cost. An edit of the catalog reaches the ingest within this long;
# what was not found (a station, part, badge or code just added) is read again in every
# batch, so an addition is seen at once.
CATALOG_SECONDS = 1.0
# A station's refused payloads logged one by one in a batch; the rest as one line.
BAD_LOGGED = 3
# Write transactions held longer are logged, a line every SLOW_LOG_SECONDS at most: on
# SQLite every other writer waited for them.
SLOW_TRANSACTION_SECONDS = 0.1
SLOW_LOG_SECONDS = 10.0


@dataclass
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    order: int
    doc: dict[str, Any] | InvalidPayload | None = None  # decoded once per batch
    env: Envelope | None = None  # the valid event, when ``doc`` is one
    arrived: float = field(default_factory=time.monotonic)  # for the latency metric


@dataclass(frozen=True)
class Result:
    message: Message
    answer: publish.Answer  # published after the commit


@dataclass
class _Bad:
    """A message that is no station event: its answer and rows, made before the write."""

    message: Message
    topic: topics.StationTopic
    kind: str
    exc: InvalidPayload
    feedback: dict[str, Any] = field(default_factory=dict)
    event: dict[str, Any] | None = None
    letter: dict[str, Any] | None = None

    @property
    def result(self) -> Result:
        t = self.topic
        return Result(self.message, publish.Answer(t.site, t.line, t.station, self.feedback))


class Ingest:
    def __init__(
        self,
        *,
        engine: Engine,
        url: str,
        client_id: str,
        prefix: str = "taktline",
        shared: bool = False,
        partition: Partition | None = None,
        batch_max: int = 200,
        garbage_rate: float = 20.0,
        garbage_burst: int = 100,
        dead_letter_max: int = 10_000,
        stall_seconds: float = 10.0,
    ) -> None:
        self.engine = engine
        self.url = url
        self.prefix = prefix
        self.shared = shared
        if partition is not None and shared:
            raise ValueError("a partitioned ingest has its own subscription, not a shared one")
        self.partition = partition
        self._filters: list[str] = []  # with a partition: its subscriptions (start)
        self._unowned: list[str] = []
        self._refreshed = time.monotonic()
        self.batch_max = batch_max
        self.queue: FairQueue[Message] = FairQueue()
        self.garbage = TokenBucket(garbage_rate, garbage_burst)
        self.answers = RecentAnswers()
        self.dead_letter_max = dead_letter_max
        self.stall_ms = str(max(int(stall_seconds * 1000), 1))
        self.heartbeat = time.monotonic()
        self.failed = threading.Event()
        self._limited: dict[str, int] = {}  # station -> rate-limited since last log line
        self._limited_logged = time.monotonic()
        # Dead letters that surely fit before the table needs pruning (None: unknown).
        self._letter_room: int | None = None
        self._catalog: Cache | None = None
        # The connection (its pool info) and its counters when the last batch
        # committed: see ``_carry``.
        self._carried: tuple[dict[Any, Any], int, int] | None = None
        self._catalog_read = 0.0
        self.client, self.broker = server_mqtt.make_client(url, client_id=client_id, clean=False)
        self.client.manual_ack_set(True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_socket_open = _no_delay
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._generation = 0
        self._order = 0
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._run, name="ingest-worker", daemon=True)
        self._checkpointer: WalCheckpointer | None = None
        self._slow = (0, 0.0, 0, 0.0)  # slow transactions: count, longest, its size, wait
        self._slow_logged = 0.0
        self.processed = 0
        self.client_id = client_id

    @property
    def topic_filter(self) -> str:
        if self.partition is not None:
            return f"{self.partition} ({len(self._filters)} lines)"
        base = topics.subscription("evt/#", prefix=self.prefix)
        return f"$share/{SHARE_GROUP}/{base}" if self.shared else base

    def start(self) -> Ingest:
        if self.partition is not None:
            self._refresh(subscribe=False)
        self._checkpointer = WalCheckpointer.start(self.engine)
        self._worker.start()
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        log.info(
            "ingest %s subscribing to %s on %s", self.client_id, self.topic_filter, self.broker.host
        )
        return self

    def alive(self) -> bool:
        """The worker thread runs and noted the time recently (``/healthz``)."""
        return (
            self._worker.is_alive()
            and not self.failed.is_set()
            and self.heartbeat_age() < HEARTBEAT_LIMIT_SECONDS
        )

    def heartbeat_age(self) -> float:
        return time.monotonic() - self.heartbeat

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand, then disconnect; queued messages stay unacked and
        the broker gives them to the next session with our client id."""
        self._stopping.set()
        self._worker.join(timeout)
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.client.disconnect()
        self.client.loop_stop()
        log.info("ingest %s stopped after %d messages", self.client_id, self.processed)

    # --- paho's thread: never block here ---------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("ingest: broker refused the connection: %s", reason)
            return
        self._generation += 1
        self.connected.set()
        # Here, so a reconnect resubscribes.
        if self.partition is None:
            client.subscribe(self.topic_filter, qos=1)
            return
        if self._filters:  # its own first: nothing of its lines falls between the two
            client.subscribe([(f, 1) for f in self._filters])
        else:
            log.warning("ingest: %s owns no line yet", self.partition)
            self.subscribed.set()
        if self._unowned:
            client.unsubscribe(self._unowned)

    def _refresh(self, *, subscribe: bool = True) -> None:
        """Read the plant's lines; subscribe to owned lines that appeared since."""
        assert self.partition is not None
        self._refreshed = time.monotonic()
        try:
            plant = partition.plant_lines(self.engine)
        except sa.exc.OperationalError as exc:
            log.error("ingest: could not read the lines (%s); keeping %s", exc, self._filters)
            return
        filters = self.partition.filters(plant, prefix=self.prefix)
        new = [f for f in filters if f not in self._filters]
        self._unowned = self.partition.others(plant, prefix=self.prefix, shared=SHARE_GROUP)
        self._filters = filters
        if new:
            log.info("ingest %s (%s) subscribes to %s", self.client_id, self.partition, new)
            if subscribe:
                self.client.subscribe([(f, 1) for f in new])

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error(
                "ingest: broker refused the subscription to %s: %s", self.topic_filter, reasons
            )
            return
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._order += 1
        message = Message(
            msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, self._order
        )
        self.queue.put(_station_key(msg.topic), message)

    # --- the worker ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.heartbeat = time.monotonic()
                metrics.ingest_loop(queue_depth=len(self.queue))
                if (
                    self.partition is not None
                    and self.heartbeat - self._refreshed >= partition.REFRESH_SECONDS
                ):
                    self._refresh()
                batch = self.queue.take(self.batch_max, timeout=0.2)
                if batch:
                    self._process_safely(batch)
        except BaseException:  # noqa: BLE001 - the thread ends here; alive() tells the world
            log.critical(
                "ingest: the worker thread died; no message is processed any more", exc_info=True
            )
            self.failed.set()

    def _process_safely(self, batch: list[Message]) -> None:
        try:
            self._process(batch)
        except Exception:  # noqa: BLE001 - a bug must not stop the ingest: answer and go on
            log.exception("ingest: batch of %d failed outside any handler", len(batch))
            try:
                self._acknowledge([self._poison(m, "failed outside any handler") for m in batch])
            except Exception:  # noqa: BLE001 - unacked: the broker redelivers them
                log.exception("ingest: could not answer the failed batch")

    def _process(self, batch: list[Message]) -> None:
        started = time.monotonic()
        answered: list[Result] = []
        fresh: list[Message] = []
        twins: list[tuple[Message, str]] = []
        seen: set[str] = set()
        limited: set[str] = set()
        for message in batch:
            self._read(message)
            msg_id = _msg_id(message.doc)
            if isinstance(message.doc, InvalidPayload) and not self._garbage_allowed(message):
                # One answer per station and batch: a flood's answers would otherwise fill
                # the ingest's outgoing socket ahead of every other station's feedback.
                station = _station_key(message.topic)
                if station in limited:
                    answered.append(Result(message, publish.Answer("", "", "", None)))
                else:
                    limited.add(station)
                    answered.append(self._rate_limited(message, message.doc.msg_id))
            elif msg_id is not None and (msg_id in seen or self.answers.get(msg_id)):
                twins.append((message, msg_id))  # a duplicate: answered from memory
            else:
                if msg_id is not None:
                    seen.add(msg_id)
                fresh.append(message)
        fresh.sort(key=_order_key)
        results = self._decide(fresh) if fresh else []
        if results is None:
            return  # stopping: nothing acked, the broker redelivers
        committed_wall, committed = time.time(), time.monotonic()
        for r in results:
            feedback = r.answer.feedback or {}
            ref, result = feedback.get("ref"), feedback.get("result")
            if isinstance(ref, str) and result in EventResult.stored():
                self.answers.add(ref, str(result))
        answered += results
        told: set[str] = set()
        for message, msg_id in twins:  # copies arriving together: one answer for them all
            if msg_id in told:
                answered.append(Result(message, publish.Answer("", "", "", None)))
            else:
                told.add(msg_id)
                answered.append(self._duplicate(message, msg_id))
        self._acknowledge(answered)
        metrics.ingest_batch(
            seconds=time.monotonic() - started,
            size=len(batch),
            answers=[
                (r.answer.station, str(r.answer.feedback.get("result")))
                for r in answered
                if r.answer.feedback is not None and r.answer.station
            ],
            committed=[(m.env.ts, m.arrived) for m in fresh if m.env is not None],
            commit_wall=committed_wall,
            commit_monotonic=committed,
        )

    def _read(self, message: Message) -> None:
        """Decode and validate once: ``doc`` the JSON (or why not), ``env`` the event."""
        message.doc = _decoded(message.payload)
        if not isinstance(message.doc, dict):
            return
        try:
            kind = topics.parse(message.topic, prefix=self.prefix).kind.removeprefix("evt/")
            message.env = envelope(message.doc, kind=kind)
        except InvalidPayload as exc:
            message.doc = exc
        except ValueError:
            pass  # not a contract topic: ``_one`` says so

    def _decide(self, batch: list[Message]) -> list[Result] | None:
        while not self._stopping.is_set():
            self.heartbeat = time.monotonic()
            try:
                return self._transaction(batch, fast=True)
            except sa.exc.OperationalError as exc:
                if not deadlocked(exc):
                    log.error("ingest: database unavailable (%s); retrying in 1 s", exc)
                    time.sleep(1)
                    continue
                # PostgreSQL chose this batch to break a lock cycle with another writer
                # (two ingests' batches locking lots of the same parts in turn): the
                # other goes on; this one is rolled back and retried event by event.
                log.warning(
                    "ingest: batch of %d rolled back by the database to break a deadlock; "
                    "retrying event by event",
                    len(batch),
                )
                return self._one_by_one(batch)
            except Exception as exc:  # noqa: BLE001 - any failure: retry event by event
                # The fast path has no savepoint per effect: a refusal (a serial built in
                # twice by another ingest, stock gone) rolls the whole batch back. Each
                # event then gets its own transaction, with savepoints, so one bad scan
                # never sinks the others; nothing was committed, so nothing counts twice.
                if isinstance(
                    exc,
                    sa.exc.IntegrityError | service.RefusedByDatabase | LookupError | DispatchError,
                ):
                    log.warning(
                        "ingest: batch of %d refused by the database (%s); retrying event by event",
                        len(batch),
                        exc,
                    )
                else:
                    log.exception("ingest: batch of %d failed; retrying one by one", len(batch))
                return self._one_by_one(batch)
        return None

    def _one_by_one(self, batch: list[Message]) -> list[Result] | None:
        results: list[Result] = []
        for message in batch:
            one = self._single(message)
            if one is None:
                return None
            results.extend(one)
        return results

    def _single(self, message: Message) -> list[Result] | None:
        while not self._stopping.is_set():
            self.heartbeat = time.monotonic()
            try:
                return self._transaction([message], fast=False)
            except sa.exc.OperationalError as exc:
                log.error("ingest: database unavailable (%s); retrying in 1 s", exc)
                time.sleep(1)
            except Exception as exc:  # noqa: BLE001 - a bug: answered, kept, acknowledged
                log.exception(
                    "ingest: message on %s failed; answered internal_error", message.topic
                )
                return [self._poison(message, f"{type(exc).__name__}: {exc}")]
        return None

    def _cache(self) -> Cache:
        """The catalog read by recent batches (``CATALOG_SECONDS``), without any miss,
        and what the last transaction carried (states, lots, reservations): ``_carry``
        keeps that only if nothing else wrote since."""
        now = time.monotonic()
        if self._catalog is None or now - self._catalog_read >= CATALOG_SECONDS:
            fresh = Cache()
            if self._catalog is not None:
                fresh.carry(self._catalog)
            self._catalog, self._catalog_read = fresh, now
            return fresh
        cache = self._catalog
        for found in (
            cache.stations,
            cache.parts,
            cache.identifiers,
            cache.operators,
            cache.badges,
            cache.work_orders,
        ):
            _drop_misses(found)
        return cache

    def _carry(self, session: Session, cache: Cache) -> None:
        """Keep the station states, lots and reservations the last batch left in
        ``cache`` only if nothing else has written since (issue 19: reading them again
        was a third of a scan at a scan or two per batch).

        On SQLite, read inside this write transaction (nobody can commit between it and
        our own writes): the same pooled connection as the last batch, whose
        ``data_version`` (changes when another connection commits) and
        ``total_changes()`` (rows this connection changed, for whoever used it from the
        pool) are what they were when our last batch ended. Anything else
        (PostgreSQL, another connection, a rolled-back batch) reads them again."""
        carried, self._carried = self._carried, None
        if not cache.exclusive(session) or carried is None:
            cache.forget()
            return
        mark = _mark(session)
        if mark[0] is not carried[0] or mark[1:] != carried[1:]:
            cache.forget()

    def _transaction(self, batch: list[Message], *, fast: bool) -> list[Result]:
        """One write transaction for the whole batch (group commit), one catalog cache.

        What does not decode is made ready before the write lock is taken (answers, log
        lines, event and dead-letter rows) and written with one statement for each
        table: on SQLite the lock is shared with the other ingests, and a station's
        burst of garbage must not hold it for long (issue 13)."""
        cache = self._cache()
        bad = self._bad(batch, cache)
        asked = time.monotonic()
        with Session(self.engine, expire_on_commit=False) as session:
            begin_write(session)
            locked = time.monotonic()
            self._carry(session, cache)
            cache.writes.clear()  # what a batch rolled back had kept
            # PostgreSQL: the fast path row-locks the lots it reads and carries them,
            # with the stations' states, from event to event (``Cache.locking``).
            cache.locking = fast and not cache.exclusive(session)
            if not cache.exclusive(session):
                # A stopped (not dead) process would hold its stations' and lots' locks
                # for as long as it is stopped: the server ends the transaction instead.
                session.connection().execute(_STALL, {"ms": self.stall_ms})
            if cache.locking:  # the batch's stations first, all at once
                service.lock_stations(
                    session,
                    cache,
                    [_station_code(m.topic) for i, m in enumerate(batch) if i not in bad],
                )
            if bad:
                self._keep(session, bad)
            if fast:  # which events may be written with the picks' rows (one statement)
                service.expect(
                    session,
                    cache,
                    [m.env.msg_id for i, m in enumerate(batch) if i not in bad and m.env],
                )
            results = [
                bad[i].result if i in bad else self._one(session, message, cache, fast)
                for i, message in enumerate(batch)
            ]
            service.flush(session, cache)  # the picks' rows, one executemany per table
            mark = _mark(session) if cache.exclusive(session) else None
            session.commit()
            self._carried = mark
        self._note_slow(time.monotonic() - locked, locked - asked, len(batch))
        if bad:
            self._log_bad(list(bad.values()))
        return results

    def _note_slow(self, held: float, waited: float, size: int) -> None:
        """A line every ``SLOW_LOG_SECONDS`` at most when write transactions held the
        database ``SLOW_TRANSACTION_SECONDS`` or more: on SQLite every other writer
        (other lines' ingests, the tablets) waited that long."""
        if held < SLOW_TRANSACTION_SECONDS:
            return
        count, longest, _size, _waited = self._slow
        if held > longest:
            self._slow = (count + 1, held, size, waited)
        else:
            self._slow = (count + 1, longest, _size, _waited)
        now = time.monotonic()
        if now - self._slow_logged < SLOW_LOG_SECONDS:
            return
        count, longest, size, waited = self._slow
        log.warning(
            "ingest: %d write transactions held the database %.0f ms or more; the longest "
            "%.0f ms for %d messages (after waiting %.0f ms for the lock)",
            count,
            SLOW_TRANSACTION_SECONDS * 1000,
            longest * 1000,
            size,
            waited * 1000,
        )
        self._slow, self._slow_logged = (0, 0.0, 0, 0.0), now

    def _bad(self, batch: list[Message], cache: Cache) -> dict[int, _Bad]:
        """The messages of ``batch`` that are no station event, each with its answer and
        rows, by position; read before the write transaction."""
        bad: dict[int, _Bad] = {}
        unknown: set[str] = set()
        for i, message in enumerate(batch):
            if message.doc is None:
                self._read(message)
            if message.env is not None:
                continue
            try:
                topic = topics.parse(message.topic, prefix=self.prefix)
            except ValueError:
                continue  # ``_one`` logs and drops it
            exc = (
                message.doc
                if isinstance(message.doc, InvalidPayload)
                else InvalidPayload("not a station event")
            )
            bad[i] = _Bad(message, topic, topic.kind.removeprefix("evt/"), exc)
            if exc.msg_id and topic.station not in cache.stations:
                unknown.add(topic.station)
        if unknown:  # a read of its own, outside the write lock
            with Session(self.engine) as reader:
                for code in unknown:
                    cache.station(reader, code)
        for b in bad.values():
            params = {"detail": b.exc.detail}
            b.feedback = {
                "ref": b.exc.msg_id,
                "result": EventResult.REJECTED,
                "code": "bad_payload",
                "reason": messages.english("bad_payload", params),
                "source": b.exc.source,
            }
            if b.exc.msg_id:
                station = cache.stations.get(b.topic.station)
                b.event = service.event_row(
                    msg_id=b.exc.msg_id,
                    station_id=station.id if station is not None else None,
                    channel="mqtt",
                    kind=b.kind,
                    source=b.exc.source,
                    result=EventResult.REJECTED,
                    code="bad_payload",
                    params=params,
                )
            b.letter = deadletters.letter(
                kind="bad_payload",
                topic=b.message.topic,
                station=b.topic.station,
                msg_id=b.exc.msg_id,
                error=b.exc.detail,
                raw=b.message.payload,
            )
        return bad

    def _keep(self, session: Session, bad: dict[int, _Bad]) -> None:
        """Record the refused payloads: their events (one statement), then the dead
        letters of those whose ``msg_id`` was new (one statement), then prune the dead
        letters if the table may be full."""
        inserted = service.record_events(
            session, [b.event for b in bad.values() if b.event is not None]
        )
        letters = []
        for b in bad.values():
            if b.event is not None and b.exc.msg_id not in inserted:
                b.feedback = {
                    "ref": b.exc.msg_id,
                    "result": EventResult.DUPLICATE,
                    "code": "duplicate",
                    "reason": messages.english("duplicate"),
                    "source": b.exc.source,
                }
            elif b.letter is not None:
                letters.append(b.letter)
        deadletters.record_many(session, letters)
        if self._letter_room is None or len(letters) > self._letter_room:
            # Other ingests add to the table too: look again after a tenth of it at most.
            room = deadletters.prune(session, keep=self.dead_letter_max)
            self._letter_room = min(room, self.dead_letter_max // 10)
        else:
            self._letter_room -= len(letters)

    def _log_bad(self, bad: list[_Bad]) -> None:
        """A warning for each of a station's first ``BAD_LOGGED`` refused payloads in a
        batch, then one line with their count and the first reason: a burst of
        garbage is seen in the log without writing a line for every message."""
        by_station: dict[str, list[_Bad]] = {}
        for b in bad:
            by_station.setdefault(b.topic.station, []).append(b)
        for station, refused in by_station.items():
            for b in refused[:BAD_LOGGED]:
                log.warning("ingest: %s from %s refused: %s", b.kind, station, b.exc.detail)
            if len(refused) > BAD_LOGGED:
                log.warning(
                    "ingest: %d bad payloads from %s in one batch, all refused and kept as "
                    "dead letters (first: %s)",
                    len(refused),
                    station,
                    refused[0].exc.detail,
                )

    def _one(self, session: Session, message: Message, cache: Cache, fast: bool) -> Result:
        try:
            topic = topics.parse(message.topic, prefix=self.prefix)
        except ValueError as exc:
            log.warning("ingest: ignoring message on %r: %s", message.topic, exc)
            return Result(message, publish.Answer("", "", "", None))
        if message.doc is None:
            self._read(message)
        if message.env is None:  # ``_transaction`` answered it (``_bad``)
            raise RuntimeError(f"no station event on {message.topic}")
        env = message.env
        outcome = service.handle(
            session,
            station_code=topic.station,
            event=env.event,
            msg_id=env.msg_id,
            channel="mqtt",
            source=env.source,
            seq=env.seq,
            ts=env.ts,
            payload=env.payload,
            cache=cache,
            savepoint=not fast,
            defer=fast,  # the picks' rows: ``service.flush`` in ``_transaction``
        )
        return Result(message, publish.answer(outcome, site=topic.site, line=topic.line))

    def _poison(self, message: Message, error: str) -> Result:
        """A message that could not be decided (a bug): kept as a dead letter and
        answered ``internal_error`` with the incident id to quote."""
        station = _station_code(message.topic)
        msg_id = _msg_id(message.doc if message.doc is not None else _decoded(message.payload))
        incident = deadletters.new_incident()
        try:
            with Session(self.engine) as session:
                begin_write(session)
                deadletters.record_many(
                    session,
                    [
                        deadletters.letter(
                            kind="internal_error",
                            topic=message.topic,
                            station=station,
                            msg_id=msg_id,
                            error=error,
                            raw=message.payload,
                            incident=incident,
                        )
                    ],
                )
                deadletters.prune(session, keep=self.dead_letter_max)
                session.commit()
        except Exception:  # noqa: BLE001 - the answer and the ack still go out
            log.exception("ingest: could not keep dead letter %s", incident)
        log.error("ingest: incident %s on %s: %s", incident, message.topic, error[:200])
        return self._answer(message, msg_id, "internal_error", {"incident": incident})

    def _garbage_allowed(self, message: Message) -> bool:
        station = _station_key(message.topic)
        if self.garbage.allow(station):
            return True
        self._limited[station] = self._limited.get(station, 0) + 1
        if time.monotonic() - self._limited_logged >= 1.0:  # a line a second, not a flood
            for name, count in self._limited.items():
                log.warning(
                    "ingest: station %s sends garbage too fast: %d answered rate_limited",
                    name,
                    count,
                )
            self._limited.clear()
            self._limited_logged = time.monotonic()
        return False

    def _rate_limited(self, message: Message, msg_id: str | None) -> Result:
        return self._answer(message, msg_id, "rate_limited", {})

    def _duplicate(self, message: Message, msg_id: str) -> Result:
        result = self._answer(message, msg_id, "duplicate", {})
        original = self.answers.get(msg_id)
        if original and result.answer.feedback is not None:
            result.answer.feedback["original"] = original
        return result

    def _answer(
        self, message: Message, msg_id: str | None, code: str, params: dict[str, Any]
    ) -> Result:
        """An answer decided without the database (rate limit, duplicate, incident)."""
        try:
            topic = topics.parse(message.topic, prefix=self.prefix)
        except ValueError:
            return Result(message, publish.Answer("", "", "", None))
        doc = message.doc if isinstance(message.doc, dict) else {}
        source = doc.get("source") if isinstance(doc.get("source"), str) else ""
        feedback = {
            "ref": msg_id,
            "result": EventResult.DUPLICATE if code == "duplicate" else EventResult.REJECTED,
            "code": code,
            "reason": messages.english(code, params),
            "source": source,
        }
        if params:
            feedback["params"] = params
        return Result(message, publish.Answer(topic.site, topic.line, topic.station, feedback))

    def _acknowledge(self, results: list[Result]) -> None:
        def acknowledge(i: int) -> None:
            message = results[i].message
            if message.generation == self._generation:
                # An ack after a reconnect would name another message's mid: skip it; the
                # broker redelivers ours and the dedupe answers "duplicate".
                self.client.ack(message.mid, message.qos)

        publish.after_commit(self, [r.answer for r in results], acknowledge=acknowledge)
        self.processed += len(results)

    # --- station.publish.Sink: on this process's own client ------------------------

    def feedback(self, site: str, line: str, station: str, payload: dict[str, Any]) -> None:
        self._publish(site, line, station, "cmd/feedback", payload, retain=False)

    def state(self, site: str, line: str, station: str, snapshot: dict[str, Any]) -> None:
        self._publish(site, line, station, "state", snapshot, retain=True)

    def _publish(
        self,
        site: str,
        line: str,
        station: str,
        kind: str,
        payload: dict[str, Any],
        *,
        retain: bool,
    ) -> None:
        try:
            topic = topics.build(site, line, station, kind, prefix=self.prefix)
        except ValueError:
            return
        self.client.publish(topic, server_mqtt.dumps(payload), qos=1, retain=retain)


_STALL = sa.text("SELECT set_config('idle_in_transaction_session_timeout', :ms, true)")
_DATA_VERSION = sa.text("SELECT total_changes(), data_version FROM pragma_data_version()")


def _mark(session: Session) -> tuple[dict[Any, Any], int, int]:
    """SQLite: this transaction's connection (its pool info), the rows it has changed
    and its ``data_version`` (``Ingest._carry``)."""
    conn = session.connection()
    changes, version = conn.execute(_DATA_VERSION).one()
    return conn.connection.info, int(changes), int(version)


def _no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Send each feedback at once: with Nagle's algorithm a feedback written right after
    an ack waits for the broker's delayed TCP ACK (~40 ms on Linux)."""
    with contextlib.suppress(AttributeError, OSError):  # a websocket / non-TCP transport
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _drop_misses(found: dict[Any, Any]) -> None:
    for key in [k for k, v in found.items() if v is None]:
        del found[key]


def _decoded(raw: bytes) -> dict[str, Any] | InvalidPayload:
    try:
        return decode(raw)
    except InvalidPayload as exc:
        return exc


def _station_code(topic: str) -> str:
    """The station of ``{prefix}/{site}/{line}/{station}/evt/...`` ("" for another)."""
    parts = topic.split("/")
    return parts[-3] if len(parts) >= 5 else ""


def _station_key(topic: str) -> str:
    """The station part of ``{prefix}/{site}/{line}/{station}/evt/...`` (any topic)."""
    parts = topic.split("/")
    return "/".join(parts[-5:-2]) if len(parts) >= 5 else topic


def _msg_id(doc: dict[str, Any] | InvalidPayload | None) -> str | None:
    if isinstance(doc, InvalidPayload):
        return doc.msg_id
    if isinstance(doc, dict):
        msg_id = doc.get("msg_id")
        if isinstance(msg_id, str) and 0 < len(msg_id) <= 64:
            return msg_id
    return None


def _order_key(message: Message) -> tuple[str, str, float, int]:
    """Each station's events by (source, seq), else in arrival order.

    ``seq`` counts per source (docs/bridge.md). Across batches the broker's per-session
    order already holds; within a batch, a redelivered older event goes first."""
    parts = message.topic.split("/")
    source, seq = "", float("inf")
    doc = message.doc if message.doc is not None else _decoded(message.payload)
    if isinstance(doc, dict):
        if isinstance(doc.get("source"), str):
            source = doc["source"]
        if isinstance(doc.get("seq"), int) and not isinstance(doc.get("seq"), bool):
            seq = float(doc["seq"])
    return ("/".join(parts[:-2]), source, seq, message.order)
