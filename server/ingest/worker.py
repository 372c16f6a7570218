"""The MQTT ingest: station events in, one transaction each batch, ack after commit.

paho's network thread only puts messages on a queue (``_on_message``); one worker
thread takes them in batches (whatever has arrived, up to ``batch_max``, every
station mixed), orders each station's events by ``seq``, and decides them all in one
write transaction, each through ``station.service.handle`` (dedupe on ``msg_id``,
workflow, records) sharing one catalog cache (``station.cache.Cache``). After the
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
fails on its own is recorded as rejected (so the operator scans again) instead of
being redelivered forever.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from firmware_bridge import topics
from server.db import begin_write
from server.dispatch import DispatchError
from server.ingest.payload import InvalidPayload, decode, envelope
from server.messaging import client as server_mqtt
from server.models import Station
from server.models.types import EventResult
from station import messages, publish, service
from station.cache import Cache

log = logging.getLogger(__name__)
SHARE_GROUP = "taktline-ingest"


@dataclass
class Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    order: int
    doc: dict[str, Any] | InvalidPayload | None = None  # decoded once per batch


@dataclass(frozen=True)
class Result:
    message: Message
    answer: publish.Answer  # published after the commit


class Ingest:
    def __init__(
        self,
        *,
        engine: Engine,
        url: str,
        client_id: str,
        prefix: str = "taktline",
        shared: bool = False,
        batch_max: int = 200,
    ) -> None:
        self.engine = engine
        self.url = url
        self.prefix = prefix
        self.shared = shared
        self.batch_max = batch_max
        self.queue: queue.Queue[Message] = queue.Queue()
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
        self.processed = 0
        self.client_id = client_id

    @property
    def topic_filter(self) -> str:
        base = topics.subscription("evt/#", prefix=self.prefix)
        return f"$share/{SHARE_GROUP}/{base}" if self.shared else base

    def start(self) -> Ingest:
        self._worker.start()
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        log.info(
            "ingest %s subscribing to %s on %s", self.client_id, self.topic_filter, self.broker.host
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand, then disconnect; queued messages stay unacked and
        the broker gives them to the next session with our client id."""
        self._stopping.set()
        self._worker.join(timeout)
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
        client.subscribe(self.topic_filter, qos=1)  # here, so a reconnect resubscribes

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
        self.queue.put(
            Message(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self._generation, self._order)
        )

    # --- the worker ------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self.batch_max:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            self._process(batch)

    def _process(self, batch: list[Message]) -> None:
        for message in batch:
            message.doc = _decoded(message.payload)
        batch.sort(key=_order_key)
        while not self._stopping.is_set():
            try:
                results = self._transaction(batch, fast=True)
                break
            except sa.exc.OperationalError as exc:
                log.error("ingest: database unavailable (%s); retrying in 1 s", exc)
                time.sleep(1)
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
                results = []
                for message in batch:
                    results.extend(self._single(message))
                break
        else:
            return  # stopping: nothing acked, the broker redelivers
        self._acknowledge(results)

    def _single(self, message: Message) -> list[Result]:
        try:
            return self._transaction([message], fast=False)
        except Exception:
            log.exception("ingest: message on %s failed; answered rejected", message.topic)
            return [self._poison(message)]

    def _transaction(self, batch: list[Message], *, fast: bool) -> list[Result]:
        """One write transaction for the whole batch (group commit), one catalog cache."""
        cache = Cache()
        with Session(self.engine, expire_on_commit=False) as session:
            begin_write(session)
            results = [self._one(session, message, cache, fast) for message in batch]
            session.commit()
        return results

    def _one(self, session: Session, message: Message, cache: Cache, fast: bool) -> Result:
        try:
            topic = topics.parse(message.topic, prefix=self.prefix)
        except ValueError as exc:
            log.warning("ingest: ignoring message on %r: %s", message.topic, exc)
            return Result(message, publish.Answer("", "", "", None))
        kind = topic.kind.removeprefix("evt/")
        try:
            doc = message.doc
            if isinstance(doc, InvalidPayload):
                raise doc
            env = envelope(doc if doc is not None else decode(message.payload), kind=kind)
        except InvalidPayload as exc:
            feedback = self._invalid(session, topic, kind, exc)
            return Result(message, publish.Answer(topic.site, topic.line, topic.station, feedback))
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
        )
        return Result(message, publish.answer(outcome, site=topic.site, line=topic.line))

    def _invalid(
        self, session: Session, topic: topics.StationTopic, kind: str, exc: InvalidPayload
    ) -> dict[str, Any]:
        params = {"detail": exc.detail}
        log.warning("ingest: %s from %s refused: %s", kind, topic.station, exc.detail)
        if exc.msg_id:
            station_id = session.exec(
                select(Station.id).where(Station.code == topic.station)
            ).first()
            event_id = service.record_event(
                session,
                msg_id=exc.msg_id,
                station_id=station_id,
                channel="mqtt",
                kind=kind,
                source=exc.source,
                result=EventResult.REJECTED,
                code="bad_payload",
                params=params,
            )
            if event_id is None:
                return {
                    "ref": exc.msg_id,
                    "result": EventResult.DUPLICATE,
                    "code": "duplicate",
                    "reason": messages.english("duplicate"),
                    "source": exc.source,
                }
        return {
            "ref": exc.msg_id,
            "result": EventResult.REJECTED,
            "code": "bad_payload",
            "reason": messages.english("bad_payload", params),
            "source": exc.source,
        }

    def _poison(self, message: Message) -> Result:
        try:
            topic = topics.parse(message.topic, prefix=self.prefix)
        except ValueError:
            return Result(message, publish.Answer("", "", "", None))
        msg_id = None
        with contextlib.suppress(InvalidPayload):
            msg_id = decode(message.payload).get("msg_id")
        feedback = {
            "ref": msg_id,
            "result": EventResult.REJECTED,
            "code": "conflict",
            "reason": messages.english("conflict", {"detail": "server error"}),
        }
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


def _no_delay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Send each feedback at once: with Nagle's algorithm a feedback written right after
    an ack waits for the broker's delayed TCP ACK (~40 ms on Linux)."""
    with contextlib.suppress(AttributeError, OSError):  # a websocket / non-TCP transport
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _decoded(raw: bytes) -> dict[str, Any] | InvalidPayload:
    try:
        return decode(raw)
    except InvalidPayload as exc:
        return exc


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
