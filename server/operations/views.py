"""``GET /api/v1/metrics``: Prometheus text format, for an API token with ``metrics:read``
(or a signed-in admin). docs/operations.md lists every metric.

Two sources in one answer:
- the instruments of every process sharing ``METRICS_DIR`` (``server.operations.metrics``,
  prometheus_client's multiprocess mode): the ingest's queue, batches, latencies and
  answers, the open SSE streams;
- the database, read at scrape time, right whichever process wrote it: events by
  station, kind and verdict, dead letters, the integration outbox (backlog, failing and
  dead deliveries).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from server.api import openapi
from server.integration.subscriptions import DEAD, PENDING
from server.models import DeadLetter, Delivery, Event, OutboxEvent, Station
from server.models.types import utcnow
from server.operations import metrics
from server.security import auth

bp = Blueprint("operations", __name__, url_prefix="/api/v1")
SCOPE = "metrics:read"


class DatabaseCollector:
    """Figures counted in the database at each scrape (any process's writes)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "taktline_events",
            "Station events recorded (scans, actions, device messages), by station, kind "
            "and verdict (result: accepted or rejected), counted in the database.",
            labels=["station", "kind", "result"],
        )
        kept = GaugeMetricFamily(
            "taktline_dead_letters",
            "Dead letters kept (bounded by DEAD_LETTER_MAX), by kind.",
            labels=["kind"],
        )
        recorded = CounterMetricFamily(
            "taktline_dead_letters_recorded",
            "Dead letters ever recorded (the highest dead letter id; pruning does not lower it).",
        )
        with Session(self.engine) as db:
            rows = db.exec(
                select(Station.code, Event.kind, Event.result, func.count())
                .select_from(Event)
                .outerjoin(Station, col(Station.id) == col(Event.station_id))
                .group_by(Station.code, Event.kind, Event.result)
            ).all()
            for station, kind, result, count in rows:
                events.add_metric([station or "", kind, result], float(count))
            for kind, count in db.exec(
                select(DeadLetter.kind, func.count()).group_by(DeadLetter.kind)
            ).all():
                kept.add_metric([kind], float(count))
            highest = db.exec(select(sa.func.max(DeadLetter.id))).one()
        recorded.add_metric([], float(highest or 0))
        yield events
        yield kept
        yield recorded
        yield from self._outbox()

    def _outbox(self) -> Iterator[Metric]:
        """The outbound events (server.integration): what waits, what fails."""
        waiting = GaugeMetricFamily(
            "taktline_outbox_events_waiting",
            "Outbound events not yet turned into deliveries (fanned out).",
        )
        backlog = GaugeMetricFamily(
            "taktline_outbox_backlog",
            "Deliveries pending (not yet delivered, not dead), by channel (mqtt, webhook:<id>).",
            labels=["channel"],
        )
        failing = GaugeMetricFamily(
            "taktline_outbox_failing",
            "Pending deliveries whose last try failed (retried with backoff), by channel.",
            labels=["channel"],
        )
        oldest = GaugeMetricFamily(
            "taktline_outbox_oldest_pending_seconds",
            "Age of the oldest pending delivery, by channel.",
            labels=["channel"],
        )
        dead = GaugeMetricFamily(
            "taktline_outbox_dead",
            "Dead deliveries (failed for WEBHOOK_DEAD_AFTER_SECONDS; replayed from the "
            "Webhooks page or the API), by channel.",
            labels=["channel"],
        )
        now = utcnow()
        with Session(self.engine) as db:
            unfanned = db.exec(
                select(func.count())
                .select_from(OutboxEvent)
                .where(col(OutboxEvent.fanned_out).is_(False))
            ).one()
            waiting.add_metric([], float(unfanned))
            rows = db.execute(
                sa.select(
                    col(Delivery.channel),
                    col(Delivery.status),
                    func.count(),
                    func.sum(sa.case((col(Delivery.attempts) > 0, 1), else_=0)),
                    func.min(Delivery.created_at),
                )
                .where(col(Delivery.status).in_([PENDING, DEAD]))
                .group_by(Delivery.channel, Delivery.status)
            ).all()
        for channel, status, count, tried, first in rows:
            if status == DEAD:
                dead.add_metric([channel], float(count))
                continue
            backlog.add_metric([channel], float(count))
            failing.add_metric([channel], float(tried or 0))
            if first is not None:
                first = first if first.tzinfo else first.replace(tzinfo=UTC)
                oldest.add_metric([channel], max(0.0, (now - first).total_seconds()))
        yield from (waiting, backlog, failing, oldest, dead)


@bp.get("/metrics")
@auth.require("admin", scope=SCOPE)
def scrape() -> Response:
    app: Any = current_app
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(app.extensions["taktline.metrics_dir"]))
    registry.register(DatabaseCollector(app.extensions["taktline.engine"]))  # type: ignore[arg-type]
    response = Response(generate_latest(registry), mimetype=None)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    response.headers["Cache-Control"] = "no-store"
    return response


def metrics_dir(app: Flask) -> Path:
    configured = app.config["METRICS_DIR"]
    return Path(configured) if configured else Path(app.instance_path) / "metrics"


def init_app(app: Flask) -> None:
    folder = metrics_dir(app)
    metrics.setup(folder)
    app.extensions["taktline.metrics_dir"] = folder
    app.register_blueprint(bp)
    openapi.add_path(
        "/metrics",
        {
            "get": {
                "summary": "Prometheus metrics (text format); needs the metrics:read scope",
                "tags": ["operations"],
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    )
