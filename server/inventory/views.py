"""Supervisor stock page: lots with on-hand and reserved, and counted adjustments."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import col, or_, select

from server.db import begin_write, get_session
from server.inventory import adjust, ledger
from server.models import Location, Part, StockLot
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("stock", __name__, url_prefix="/stock")
LIMIT = 500


@bp.get("/")
@auth.require("supervisor")
def index() -> str:
    q = request.args.get("q", "").strip()
    query = (
        select(StockLot, Part, Location)
        .join(Part, StockLot.part_id == Part.id)  # type: ignore[arg-type]
        .join(Location, col(StockLot.location_id) == Location.id)
    )
    if q:
        like = f"%{q}%"
        query = query.where(
            or_(
                col(Part.sku).ilike(like),
                col(Part.description).ilike(like),
                col(StockLot.lot_code).ilike(like),
                col(StockLot.serial).ilike(like),
            )
        )
    rows = get_session().exec(query.order_by(col(Part.sku), col(StockLot.id)).limit(LIMIT)).all()
    return render_template("stock/index.html", rows=rows, q=q)


@bp.post("/lots/<int:lot_id>/adjust")
@auth.require("supervisor")
def adjust_lot(lot_id: int) -> Any:
    db = get_session()
    begin_write(db)
    lot = db.get(StockLot, lot_id) or abort(404)
    try:
        quantity = int(request.form.get("quantity", ""))
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
