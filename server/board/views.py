"""The supervisors' line board, live over SSE.

``/board`` renders the figures once (``/board?tv=1``: the wall screen, large type, no
navigation and nothing to click); ``/board/events`` streams the same partial as the
``board`` SSE event whenever a station's state changes (``server.messaging.live``, fed by the
retained MQTT state topics and this process's own publishes), and at least every
``BOARD_REFRESH_SECONDS`` for the day's figures. ``/board/data.json`` feeds the charts
(static ``board.js``, Chart.js served locally; no inline script).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlmodel import Session

from server import audit, plant_time
from server.board import figures
from server.db import begin_write, get_session
from server.messaging import live
from server.models import AndonCall, Station
from server.models.types import utcnow
from server.operations import metrics
from server.security import auth
from station import screen, texts
from station.messages import ANDON_REASONS

log = logging.getLogger(__name__)
bp = Blueprint("board", __name__)
FIRST_DAY, LAST_DAY = date(2, 1, 1), date(9998, 12, 31)


def _day_arg() -> date | None:
    value = request.args.get("day", "")
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        abort(400, description=_("The day is YYYY-MM-DD."))
    if not FIRST_DAY <= day <= LAST_DAY:  # its plant day in UTC must exist (year 1, 9999)
        abort(400, description=_("The day is YYYY-MM-DD."))
    return day


def _tv() -> bool:
    """The wall screen (``?tv=1``): read from across the room, nothing to click."""
    return request.args.get("tv") == "1"


@bp.get("/board")
@auth.require("supervisor")
def page() -> str:
    day = _day_arg()
    f = figures.day_figures(get_session(), day=day, zone=plant_time.zone())
    return render_template("board/page.html", f=f, day=day, tv=_tv())


@bp.get("/board/data.json")
@auth.require("supervisor")
def data() -> Any:
    return figures.to_dict(
        figures.day_figures(get_session(), day=_day_arg(), zone=plant_time.zone())
    )


# Longest a board's re-render waits while station changes keep coming.
BURST_SECONDS = 1.0


@bp.get("/board/events")
@auth.require("supervisor")
def events() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    refresh = float(app.config["BOARD_REFRESH_SECONDS"])
    once = request.args.get("once") == "1"  # one event and close (tests, curl)
    tv = _tv()

    def render() -> str:
        with Session(app.extensions["taktline.engine"]) as db:
            return render_template(
                "board/_figures.html", f=figures.day_figures(db, zone=plant_time.zone()), tv=tv
            )

    def stream() -> Iterator[str]:
        sub = live.subscribe()
        metrics.sse_opened("board")
        try:
            last = ""
            deadline = 0.0
            while True:
                html = render()
                digest = hashlib.sha1(html.encode()).hexdigest()
                if digest != last:
                    last = digest
                    yield _sse("board", html)
                    deadline = time.monotonic() + refresh
                elif time.monotonic() >= deadline:
                    yield ": keep-alive\n\n"
                    deadline = time.monotonic() + refresh
                if once:
                    return
                # Wake on any station change, or refresh the day's figures after a while.
                # A burst of changes is one render, but a line that never pauses for
                # 0.2 s (a busy plant) still gets one at least every BURST_SECONDS.
                if sub.get(timeout=refresh) is not None:
                    until = time.monotonic() + BURST_SECONDS
                    while time.monotonic() < until and sub.get(timeout=0.2) is not None:
                        pass
        finally:
            sub.close()
            metrics.sse_closed("board")

    return Response(
        stream_with_context(stream()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _sse(event: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


@bp.post("/board/andon/<int:andon_id>/ack")
@auth.require("supervisor")
def acknowledge(andon_id: int) -> Any:
    db = get_session()
    begin_write(db)
    call = db.get(AndonCall, andon_id)
    if call is None:
        db.rollback()
        abort(404, description=_("No andon call %(id)s.", id=andon_id))
    station = db.get(Station, call.station_id)
    code = station.code if station else str(call.station_id)
    if call.acknowledged_at is None and call.resolved_at is None:
        call.acknowledged_at = utcnow()
        call.acknowledged_by_id = g.user.id
        db.add(call)
        audit.record(
            db,
            actor=auth.actor(),
            action="andon.acknowledge",
            entity="station",
            entity_id=code,
            address=auth.address(),
            detail={"andon_id": andon_id, "reason": call.reason},
        )
        db.commit()
        log.info("andon %s at %s acknowledged by %s", andon_id, code, auth.actor())
        _publish(db, code)
    else:
        db.rollback()
    if request.headers.get("HX-Request"):
        return render_template(
            "board/_figures.html", f=figures.day_figures(db, zone=plant_time.zone())
        )
    return redirect(url_for("board.page"), code=303)


def _publish(db: Session, code: str) -> None:
    """Tell the station (tablet over SSE, other processes over MQTT) its new state."""
    from station import service

    try:
        snapshot = service.snapshot(service.load_state(db, station_code=code))
    except LookupError as exc:
        log.warning("no state to publish for %s: %s", code, exc)
        return
    snapshot["andon_acknowledged"] = True
    live.publish_station(code, snapshot)


def andon_reason(code: str | None) -> str:
    """An andon reason as the reader says it: the catalog's own reasons (``reasons:`` in
    the import, translated per locale) first, then the built-in ones (material,
    quality...), free text as sent."""
    if not code:
        return ""
    with Session(current_app.extensions["taktline.engine"]) as db:
        named = dict(screen.reasons(db, "andon", str(get_locale() or "")))
    return named.get(code) or texts.label(ANDON_REASONS, code)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.filters["andon_reason"] = andon_reason
    app.jinja_env.filters.setdefault("tojson_compact", lambda v: json.dumps(v))
