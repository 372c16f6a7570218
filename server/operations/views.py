"""``GET /api/v1/metrics``: Prometheus text format, for an API token with ``metrics:read``
(or a signed-in admin). docs/operations.md lists every metric.

Two sources in one answer:
- the instruments of every process sharing ``METRICS_DIR`` (``server.operations.metrics``,
  prometheus_client's multiprocess mode): the ingest's queue, batches, latencies and
  answers, the open SSE streams;
- the database, read at scrape time, right whichever process wrote it: events by
  station, kind and verdict, dead letters.
"""

from __future__ import annotations

from collections.abc import Iterator
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
from server.models import DeadLetter, Event, Station
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
