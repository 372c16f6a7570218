"""Administration: people, API tokens and station tablets (issue 8).

Every change here is written to the audit trail in the same transaction. Admin pages
need the admin role. A tablet is bound either here ("bind this browser", when the admin
stands at the tablet) or by opening the binding link shown once on issue
(``/station/bind?token=...``, station blueprint).
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from server.security import auth

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@auth.require("admin")
def index() -> str:
    return render_template("admin/index.html")


def init_app(app: Flask) -> None:
    from server.admin import tokens, users  # noqa: F401 - registers the routes

    app.register_blueprint(bp)
