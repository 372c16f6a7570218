"""Supervisor dispatch board: every station's queue; hold, resume, move work."""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Flask,
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

from server.db import get_session, write_session
from server.dispatch import queue, supervise
from server.models import Operation, Station, Unit, UnitOperation, UnitOperationStatus
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("dispatch", __name__, url_prefix="/dispatch")


def _rows(session: Session, ops: list[UnitOperation]) -> list[dict[str, Any]]:
    units = (
        {
            u.id: u
            for u in session.exec(
                select(Unit).where(col(Unit.id).in_([o.unit_id for o in ops]))
            ).all()
        }
        if ops
        else {}
    )
    names = {o.id: o.name for o in session.exec(select(Operation)).all()}
    stations = {s.id: s.code for s in session.exec(select(Station)).all()}
    return [
        {
            "op": o,
            "unit": units.get(o.unit_id),
            "name": names.get(o.operation_id, ""),
            "station": stations.get(o.station_id) if o.station_id else None,
        }
        for o in ops
    ]


def _board(session: Session) -> dict[str, Any]:
    stations = session.exec(
        select(Station).order_by(col(Station.line_id), col(Station.position))
    ).all()
    lanes = []
    for st in stations:
        active = session.exec(
            select(UnitOperation).where(
                UnitOperation.station_id == st.id,
                UnitOperation.status == UnitOperationStatus.ACTIVE,
            )
        ).all()
        lanes.append(
            {
                "station": st,
                "active": _rows(session, list(active)),
                "queue": _rows(session, queue.queue_for(session, station=st)),
            }
        )
    held = session.exec(
        select(UnitOperation)
        .where(UnitOperation.status == UnitOperationStatus.HELD)
        .order_by(col(UnitOperation.id))
    ).all()
    return {
        "lanes": lanes,
        "held": _rows(session, list(held)),
        "by_kind": {k: [s for s in stations if s.kind == k] for k in {s.kind for s in stations}},
    }


@bp.get("/")
@auth.require("supervisor")
def board() -> str:
    return render_template("dispatch/board.html", **_board(get_session()))


@bp.get("/stations/<code>")
@auth.require("operator")
def station(code: str) -> str:
    session = get_session()
    st = session.exec(select(Station).where(Station.code == code)).first()
    if st is None:
        abort(404)
    return render_template(
        "dispatch/station.html",
        station=st,
        queue=_rows(session, queue.queue_for(session, station=st)),
    )


def _act(op_id: int, action: Any, done: str) -> Any:
    try:
        with write_session(current_app.extensions["taktline.engine"]) as session:
            op = session.get(UnitOperation, op_id)
            if op is None:
                abort(404)
            action(session, op)
        flash(done)
    except supervise.DispatchError as exc:
        log.info("dispatch action on %s refused: %s", op_id, exc)
        flash(str(exc))
    return redirect(url_for("dispatch.board"), code=303)


@bp.post("/ops/<int:op_id>/hold")
@auth.require("supervisor")
def hold(op_id: int) -> Any:
    reason = request.form.get("reason", "")
    return _act(
        op_id,
        lambda s, op: supervise.hold(
            s, unit_operation=op, reason=reason, by=auth.actor(), address=auth.address()
        ),
        _("Put on hold."),
    )


@bp.post("/ops/<int:op_id>/resume")
@auth.require("supervisor")
def resume(op_id: int) -> Any:
    return _act(
        op_id,
        lambda s, op: supervise.resume(
            s, unit_operation=op, by=auth.actor(), address=auth.address()
        ),
        _("Resumed."),
    )


@bp.post("/ops/<int:op_id>/move")
@auth.require("supervisor")
def move(op_id: int) -> Any:
    def action(s: Session, op: UnitOperation) -> None:
        target = s.exec(
            select(Station).where(Station.code == request.form.get("station", ""))
        ).first()
        if target is None:
            raise supervise.DispatchError(_("Choose a station."))
        supervise.move(
            s, unit_operation=op, station=target, by=auth.actor(), address=auth.address()
        )

    return _act(op_id, action, _("Moved."))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
