"""Plant-wide pages: the home page, desktop sign-in, health check."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import text
from sqlmodel import col, select

from server import auth
from server.db import get_session
from server.models import Line, Site, Station

log = logging.getLogger(__name__)
bp = Blueprint("views", __name__)


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
    return render_template("views/index.html", stations=stations)


@bp.route("/login", methods=["GET", "POST"])
@auth.public
def login() -> ResponseReturnValue:
    error = None
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        try:
            user = auth.authenticate(username, request.form.get("password", ""))
        except auth.RateLimited as exc:
            error = _("Too many failed sign-ins. Try again in %(s)s seconds.", s=exc.retry_after)
            return render_template("views/login.html", error=error), 429, {
                "Retry-After": str(exc.retry_after)}
        if user is not None:
            auth.sign_in(user)
            target = request.args.get("next", "")
            # Only local paths: never an open redirect to another host.
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("views.index")
            return redirect(target, code=303)
        error = _("Unknown user name or wrong password.")
    return render_template("views/login.html", error=error), 401 if error else 200


@bp.post("/logout")
@auth.public
def logout() -> ResponseReturnValue:
    auth.sign_out()
    flash(_("Signed out."))
    return redirect(url_for("views.index"), code=303)


@bp.get("/healthz")
@auth.public
def healthz() -> tuple[dict[str, str], int]:
    get_session().exec(text("SELECT 1"))  # type: ignore[call-overload]
    return {"status": "ok", "user": g.user.name if g.get("user") else ""}, 200


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
