"""API tokens for integrations and device tokens for station tablets. All audited.

A new token is shown once, on the response to the form that issued it; only its hash
is stored, so a lost token is revoked and issued again. A tablet's binding link is
shown as a QR code too (inline SVG, segno), which the tablet's camera opens, so nobody
types the ~90 characters.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlmodel import col, select

from server.admin import bp
from server.db import begin_write, get_session
from server.models import ApiToken, DeviceToken, Line, Station
from server.security import auth

log = logging.getLogger(__name__)


@bp.get("/api-tokens")
@auth.require("admin")
def api_tokens() -> str:
    return _api_page()


def _api_page(**extra: Any) -> str:
    rows = get_session().exec(select(ApiToken).order_by(ApiToken.id.desc())).all()  # type: ignore[union-attr]
    return render_template("admin/api_tokens.html", tokens=rows, **extra)


@bp.post("/api-tokens")
@auth.require("admin")
def issue_api_token() -> Any:
    name = request.form.get("name", "").strip()
    try:
        if not name or len(name) > 200:
            raise ValueError(_("Give the integration a name (at most 200 characters)."))
        scopes = auth.parse_scopes(request.form.get("scopes", ""))
    except ValueError as exc:
        log.info("API token form refused: %s", exc)
        return _api_page(error=str(exc)), 400
    db = get_session()
    begin_write(db)
    token = auth.issue_api_token(db, name=name, scopes=scopes, by=g.user)
    db.commit()
    response = make_response(_api_page(new_token=token, new_name=name))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api-tokens/<int:token_id>/revoke")
@auth.require("admin")
def revoke_api_token(token_id: int) -> Any:
    db = get_session()
    begin_write(db)
    row = db.get(ApiToken, token_id) or abort(404)
    auth.revoke_api_token(db, token=row, by=g.user)
    db.commit()
    flash(_("Token %(name)s revoked.", name=row.name))
    return redirect(url_for("admin.api_tokens"), code=303)


@bp.get("/devices")
@auth.require("admin")
def devices() -> str:
    return _devices_page()


def _devices_page(**extra: Any) -> str:
    db = get_session()
    rows = db.exec(
        select(DeviceToken, Station)
        .join(Station, DeviceToken.station_id == Station.id)  # type: ignore[arg-type]
        .order_by(col(DeviceToken.id).desc())
    ).all()
    stations = db.exec(
        select(Station)
        .join(Line, Station.line_id == Line.id)  # type: ignore[arg-type]
        .where(Station.active == True)  # noqa: E712
        .order_by(col(Line.code), col(Station.position))
    ).all()
    return render_template(
        "admin/devices.html", rows=rows, stations=stations, here=auth.bound_station(), **extra
    )


@bp.post("/devices")
@auth.require("admin")
def issue_device_token() -> Any:
    db = get_session()
    begin_write(db)
    station = db.exec(
        select(Station).where(Station.code == request.form.get("station", ""))
    ).first()
    label = request.form.get("label", "").strip()[:200]
    if station is None or not station.active:
        db.rollback()
        log.info("device token form refused: unknown station %r", request.form.get("station"))
        return _devices_page(error=_("Choose a station.")), 400
    token = auth.issue_device_token(db, station=station, by=g.user, label=label)
    db.commit()
    if request.form.get("bind_here") == "on":
        # The admin is standing at the tablet: bind this browser, never show the token.
        flash(_("This tablet is now bound to %(code)s.", code=station.code))
        response = make_response(redirect(url_for("admin.devices"), code=303))
        return auth.set_device_cookie(response, token)
    bind_url = url_for("station.bind", token=token, _external=True)
    response = make_response(
        _devices_page(
            new_token=token,
            new_station=station,
            bind_url=bind_url,
            bind_qr=qr_svg(bind_url, title=_("Binding link for %(code)s", code=station.code)),
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def qr_svg(text: str, *, title: str) -> Markup:
    """``text`` as a QR code, an inline SVG that scales with its box (error correction M,
    dark on white with the standard quiet zone, so a camera reads it on a dark page)."""
    import segno

    code = segno.make(text, error="m", micro=False)
    return Markup(  # noqa: S704 - segno's own SVG; the title is escaped by segno
        code.svg_inline(
            scale=1,
            border=4,
            dark="#000",
            light="#fff",
            omitsize=True,
            title=title,
            svgclass="qr",
            lineclass=None,
        )
    )


@bp.post("/devices/<int:token_id>/revoke")
@auth.require("admin")
def revoke_device_token(token_id: int) -> Any:
    db = get_session()
    begin_write(db)
    row = db.get(DeviceToken, token_id) or abort(404)
    auth.revoke_device_token(db, token=row, by=g.user)
    db.commit()
    flash(_("Device token revoked; that tablet is no longer bound."))
    return redirect(url_for("admin.devices"), code=303)
