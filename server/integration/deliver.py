"""The delivery loop: outbox events to webhooks (signed, retried, dead-lettered) and to
MQTT (``{prefix}/{site}/erp/{type}``, QoS 1). docs/integration.md.

One pass (``Deliverer.run_once``):

1. **fan out**: outbox rows not yet fanned out get one ``Delivery`` per channel (each
   subscription whose types match, paused or not, and ``mqtt`` when ERP_MQTT is on);
2. **claim**: pending deliveries that are due, not leased by another deliverer, whose
   subscription is active, and that head their lane (no earlier event of the same
   order pending on the same channel, none not yet fanned out) are leased
   (``locked_until``). On PostgreSQL the rows are read ``FOR UPDATE SKIP LOCKED``, so
   several deliverers never take the same one; the lease is committed before anything
   is sent, so no transaction is held open across an HTTP call;
3. **send** each one and record the result: delivered; or, after a failure, the next
   try after an exponential backoff with jitter, or ``dead`` once the delivery is
   older than the dead-letter age. A dead delivery no longer holds back its lane.

At least once (a deliverer that dies mid-send leaves a lease that expires and the
event is sent again), in order per order and channel, the CloudEvent id for dedupe.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import random
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import click
import paho.mqtt.client as mqtt
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from server.db import write_session
from server.integration import outbox
from server.integration.subscriptions import DEAD, DELIVERED, PENDING
from server.messaging.client import make_client
from server.models import Delivery, OutboxEvent, Site, WebhookSubscription
from server.models.types import utcnow

log = logging.getLogger(__name__)
EXTENSION = "taktline.deliver"
SIGNATURE_HEADER = "Taktline-Signature"
MQTT_CHANNEL = "mqtt"
USER_AGENT = "Taktline-Webhooks/1"


@dataclass(frozen=True)
class Options:
    retry_base: float = 5.0  # seconds before the second try
    retry_max: float = 3600.0  # the longest wait between tries
    dead_after: float = 3 * 86400.0  # a delivery older than this that fails is dead
    timeout: float = 10.0  # HTTP and MQTT PUBACK timeout
    poll: float = 1.0  # seconds between passes when there was nothing to do
    batch: int = 50
    mqtt: bool = True
    site: str = ""  # MQTT topic level and CloudEvent source; empty: the first site

    @classmethod
    def from_config(cls, config: Any) -> Options:
        return cls(
            retry_base=float(config["WEBHOOK_RETRY_BASE_SECONDS"]),
            retry_max=float(config["WEBHOOK_RETRY_MAX_SECONDS"]),
            dead_after=float(config["WEBHOOK_DEAD_AFTER_SECONDS"]),
            timeout=float(config["WEBHOOK_TIMEOUT_SECONDS"]),
            poll=float(config["DELIVER_POLL_SECONDS"]),
            mqtt=bool(config["ERP_MQTT"]),
            site=str(config["ERP_SITE"]),
        )


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of
    "<t>." + body under the subscription's secret>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300.0) -> bool:
    """What a receiver does (docs/integration.md has the same as a snippet)."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def backoff(attempts: int, options: Options, rng: Callable[[], float] = random.random) -> float:
    """Seconds before the next try after ``attempts`` failed ones: base * 2^(n-1),
    capped, with "full jitter" on the upper half (between half and all of it)."""
    delay = min(options.retry_base * 2 ** max(attempts - 1, 0), options.retry_max)
    return delay / 2 + rng() * delay / 2


def topic(prefix: str, site: str, event_type: str) -> str:
    return f"{prefix}/{site}/erp/{event_type.removeprefix(outbox.TYPE_PREFIX)}"


class Deliverer:
    """Fans out, claims and sends; ``run_once`` is one pass, ``start`` a thread."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        options: Options,
        mqtt_url: str = "",
        prefix: str = "taktline",
        client_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.options = options
        self.prefix = prefix
        self.mqtt_url = mqtt_url if options.mqtt else ""
        self.client_id = client_id or f"taktline-deliver-{socket.gethostname()}-{os.getpid()}"
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._site: str | None = options.site or None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.heartbeat = time.monotonic()

    # -- the pass ---------------------------------------------------------------------

    def run_once(self) -> int:
        """One pass; the number of deliveries tried."""
        self.heartbeat = time.monotonic()
        self.fan_out()
        claimed = self.claim()
        for n, delivery_id in enumerate(claimed):
            if self._stop.is_set():  # stopping: hand the rest back at once
                self._release(claimed[n:])
                break
            self.send(delivery_id)
        return len(claimed)

    def _release(self, ids: list[int]) -> None:
        with write_session(self.engine) as session:
            session.execute(
                sa.update(Delivery)
                .where(col(Delivery.id).in_(ids), col(Delivery.status) == PENDING)
                .values(locked_until=None)
                .execution_options(synchronize_session=False)
            )

    def fan_out(self) -> int:
        with Session(self.engine) as session:
            waiting = session.exec(
                select(OutboxEvent.id).where(col(OutboxEvent.fanned_out).is_(False)).limit(1)
            ).first()
        if waiting is None:
            return 0  # no write transaction when there is nothing to do
        with write_session(self.engine) as session:
            query = (
                select(OutboxEvent)
                .where(col(OutboxEvent.fanned_out).is_(False))
                .order_by(col(OutboxEvent.id))
                .limit(500)
            )
            if session.connection().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = session.exec(query).all()
            # Paused subscriptions too: their deliveries wait (claim skips them).
            subs = session.exec(select(WebhookSubscription)).all()
            now = utcnow()
            values = []
            for row in rows:
                short = row.type.removeprefix(outbox.TYPE_PREFIX)
                channels: list[tuple[str, int | None]] = [
                    (f"webhook:{sub.id}", sub.id)
                    for sub in subs
                    if not sub.event_types or short in sub.event_types
                ]
                if self.mqtt_url:
                    channels.append((MQTT_CHANNEL, None))
                values += [
                    {
                        "channel": channel,
                        "subscription_id": sub_id,
                        "outbox_id": row.id,
                        "order_id": row.order_id,
                        "order_seq": row.order_seq,
                        "status": PENDING,
                        "attempts": 0,
                        "created_at": now,
                        "next_attempt_at": now,
                        "last_error": "",
                    }
                    for channel, sub_id in channels
                ]
            if values:
                session.execute(sa.insert(Delivery), values)
            if rows:
                session.execute(
                    sa.update(OutboxEvent)
                    .where(col(OutboxEvent.id).in_([r.id for r in rows]))
                    .values(fanned_out=True)
                    .execution_options(synchronize_session=False)
                )
            return len(rows)

    def claim(self) -> list[int]:
        now = utcnow()
        earlier = aliased(Delivery)
        unfanned = aliased(OutboxEvent)
        conditions: list[sa.ColumnElement[bool]] = [
            col(Delivery.status) == PENDING,
            col(Delivery.next_attempt_at) <= now,
            col(Delivery.locked_until).is_(None) | (col(Delivery.locked_until) < now),
            ~sa.exists().where(
                col(earlier.channel) == col(Delivery.channel),
                col(earlier.order_id) == col(Delivery.order_id),
                col(earlier.order_seq) < col(Delivery.order_seq),
                col(earlier.status) == PENDING,
            ),
            col(Delivery.subscription_id).is_(None)
            | sa.exists().where(
                col(WebhookSubscription.id) == col(Delivery.subscription_id),
                col(WebhookSubscription.active).is_(True),
            ),
            ~sa.exists().where(
                col(unfanned.order_id) == col(Delivery.order_id),
                col(unfanned.order_seq) < col(Delivery.order_seq),
                col(unfanned.fanned_out).is_(False),
            ),
        ]
        if not self.mqtt_url:  # a deliverer without a broker leaves MQTT to one with it
            conditions.append(col(Delivery.channel) != MQTT_CHANNEL)
        with Session(self.engine) as session:  # a read first: no write lock when idle
            if session.exec(select(Delivery.id).where(*conditions).limit(1)).first() is None:
                return []
        query = (
            select(Delivery)
            .where(*conditions)
            .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
            .limit(self.options.batch)
        )
        lease = now + timedelta(seconds=self.options.timeout * 3 + 30)
        with write_session(self.engine) as session:
            if session.connection().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=Delivery)  # type: ignore[arg-type]
            ids = [d.id for d in session.exec(query).all() if d.id is not None]
            if ids:
                session.execute(
                    sa.update(Delivery)
                    .where(col(Delivery.id).in_(ids))
                    .values(locked_until=lease)
                    .execution_options(synchronize_session=False)
                )
        return ids

    def send(self, delivery_id: int) -> bool:
        with Session(self.engine) as session:
            delivery = session.get(Delivery, delivery_id)
            if delivery is None:
                return False
            event = session.get(OutboxEvent, delivery.outbox_id)
            sub = (
                session.get(WebhookSubscription, delivery.subscription_id)
                if delivery.subscription_id
                else None
            )
            site = self.site(session)
        assert event is not None  # foreign key
        body = outbox.to_json(outbox.envelope(event, source=f"/taktline/{site}"))
        status: int | None = None
        try:
            if delivery.channel == MQTT_CHANNEL:
                self._publish(topic(self.prefix, site, event.type), body)
            elif sub is None or not sub.active:
                raise _Skip("subscription disabled or deleted")
            else:
                status = self._post(sub, event, body)
        except _Skip as exc:
            self._record(delivery, ok=False, status=None, error=str(exc), retry=False)
            return False
        except Exception as exc:  # any failure is a retry, never a crash of the loop
            status = getattr(exc, "code", None) if isinstance(exc, urllib.error.HTTPError) else None
            error = f"{type(exc).__name__}: {exc}"
            log.info("delivery %s (%s) failed: %s", delivery_id, delivery.channel, error)
            self._record(delivery, ok=False, status=status, error=error, retry=True)
            return False
        self._record(delivery, ok=True, status=status, error="", retry=False)
        return True

    def _post(self, sub: WebhookSubscription, event: OutboxEvent, body: bytes) -> int:
        request = urllib.request.Request(
            sub.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/cloudevents+json; charset=utf-8",
                "User-Agent": USER_AGENT,
                SIGNATURE_HEADER: sign(sub.secret, int(time.time()), body),
                "Taktline-Event-Id": event.event_id,
                "Taktline-Event-Type": event.type,
                "Taktline-Order": event.subject,
                "Taktline-Sequence": str(event.order_seq),
            },
        )
        with _OPENER.open(request, timeout=self.options.timeout) as response:
            response.read(65536)
            return int(response.status)

    def _record(
        self, delivery: Delivery, *, ok: bool, status: int | None, error: str, retry: bool
    ) -> None:
        now = utcnow()
        attempts = delivery.attempts + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "locked_until": None,
            "last_status": status,
            "last_error": error[:500],
        }
        if ok:
            values.update(status=DELIVERED, delivered_at=now)
        elif not retry or (now - delivery.created_at).total_seconds() >= self.options.dead_after:
            values.update(status=DEAD)
            log.warning(
                "delivery %s (%s) is dead after %s tries: %s",
                delivery.id,
                delivery.channel,
                attempts,
                error,
            )
        else:
            values.update(next_attempt_at=now + timedelta(seconds=backoff(attempts, self.options)))
        with write_session(self.engine) as session:
            session.execute(
                sa.update(Delivery)
                .where(col(Delivery.id) == delivery.id, col(Delivery.status) == PENDING)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    # -- MQTT -------------------------------------------------------------------------

    def site(self, session: Session) -> str:
        if self._site is None:
            code = session.exec(select(Site.code).order_by(col(Site.id))).first()
            if code is None:
                return "site"
            self._site = code
        return self._site

    def _publish(self, topic_name: str, body: bytes) -> None:
        if not self.mqtt_url:
            raise _Skip("MQTT delivery is off (ERP_MQTT) or there is no broker")
        if self._client is None:
            self._client, broker = make_client(self.mqtt_url, client_id=self.client_id)
            self._client.on_connect = lambda *a: self._connected.set()
            self._client.on_disconnect = lambda *a: self._connected.clear()
            self._client.connect_async(broker.host, broker.port, keepalive=30)
            self._client.loop_start()
        deadline = time.monotonic() + self.options.timeout
        while not self._connected.wait(0.1):
            if self._stop.is_set() or time.monotonic() > deadline:
                raise ConnectionError("not connected to the broker")
        info = self._client.publish(topic_name, body, qos=1)
        info.wait_for_publish(self.options.timeout)
        if not info.is_published():
            raise TimeoutError("no PUBACK from the broker")

    # -- the thread -------------------------------------------------------------------

    def start(self) -> Deliverer:
        self._thread = threading.Thread(target=self._loop, name="taktline-deliver", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception:
                log.exception("deliver: pass failed; trying again")
                done = 0
            if not done:
                self._stop.wait(self.options.poll)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.options.timeout + 5)
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure (urllib would repeat a POST as a GET without the body)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


class _Skip(Exception):
    """Not worth retrying: the delivery goes dead at once."""


def deliverer(app: Flask, mqtt_url: str = "") -> Deliverer:
    return Deliverer(
        app.extensions["taktline.engine"],
        options=Options.from_config(app.config),
        mqtt_url=mqtt_url,
        prefix=app.config["MQTT_PREFIX"],
    )


def start(app: Flask, mqtt_url: str) -> Callable[[], None]:
    """The deliverer inside ``taktline serve`` (unless RUN_DELIVER is off)."""
    if not app.config["RUN_DELIVER"]:
        return lambda: None
    running = deliverer(app, mqtt_url).start()
    app.extensions[EXTENSION] = running

    def stop() -> None:
        app.extensions.pop(EXTENSION, None)
        running.stop()

    return stop


@click.command("deliver")
@with_appcontext
def deliver_command() -> None:
    """Deliver outbound events (webhooks; MQTT with TAKTLINE_MQTT_URL). Several may run
    on PostgreSQL; on SQLite run one."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    running = deliverer(app, app.config["MQTT_URL"])
    done = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("deliver: signal %s, stopping", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    running.start()
    click.echo("Delivering outbound events (docs/integration.md).")
    while not done.wait(1.0):
        if not running.alive():
            raise SystemExit(3)
    running.stop()


__all__ = ["Deliverer", "Options", "backoff", "deliver_command", "sign", "start", "verify"]
