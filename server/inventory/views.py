"""Supervisor stock page: lots with on-hand, reserved and expiry, and counted
adjustments. Expired lots (``server.inventory.expiry``) are marked and their stock is
counted apart: it is on hand but never reserved nor built in.

``stock_rows`` / ``stock_dict`` are the one listing of lots behind ``/stock.csv`` and
``GET /api/v1/stock`` (``server.api.stock``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlmodel import Session, col, or_, select

from server import exports
from server.db import begin_write, contains_text, get_session
from server.inventory import adjust, expiry, ledger
from server.models import Location, Part, StockLot
from server.models.types import fits_int32
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("stock", __name__, url_prefix="/stock")
export_bp = Blueprint("stock_export", __name__)  # /stock.csv, beside /stock/
LIMIT = 500


@bp.get("/")
@auth.require("supervisor")
def index() -> str:
    q = request.args.get("q", "").strip()
    db = get_session()
    query = (
        select(StockLot, Part, Location)
        .join(Part, StockLot.part_id == Part.id)  # type: ignore[arg-type]
        .join(Location, col(StockLot.location_id) == Location.id)
    )
    found = (
        or_(
            contains_text(col(Part.sku), q),
            contains_text(col(Part.description), q),
            contains_text(col(StockLot.lot_code), q),
            contains_text(col(StockLot.serial), q),
        )
        if q
        else sa.true()
    )
    rows = db.exec(query.where(found).order_by(col(Part.sku), col(StockLot.id)).limit(LIMIT)).all()
    today = expiry.today()
    # Expired stock counted apart, over every lot the search finds (not only those listed).
    expired_lots, expired_on_hand = db.exec(
        select(  # type: ignore[call-overload]
            sa.func.count(), sa.func.coalesce(sa.func.sum(StockLot.on_hand), 0)
        )
        .select_from(StockLot)
        .join(Part, col(StockLot.part_id) == Part.id)
        .where(
            found,
            expiry.expired_clause(col(StockLot.expires_on), sa.literal(today)),
            col(StockLot.on_hand) > 0,
        )
    ).one()
    return render_template(
        "stock/index.html",
        rows=rows,
        q=q,
        expired={lot.id for lot, _part, _loc in rows if expiry.expired(lot.expires_on, today)},
        expired_lots=int(expired_lots),
        expired_on_hand=int(expired_on_hand),
    )


@bp.post("/lots/<int:lot_id>/adjust")
@auth.require("supervisor")
def adjust_lot(lot_id: int) -> Any:
    db = get_session()
    begin_write(db)
    lot = db.get(StockLot, lot_id) or abort(404)
    try:
        quantity = int(request.form.get("quantity", ""))
        if not fits_int32(quantity):
            raise ValueError("")
        adjust.adjust(
            db,
            lot=lot,
            quantity=quantity,
            reason=request.form.get("reason", ""),
            by=auth.actor(),
            address=auth.address(),
        )
    except (ValueError, ledger.InsufficientStock) as exc:
        db.rollback()
        log.info("stock adjustment of lot %s refused: %s", lot_id, exc)
        flash(_("Adjustment refused: %(why)s", why=exc if str(exc) else _("bad quantity")))
        return redirect(url_for("stock.index", q=request.args.get("q", "")), code=303)
    db.commit()
    flash(_("Stock adjusted."))
    return redirect(url_for("stock.index", q=request.args.get("q", "")), code=303)


STOCK_COLUMNS = (
    "lot_id",
    "sku",
    "description",
    "lot",
    "serial",
    "location",
    "on_hand",
    "reserved",
    "available",
    "expires_on",
    "expired",
    "received_at",
)
EXPORT_LIMIT = 100_000


def stock_rows(
    db: Session,
    *,
    q: str = "",
    part: str = "",
    location: str = "",
    limit: int = EXPORT_LIMIT,
    offset: int = 0,
) -> Sequence[tuple[StockLot, Part, Location]]:
    """Lots by part and lot id: ``q`` a substring of SKU, description, lot or serial (as
    on the stock page), ``part`` an exact SKU, ``location`` an exact location code."""
    query = (
        select(StockLot, Part, Location)
        .join(Part, StockLot.part_id == Part.id)  # type: ignore[arg-type]
        .join(Location, col(StockLot.location_id) == Location.id)
    )
    if q:
        query = query.where(
            or_(
                contains_text(col(Part.sku), q),
                contains_text(col(Part.description), q),
                contains_text(col(StockLot.lot_code), q),
                contains_text(col(StockLot.serial), q),
            )
        )
    if part:
        query = query.where(col(Part.sku) == part)
    if location:
        query = query.where(col(Location.code) == location)
    return db.exec(
        query.order_by(col(Part.sku), col(StockLot.id)).offset(offset).limit(limit)
    ).all()


def stock_dict(lot: StockLot, part: Part, loc: Location, today: date) -> dict[str, Any]:
    """One lot as the API and the CSV give it (``STOCK_COLUMNS``)."""
    return {
        "lot_id": lot.id,
        "sku": part.sku,
        "description": part.description,
        "lot": lot.lot_code or None,
        "serial": lot.serial or None,
        "location": loc.code,
        "on_hand": lot.on_hand,
        "reserved": lot.reserved,
        "available": lot.on_hand - lot.reserved,
        "expires_on": lot.expires_on.isoformat() if lot.expires_on else None,
        "expired": expiry.expired(lot.expires_on, today),
        "received_at": lot.received_at,
    }


@export_bp.get("/stock.csv")
@auth.require("supervisor")
def stock_csv() -> Response:
    """Every lot (or those ``q``, ``part``, ``location`` find) as CSV, through the one
    CSV writer (formulas neutralised)."""
    args = request.args
    rows = stock_rows(
        get_session(),
        q=args.get("q", "").strip(),
        part=args.get("part", "").strip(),
        location=args.get("location", "").strip(),
    )
    today = expiry.today()
    body = exports.to_csv(
        STOCK_COLUMNS,
        (list(stock_dict(lot, part, loc, today).values()) for lot, part, loc in rows),
    )
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": exports.attachment(f"stock-{today.isoformat()}.csv")},
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(export_bp)
