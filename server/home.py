"""The home page and the health check (blueprint "home").

Home shows the desk sections the signed-in person may open, each with what it is for
and its pages (``server.navigation.home_cards``), then the plant's stations. Somebody
not signed in is offered the sign-in; an operator is told that work is done on the
station tablet.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, current_app, g, render_template
from sqlalchemy import text
from sqlmodel import col, select

from server import navigation
from server.db import get_session
from server.ingest import EXTENSION as INGEST
from server.models import Line, Site, Station
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("home", __name__)


@bp.get("/")
@auth.public
def index() -> str:
    db = get_session()
    stations = db.exec(
        select(Station, Line, Site)
        .join(Line, Station.line_id == Line.id)  # type: ignore[arg-type]
        .join(Site, Line.site_id == Site.id)  # type: ignore[arg-type]
        .order_by(col(Site.code), col(Line.code), col(Station.position))
    ).all()
    return render_template("home/index.html", stations=stations, cards=navigation.home_cards())


@bp.get("/healthz")
@auth.public
def healthz() -> tuple[dict[str, Any], int]:
    """200 when the database answers and, where this process runs the ingest, its
    worker is alive; 503 naming what is not (a load balancer or service manager acts)."""
    get_session().exec(text("SELECT 1"))  # type: ignore[call-overload]
    body: dict[str, Any] = {"status": "ok", "user": g.user.name if g.get("user") else ""}
    ingest = current_app.extensions.get(INGEST)
    if ingest is None:
        return body, 200
    body["ingest"] = {"alive": ingest.alive(), "heartbeat_age_s": round(ingest.heartbeat_age(), 1)}
    if not ingest.alive():
        body["status"] = "ingest down"
        return body, 503
    return body, 200


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
