"""The home page (the plant's stations) and the health check (blueprint "home")."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, g, render_template
from sqlalchemy import text
from sqlmodel import col, select

from server.db import get_session
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
    return render_template("home/index.html", stations=stations)


@bp.get("/healthz")
@auth.public
def healthz() -> tuple[dict[str, str], int]:
    get_session().exec(text("SELECT 1"))  # type: ignore[call-overload]
    return {"status": "ok", "user": g.user.name if g.get("user") else ""}, 200


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
