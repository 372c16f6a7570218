"""Supervisor stock page: lots with on-hand, reserved and expiry, and counted
adjustments. Expired lots (``server.inventory.expiry``) are marked and their stock is
counted apart: it is on hand but never reserved nor built in."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import col, or_, select

from server.db import begin_write, contains_text, get_session
from server.inventory import adjust, expiry, ledger
from server.models import Location, Part, StockLot
from server.models.types import fits_int32
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("stock", __name__, url_prefix="/stock")
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


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
