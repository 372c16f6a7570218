"""Desktop sign-in and sign-out pages (blueprint "security")."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("security", __name__)


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
            return (
                render_template("security/login.html", error=error),
                429,
                {"Retry-After": str(exc.retry_after)},
            )
        if user is not None:
            auth.sign_in(user)
            target = request.args.get("next", "")
            # Only local paths: never an open redirect to another host.
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("home.index")
            return redirect(target, code=303)
        error = _("Unknown user name or wrong password.")
    return render_template("security/login.html", error=error), 401 if error else 200


@bp.post("/logout")
@auth.public
def logout() -> ResponseReturnValue:
    auth.sign_out()
    flash(_("Signed out."))
    return redirect(url_for("home.index"), code=303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
