"""Desktop sign-in and sign-out pages (blueprint "security")."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from flask import Blueprint, Flask, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("security", __name__)
# What a browser's URL parser strips from both ends (C0 controls and space), and what
# it removes anywhere (ASCII tab and newline): "/\t/evil.example" is "//evil.example".
_ENDS = "".join(chr(c) for c in range(0x21))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def local_path(target: str) -> str | None:
    """``target`` as the browser would read it, when that is a path on this site;
    None for anything that would leave it (another host, a scheme, ``//``, ``/\\``).

    The same normalisation as the WHATWG URL parser first, so what is checked is what
    the browser follows; the normalised path is what goes into ``Location``."""
    path = _TAB_OR_NEWLINE.sub("", target.strip(_ENDS))
    if _CONTROL.search(path) or not path.startswith("/") or path[1:2] in ("/", "\\"):
        return None
    parts = urlsplit(path.replace("\\", "/"))
    if parts.scheme or parts.netloc:
        return None
    return path


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
            target = local_path(request.args.get("next", "")) or url_for("home.index")
            return auth.remember_browser(redirect(target, code=303), username)
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
