"""A tablet binds itself to its station by entering a device token an admin issued.

Public (the tablet has no signed-in person yet) but rate-limited per address like
sign-in, so device tokens cannot be guessed online (they are 256-bit anyway).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from server import auth
from server.db import get_session

log = logging.getLogger(__name__)
bp = Blueprint("device", __name__, url_prefix="/device")


@bp.get("/")
@auth.public
def status() -> str:
    return render_template("admin/enroll.html", station=auth.bound_station(), error=None)


@bp.post("/enroll")
@auth.public
def enroll() -> Any:
    token = request.form.get("token", "").strip()
    try:
        auth.limiter().check("device-enroll", auth.address())
    except auth.RateLimited as exc:
        return render_template("admin/enroll.html", station=None, error=str(exc)), 429
    station = auth.station_for_device(get_session(), token)
    if station is None:
        auth.limiter().failed("device-enroll", auth.address())
        log.warning("device enrol with an unknown or revoked token from %s", auth.address())
        return render_template("admin/enroll.html", station=None,
                               error=_("Unknown or revoked device token.")), 400
    log.info("browser at %s bound to station %s", auth.address(), station.code)
    response = make_response(redirect(station_page(station.code), code=303))
    return auth.set_device_cookie(response, token)


@bp.post("/unbind")
@auth.public
def unbind() -> Any:
    flash(_("This browser is no longer bound to a station."))
    response = make_response(redirect(url_for("device.status"), code=303))
    response.delete_cookie(auth.DEVICE_COOKIE)
    return response


def station_page(code: str) -> str:
    """The station's tablet page when the station blueprint has one, else /device/."""
    path = f"/station/{code}"
    try:
        current_app.url_map.bind("localhost").match(path, method="GET")
    except HTTPException:
        return url_for("device.status")
    return path
