"""The quality pages (blueprint "quality", /quality) and the tablet's check forms.

- ``/quality/``: non-conformances with filters, the Pareto of causes, open an NCR;
- ``/quality/ncr/<id>``: one NCR and its disposition (supervisors);
- ``/quality/rework/<station>``: a rework station's queue, removal, replacement, the
  re-run check (docs/quality.md);
- ``/quality/quarantine``: removed components waiting for a supervisor's release;
- ``/quality/charts``: the control chart and Cpk of each measured characteristic.

The tablet posts a check's answer to ``/station/<code>/check`` (blueprint
"quality_station", admitted like the tablet's own actions) and the event goes through
``station.service`` like every other; a photo is stored under the instance folder.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from babel.numbers import NumberFormatError, get_group_symbol, parse_decimal
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlmodel import select
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from server.db import begin_write, get_session
from server.models import NonConformance, Station, Unit
from server.models.types import fits_int32, utcnow
from server.quality import figures, messages, ncr, rework
from server.security import auth
from station import checks as qc
from station import texts
from station import views as station_views
from station import workflow as wf
from station.messages import safe

log = logging.getLogger(__name__)
bp = Blueprint("quality", __name__, url_prefix="/quality")
tablet = Blueprint("quality_station", __name__, url_prefix="/station")
tablet.register_error_handler(RequestEntityTooLarge, station_views.too_large)
PHOTO_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
MAX_PHOTO = 5 * 1024 * 1024  # bytes; a tablet camera's JPEG is well under this


def photo_dir() -> Path:
    return Path(current_app.instance_path) / "quality-photos"


# -- non-conformances ----------------------------------------------------------------


@bp.get("/")
@auth.require("supervisor")
def index() -> str:
    args = {k: request.args.get(k, "").strip()[:64] for k in ("status", "station", "cause")}
    db = get_session()
    since = utcnow() - timedelta(days=1)
    return render_template(
        "quality/index.html",
        rows=ncr.listing(
            db,
            status=args["status"] or None,
            station=args["station"] or None,
            cause=args["cause"] or None,
        ),
        args=args,
        statuses=ncr.STATUSES,
        pareto=figures.pareto(db, since=since),
        rework_stations=_rework_stations(),
    )


def _rework_stations() -> list[str]:
    return list(
        get_session()
        .exec(select(Station.code).where(Station.kind == rework.REWORK_KIND, Station.active))
        .all()
    )


@bp.post("/ncr")
@auth.require("supervisor")
def open_ncr() -> Response:
    db = get_session()
    begin_write(db)
    try:
        created = ncr.open_ncr(
            db,
            unit_serial=request.form.get("unit", "")[:64],
            cause=request.form.get("cause", "")[:64],
            note=request.form.get("note", "")[:1000],
            by=auth.actor(),
            address=auth.address(),
        )
    except ncr.QualityError as exc:
        db.rollback()
        flash(refusal(exc), "error")
        return redirect(url_for("quality.index"), code=303)
    db.commit()
    flash(_("%(ncr)s opened.", ncr=ncr.label(created)), "ok")
    return redirect(url_for("quality.show", ncr_id=created.id), code=303)


def refusal(exc: ncr.QualityError) -> str:
    """A refusal in the reader's language (a quality code, or the station's own)."""
    template = messages.TEMPLATES.get(exc.code)
    if template is not None:
        return str(_(template, **safe(exc.params)))
    return texts.translated(exc.code, exc.params)


def _ncr(ncr_id: int) -> NonConformance:
    found = get_session().get(NonConformance, ncr_id) if fits_int32(ncr_id) else None
    if found is None:
        abort(404)
    return found


@bp.get("/ncr/<int:ncr_id>")
@auth.require("supervisor")
def show(ncr_id: int) -> str:
    item = _ncr(ncr_id)
    unit = get_session().get(Unit, item.unit_id)
    return render_template(
        "quality/ncr.html",
        item=item,
        label=ncr.label(item),
        unit=unit,
        dispositions=ncr.DISPOSITIONS,
        rework_stations=_rework_stations(),
    )


@bp.post("/ncr/<int:ncr_id>/decide")
@auth.require("supervisor")
def decide(ncr_id: int) -> Response:
    if not fits_int32(ncr_id):
        abort(404)
    db = get_session()
    begin_write(db)
    item = _ncr(ncr_id)
    try:
        ncr.decide(
            db,
            ncr=item,
            disposition=request.form.get("disposition", "")[:16],
            reason=request.form.get("reason", "")[:500],
            by=auth.actor(),
            address=auth.address(),
        )
    except ncr.QualityError as exc:
        db.rollback()
        flash(refusal(exc), "error")
        return redirect(url_for("quality.show", ncr_id=ncr_id), code=303)
    db.commit()
    flash(_("%(ncr)s decided.", ncr=ncr.label(item)), "ok")
    return redirect(url_for("quality.show", ncr_id=ncr_id), code=303)


# -- rework station --------------------------------------------------------------------


@bp.get("/rework/<code>")
@auth.require("operator")
def rework_page(code: str) -> str:
    db = get_session()
    try:
        station = rework.rework_station(db, code[:32])
    except ncr.QualityError:
        abort(404)
    queue = rework.queue(db)
    chosen = request.args.get("ncr", "")
    current = next((n for n, _s in queue if str(n.id) == chosen), queue[0][0] if queue else None)
    context: dict[str, Any] = {"station": station, "queue": queue, "current": current}
    if current is not None:
        context.update(
            serial=next(s for n, s in queue if n.id == current.id),
            label=ncr.label(current),
            components=rework.components(db, unit_id=current.unit_id),
            check=rework.check_status(db, ncr=current),
        )
    return render_template("quality/rework.html", **context)


@bp.post("/rework/<code>/<int:ncr_id>/<action>")
@auth.require("operator")
def rework_action(code: str, ncr_id: int, action: str) -> Response:
    if not fits_int32(ncr_id):
        abort(404)
    db = get_session()
    begin_write(db)
    try:
        station = rework.rework_station(db, code[:32])
    except ncr.QualityError:
        abort(404)
    item = _ncr(ncr_id)
    by = auth.actor()
    data = request.form.get("data", "")[:4096]
    try:
        if action == "remove":
            rework.remove(db, ncr=item, data=data, station=station, by=by)
            message = _("Removed: it is in quarantine now.")
        elif action == "install":
            rework.install(db, ncr=item, data=data, station=station, by=by)
            message = _("Replacement built in.")
        elif action == "measure":
            raw = request.form.get("value", "").strip()[:32]
            ok = rework.measure(
                db,
                ncr=item,
                value=typed_number(raw) if raw else None,
                passed=request.form.get("passed") == "1",
                station=station,
                by=by,
            )
            message = _("Check passed.") if ok else _("Check failed: do it again.")
        elif action == "finish":
            rework.finish(db, ncr=item, by=by, address=auth.address())
            message = _("Rework finished: the unit goes back to its station.")
        else:
            abort(404)
    except ncr.QualityError as exc:
        db.rollback()
        log.info("rework %s at %s refused: %s", action, code, exc)
        flash(refusal(exc), "error")
        return redirect(url_for("quality.rework_page", code=code, ncr=ncr_id), code=303)
    db.commit()
    flash(message, "ok")
    return redirect(url_for("quality.rework_page", code=code, ncr=ncr_id), code=303)


# -- quarantine ------------------------------------------------------------------------


@bp.get("/quarantine")
@auth.require("supervisor")
def quarantine() -> str:
    return render_template("quality/quarantine.html", rows=rework.quarantined(get_session()))


@bp.post("/quarantine/<int:change_id>/release")
@auth.require("supervisor")
def release(change_id: int) -> Response:
    if not fits_int32(change_id):
        abort(404)
    db = get_session()
    begin_write(db)
    try:
        rework.release(db, change_id=change_id, by=auth.actor(), address=auth.address())
    except ncr.QualityError as exc:
        db.rollback()
        flash(refusal(exc), "error")
        return redirect(url_for("quality.quarantine"), code=303)
    db.commit()
    flash(_("Released from quarantine."), "ok")
    return redirect(url_for("quality.quarantine"), code=303)


# -- control charts --------------------------------------------------------------------


@bp.get("/charts")
@auth.require("supervisor")
def charts() -> str:
    return render_template(
        "quality/charts.html", characteristics=figures.characteristics(get_session())
    )


@bp.get("/charts/<int:check_id>")
@auth.require("supervisor")
def chart(check_id: int) -> str:
    if not fits_int32(check_id):
        abort(404)
    try:
        check, data, times = figures.chart(get_session(), check_id=check_id)
    except LookupError:
        abort(404)
    return render_template("quality/chart.html", check=check, chart=data, times=times)


@bp.get("/photos/<path:path>")
@auth.require("operator")  # as the unit page that links it
def photo(path: str) -> Response:
    return send_from_directory(photo_dir(), path, max_age=3600)


# -- the tablet's checks ---------------------------------------------------------------


@tablet.post("/<code>/check")
@station_views.station_device
def check(code: str) -> Any:
    """A check answered on the tablet: a typed value, OK / not OK, or a photo."""
    key: int | str = request.form.get("check", "")[:32]
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    raw = request.form.get("value", "").strip()[:32]
    passed = {"1": True, "0": False}.get(request.form.get("passed", ""))
    photo_path = ""
    upload = request.files.get("photo")
    if upload is not None and upload.filename:
        photo_path = _store_photo(code, upload)
        if not photo_path:
            return station_views._answer(  # noqa: SLF001 - the tablet's one answer
                code,
                {
                    "kind": "reject",
                    "ref": str(uuid.uuid4()),
                    "code": "bad_photo",
                    "text": _(
                        "The photo must be a JPEG, PNG or WebP image of at most %(kb)s KB.",
                        kb=min(MAX_PHOTO, int(current_app.config["MAX_CONTENT_LENGTH"])) // 1000,
                    ),
                },
            )
    event = wf.CheckInput(
        key,
        value=typed_number(raw) if raw else None,
        passed=passed,
        photo=photo_path,
    )
    if raw and event.value is None:
        log.warning("station %s: check %s with an unusable value %r", code, key, raw)
    outcome = station_views._decide(code, event, source="tablet")  # noqa: SLF001
    if photo_path and not outcome.accepted:  # a refused answer keeps no file
        (photo_dir() / photo_path).unlink(missing_ok=True)
    return station_views._answer(code, station_views.banner_for(outcome))  # noqa: SLF001


def typed_number(raw: str) -> float | None:
    """A number as a person typed it: the reader's way first (French ``0,62`` or
    ``1 234,5``), then with a decimal point (``0.62``, what a keypad without a comma
    gives). Anything else (``0,62`` on an English tablet, where the comma groups
    thousands) is ``None``: refused as unreadable, never guessed."""
    locale = get_locale()
    if locale is not None:
        group = get_group_symbol(locale)
        if group in ("\xa0", "\u202f"):  # French groups with a narrow no-break space
            raw = raw.replace(" ", group)
        try:
            return qc.usable(float(parse_decimal(raw, locale=locale, strict=True)))
        except (NumberFormatError, ValueError, ArithmeticError):
            pass
    return qc.usable(raw)


def _store_photo(code: str, upload: Any) -> str:
    data = upload.read(MAX_PHOTO + 1)
    # By its first bytes, as the defect photo: the browser's content type is the sender's word.
    kind = next((t for magic, t in station_views.PHOTO_MAGIC if data.startswith(magic)), "")
    if kind == "image/webp" and data[8:12] != b"WEBP":
        kind = ""
    suffix = PHOTO_TYPES.get(kind)
    if suffix is None or len(data) > MAX_PHOTO:
        log.warning("station %s: photo refused (%s, %d bytes)", code, upload.mimetype, len(data))
        return ""
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    folder = photo_dir() / day
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{code}-{uuid.uuid4().hex}{suffix}"
    (folder / name).write_bytes(data)
    return f"{day}/{name}"


def board_quality() -> figures.BoardQuality:
    """Today's FPY per station and the Pareto (for templates/board/_quality.html)."""
    return figures.board(get_session(), now=utcnow())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(tablet)
    app.jinja_env.globals.update(board_quality=board_quality)
