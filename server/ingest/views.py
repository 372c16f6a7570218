"""The dead-letter page (blueprint "ingest"): what the MQTT ingest could not decode or
decide, newest first, for supervisors (docs/mqtt.md, "Dead letters")."""

from __future__ import annotations

from flask import Blueprint, Flask, render_template, request

from server.db import get_session
from server.ingest import deadletters
from server.security import auth

bp = Blueprint("ingest", __name__, url_prefix="/ingest")


@bp.get("/dead-letters")
@auth.require("supervisor")
def dead_letters() -> str:
    station = request.args.get("station", "").strip()[:64]
    letters = deadletters.recent(get_session(), limit=200, station=station)
    return render_template(
        "ingest/dead_letters.html",
        letters=[(letter, deadletters.preview(letter)) for letter in letters],
        station=station,
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
