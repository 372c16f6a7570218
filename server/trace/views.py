"""Traceability pages: a unit's genealogy (+ JSON, CSV, PDF), recall search, assembly time.

Thin adapters over ``genealogy``, ``recall``, ``timing`` and ``export``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlmodel import Session, col, select

from server import exports
from server.db import get_session
from server.models import Location, Part, StockLot, StockMovement, Unit
from server.models.types import utcnow
from server.orders.travelers import barcode_svg_data_uri
from server.quality import views as quality_views
from server.security import auth
from server.trace import export, labels, timing
from server.trace.genealogy import Genealogy, genealogy, to_dict
from server.trace.recall import (
    component_dict,
    hit_dict,
    order_components,
    recall_lot,
    recall_serial,
)

log = logging.getLogger(__name__)
bp = Blueprint("trace", __name__)
MAX_REPORT_DAYS = 92


def _unit_or_404(serial: str) -> Genealogy:
    g = genealogy(get_session(), serial=serial)
    if g is None:
        abort(404, description=_("No unit %(serial)s.", serial=serial))
    return g


def unit_reservations(db: Session, *, serial: str) -> list[dict[str, Any]]:
    """The lots and serials reserved for the unit ``serial`` now: the stock ledger's
    ``reserved_delta`` summed by lot over the unit's movements (reservations at release,
    released again as the unit consumes or gives them back), those still above zero."""
    held = sa.func.sum(StockMovement.reserved_delta).label("reserved")
    rows = db.exec(
        select(  # type: ignore[call-overload]
            Part.sku,
            Part.description,
            StockLot.lot_code,
            StockLot.serial,
            Location.code,
            StockLot.expires_on,
            held,
        )
        .select_from(StockMovement)
        .join(Unit, col(Unit.id) == StockMovement.unit_id)
        .join(StockLot, col(StockLot.id) == StockMovement.lot_id)
        .join(Part, col(Part.id) == StockLot.part_id)
        .join(Location, col(Location.id) == StockLot.location_id)
        .where(Unit.serial == serial)
        .group_by(
            StockLot.id,
            Part.sku,
            Part.description,
            StockLot.lot_code,
            StockLot.serial,
            Location.code,
            StockLot.expires_on,
        )
        .having(held > 0)
        .order_by(col(Part.sku), col(StockLot.id))
    ).all()
    return [
        {
            "sku": sku,
            "description": description,
            "lot": lot or None,
            "serial": lot_serial or None,
            "location": location,
            "expires_on": expires.isoformat() if expires else None,
            "quantity": int(quantity),
        }
        for sku, description, lot, lot_serial, location, expires, quantity in rows
    ]


def _download(body: str | bytes, mimetype: str, filename: str) -> Response:
    """An attachment; ``filename`` holds outside data (serial, lot, order): sanitised."""
    return Response(
        body, mimetype=mimetype, headers={"Content-Disposition": exports.attachment(filename)}
    )


@bp.get("/units/<serial>")
@auth.require("operator")
def unit_page(serial: str) -> str:
    gen = _unit_or_404(serial)
    label = labels.label_for(get_session(), gen.serial)
    return render_template(
        "trace/unit.html",
        gen=gen,
        reservations=unit_reservations(get_session(), serial=serial),
        label_zpl=labels.zpl(label) if label else "",
        label_barcode=_barcode(gen.serial),
        printers=sorted(labels.labels(current_app).printers),
    )


def _barcode(serial: str) -> str:
    """The serial's Code 128 as an SVG data URI; empty for text Code 128 cannot hold."""
    try:
        return barcode_svg_data_uri(serial)
    except Exception:  # python-barcode refuses characters outside Code 128
        log.info("no Code 128 preview for serial %r", serial)
        return ""


@bp.post("/units/<serial>/label")
@auth.require("supervisor")
def print_label(serial: str) -> Any:
    """Print the unit's label at the chosen station's printer, now (docs/traceability.md)."""
    gen = _unit_or_404(serial)
    service = labels.labels(current_app)
    station = request.form.get("station", "")
    if station not in service.printers:
        flash(_("Choose a station with a label printer."))
        return redirect(url_for("trace.unit_page", serial=gen.serial), code=303)
    failure = service.print_unit(station, gen.serial)
    if failure is None:
        log.info("label of %s printed at %s by %s", gen.serial, station, auth.actor())
        flash(_("Label sent to the printer of %(station)s.", station=station))
    else:
        flash(_("The label was not printed: %(why)s", why=failure))
    return redirect(url_for("trace.unit_page", serial=gen.serial), code=303)


@bp.get("/units/<serial>.json")
@auth.require("operator")
def unit_json(serial: str) -> Response:
    body = json.dumps(to_dict(_unit_or_404(serial)), ensure_ascii=False, indent=1)
    return _download(body, "application/json", f"{serial}-genealogy.json")


@bp.get("/units/<serial>.csv")
@auth.require("operator")
def unit_csv(serial: str) -> Response:
    return _download(
        export.genealogy_csv(_unit_or_404(serial)), "text/csv", f"{serial}-genealogy.csv"
    )


@bp.get("/units/<serial>.pdf")
@auth.require("operator")
def unit_pdf(serial: str) -> Response:
    body = export.genealogy_pdf(
        _unit_or_404(serial),
        printed_by=auth.actor(),
        printed_at=utcnow(),
        photos=quality_views.photo_dir(),  # the check photos, as thumbnails
    )
    return _download(body, "application/pdf", f"{serial}-device-history-record.pdf")


def run_search(args: Any) -> tuple[str, dict[str, str], Any]:
    """(kind, query, result) from request args: lot+part, serial, or order."""
    db = get_session()
    lot, part = args.get("lot", "").strip(), args.get("part", "").strip()
    serial, order = args.get("serial", "").strip(), args.get("order", "").strip()
    if lot:
        if not part:
            raise ValueError(_("A lot code needs its part (SKU)."))
        return "lot", {"lot": lot, "part": part}, recall_lot(db, part_sku=part, lot_code=lot)
    if serial:
        return (
            "serial",
            {"serial": serial, "part": part},
            recall_serial(db, serial=serial, part_sku=part or None),
        )
    if order:
        components = order_components(db, order_number=order)
        if components is None:
            raise LookupError(_("No order %(number)s.", number=order))
        return "order", {"order": order}, components
    raise ValueError(_("Give a lot and its part, a serial number, or an order number."))


@bp.get("/trace")
@auth.require("supervisor")
def trace_page() -> Any:
    fmt = request.args.get("format", "")
    if not any(request.args.get(k) for k in ("lot", "serial", "order")):
        return render_template("trace/search.html", kind=None, query={}, result=None, error=None)
    try:
        kind, query, result = run_search(request.args)
    except (ValueError, LookupError) as exc:
        log.info("trace search refused: %s", exc)
        return render_template(
            "trace/search.html", kind=None, query=dict(request.args), result=None, error=str(exc)
        ), 400
    name = "-".join(v for v in query.values() if v) or "trace"
    if fmt == "csv":
        body = export.order_csv(result) if kind == "order" else export.recall_csv(result.hits)
        return _download(body, "text/csv", f"trace-{name}.csv")
    if fmt == "json":
        rows = (
            [component_dict(c) for c in result]
            if kind == "order"
            else [hit_dict(h) for h in result.hits]
        )
        return _download(
            json.dumps({"query": query, "rows": rows}, ensure_ascii=False),
            "application/json",
            f"trace-{name}.json",
        )
    return render_template("trace/search.html", kind=kind, query=query, result=result, error=None)


def _day(value: str | None, default: date) -> date:
    if not value:
        return default
    return date.fromisoformat(value)


@bp.get("/reports/assembly-time")
@auth.require("supervisor")
def assembly_time_page() -> Any:
    today = utcnow().date()
    try:
        start = _day(request.args.get("from"), today - timedelta(days=6))
        end = _day(request.args.get("to"), today)
    except ValueError:
        return render_template(
            "trace/assembly_time.html",
            report=None,
            error=_("Dates are YYYY-MM-DD."),
            start=today,
            end=today,
            product="",
        ), 400
    if end < start or (end - start).days > MAX_REPORT_DAYS:
        return render_template(
            "trace/assembly_time.html",
            report=None,
            start=start,
            end=end,
            error=_("Pick at most %(n)s days, the first before the last.", n=MAX_REPORT_DAYS),
            product="",
        ), 400
    product = request.args.get("product", "").strip()
    report = timing.assembly_time(
        get_session(),
        start=datetime(start.year, start.month, start.day, tzinfo=UTC),
        end=datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1),
        product=product or None,
    )
    return render_template(
        "trace/assembly_time.html",
        report=report,
        start=start,
        end=end,
        error=None,
        product=product,
        stats_dict=timing.stats_dict,
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    labels.init_app(app)
