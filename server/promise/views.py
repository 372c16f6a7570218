"""Supply and capacity pages: scheduled receipts (add, receive, reschedule, close) and
line calendars (shifts, closed days, stations down), and the promise part of the line
board (``/promise/board``, loaded into ``templates/board/page.html`` by htmx).

Every change here can move promises: each re-promises after its commit and publishes
the flags it raised or cleared (``server.promise.publish``).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlmodel import Session, col, select

from server import audit
from server.db import get_session, write_session
from server.inventory import receipts
from server.models import Line, LineClosure, LineShift, Location, ScheduledReceipt, Station
from server.models.types import fits_int32, utcnow
from server.plant_time import zone
from server.promise import board, imports, service
from server.promise import publish as promise_publish
from server.promise.calendar import hhmm, parse_hhmm
from server.promise.texts import describe
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("promise", __name__)
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _engine() -> Any:
    return current_app.extensions["taktline.engine"]


# -- receipts --------------------------------------------------------------------------


@bp.get("/receipts/")
@auth.require("supervisor")
def receipts_page() -> str:
    session = get_session()
    show = request.args.get("status", "open")
    rows = receipts.listing(session, status=None if show == "all" else show)
    locations = session.exec(select(Location).order_by(col(Location.code))).all()
    return render_template(
        "promise/receipts.html",
        rows=rows,
        show=show,
        locations=locations,
        today=utcnow().astimezone(zone()).date(),
        problems=[],
        form={},
    )


@bp.post("/receipts/")
@auth.require("supervisor")
def add_receipt() -> Any:
    try:
        wanted = receipts.from_mapping(request.form.to_dict())
        with write_session(_engine()) as session:
            row = receipts.create(session, receipt=wanted, by=auth.actor(), address=auth.address())
            ref = row.supplier_ref or str(row.id)
    except receipts.ReceiptError as exc:
        flash(" ".join(exc.problems))
        return redirect(url_for("promise.receipts_page"), code=303)
    promise_publish.sweep(get_session(), trigger=f"receipt {ref} added")
    flash(_("Receipt %(ref)s scheduled.", ref=ref))
    return redirect(url_for("promise.receipts_page"), code=303)


def _receipt_action(receipt_id: int, action: Any, done: str) -> Any:
    changes: list[service.Change] = []
    try:
        with write_session(_engine()) as session:
            row = session.get(ScheduledReceipt, receipt_id)
            if row is None:
                flash(_("No receipt %(id)s.", id=receipt_id))
                return redirect(url_for("promise.receipts_page"), code=303)
            changes = action(session, row) or []
    except (receipts.ReceiptError, ValueError) as exc:
        problems = getattr(exc, "problems", [str(exc)])
        flash(" ".join(problems))
        return redirect(url_for("promise.receipts_page"), code=303)
    promise_publish.publish(changes)
    promise_publish.sweep(get_session(), trigger=done)
    flash(done)
    if changes:
        flash(
            _(
                "Promises no longer met: %(orders)s",
                orders=", ".join(c.order for c in changes if c.flagged) or "—",
            )
        )
    return redirect(url_for("promise.receipts_page"), code=303)


@bp.post("/receipts/<int:receipt_id>/receive")
@auth.require("supervisor")
def receive(receipt_id: int) -> Any:
    form = request.form.to_dict()
    delivery_data = {**form, "serials": form.get("serials", "")}
    return _receipt_action(
        receipt_id,
        lambda s, r: (
            receipts.receive(
                s,
                receipt=r,
                delivery=receipts.delivery_from_mapping(delivery_data),
                by=auth.actor(),
                address=auth.address(),
            )
            and None
        ),
        _("Delivery received against receipt %(id)s.", id=receipt_id),
    )


@bp.post("/receipts/<int:receipt_id>/reschedule")
@auth.require("supervisor")
def reschedule(receipt_id: int) -> Any:
    try:
        day = date.fromisoformat(request.form.get("expected_on", "").strip())
    except ValueError:
        flash(_("The date is YYYY-MM-DD."))
        return redirect(url_for("promise.receipts_page"), code=303)
    if not receipts.plausible(day):
        flash(_("The date must be within ten years of today."))
        return redirect(url_for("promise.receipts_page"), code=303)

    def act(session: Session, row: ScheduledReceipt) -> list[service.Change]:
        if row.status != "open":
            raise ValueError(_("Receipt %(id)s is closed.", id=receipt_id))
        return service.reschedule_receipt(
            session,
            receipt=row,
            expected_on=day,
            note=request.form.get("note", "")[:500],
            by=auth.actor(),
            address=auth.address(),
            options=promise_publish.options(),
        )

    return _receipt_action(
        receipt_id, act, _("Receipt %(id)s now expected on %(day)s.", id=receipt_id, day=day)
    )


@bp.post("/receipts/<int:receipt_id>/close")
@auth.require("supervisor")
def close(receipt_id: int) -> Any:
    return _receipt_action(
        receipt_id,
        lambda s, r: receipts.close(
            s,
            receipt=r,
            by=auth.actor(),
            reason=request.form.get("reason", ""),
            address=auth.address(),
        ),
        _("Receipt %(id)s closed.", id=receipt_id),
    )


# -- calendars -------------------------------------------------------------------------


@bp.get("/calendar/")
@auth.require("supervisor")
def calendar_page() -> str:
    session = get_session()
    today = utcnow().astimezone(zone()).date()
    lines = session.exec(select(Line).order_by(col(Line.code))).all()
    shifts = session.exec(
        select(LineShift).order_by(col(LineShift.line_id), col(LineShift.start))
    ).all()
    closures = session.exec(
        select(LineClosure).where(LineClosure.day >= today).order_by(col(LineClosure.day))
    ).all()
    stations = session.exec(
        select(Station).order_by(col(Station.line_id), col(Station.position))
    ).all()
    down = {d.station_id: d for d in service_downtime(session)}
    return render_template(
        "promise/calendar.html",
        lines=lines,
        shifts=shifts,
        closures=closures,
        stations=stations,
        down=down,
        day_names=DAY_NAMES,
        today=today,
    )


def service_downtime(session: Session) -> list[Any]:
    from server.models import StationDowntime

    now = utcnow()
    return list(
        session.exec(
            select(StationDowntime).where(
                col(StationDowntime.end_at).is_(None) | (col(StationDowntime.end_at) > now)
            )
        ).all()
    )


def _calendar_change(action: Any, done: str, trigger: str) -> Any:
    try:
        with write_session(_engine()) as session:
            action(session)
    except ValueError as exc:
        flash(str(exc))
        return redirect(url_for("promise.calendar_page"), code=303)
    service.forget(get_session())
    changes = promise_publish.sweep(get_session(), trigger=trigger)
    flash(done)
    flagged = [c.order for c in changes if c.flagged]
    if flagged:
        flash(_("Promises no longer met: %(orders)s", orders=", ".join(flagged)))
    return redirect(url_for("promise.calendar_page"), code=303)


def _line(session: Session, line_id: str) -> Line:
    # ASCII digits of a 32-bit id ("²" is a digit to Python; 2**40 a database error).
    number = int(line_id) if line_id.isascii() and line_id.isdigit() and len(line_id) < 11 else 0
    line = session.get(Line, number) if number > 0 and fits_int32(number) else None
    if line is None:
        raise ValueError(_("No such line."))
    return line


@bp.post("/calendar/shifts")
@auth.require("supervisor")
def add_shift() -> Any:
    form = request.form

    def act(session: Session) -> None:
        line = _line(session, form.get("line_id", ""))
        days = form.getlist("days") or ["mon-fri"]
        row = LineShift(
            line_id=line.id or 0,
            name=form.get("name", "")[:64],
            weekdays=imports.weekdays([d if not d.isdigit() else int(d) for d in days]),
            start=hhmm(parse_hhmm(form.get("start", ""))),
            end=hhmm(parse_hhmm(form.get("end", "")) % (24 * 60)),
            breaks=imports.breaks(
                [b for b in form.get("breaks", "").replace(",", " ").split() if b]
            ),
        )
        problems = imports.to_shift(row).problems()
        if problems:
            raise ValueError("; ".join(problems))
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=auth.actor(),
            action="calendar.shift_add",
            entity="line",
            entity_id=line.code,
            address=auth.address(),
            detail={
                "name": row.name,
                "weekdays": row.weekdays,
                "start": row.start,
                "end": row.end,
                "breaks": row.breaks,
            },
        )

    return _calendar_change(act, _("Shift added."), "line calendar changed")


@bp.post("/calendar/shifts/<int:shift_id>/delete")
@auth.require("supervisor")
def delete_shift(shift_id: int) -> Any:
    def act(session: Session) -> None:
        row = session.get(LineShift, shift_id)
        if row is None:
            raise ValueError(_("No such shift."))
        line = session.get(Line, row.line_id)
        audit.record(
            session,
            actor=auth.actor(),
            action="calendar.shift_delete",
            entity="line",
            entity_id=line.code if line else "",
            address=auth.address(),
            detail={"name": row.name, "start": row.start, "end": row.end},
        )
        session.delete(row)

    return _calendar_change(act, _("Shift removed."), "line calendar changed")


@bp.post("/calendar/closures")
@auth.require("supervisor")
def add_closure() -> Any:
    form = request.form

    def act(session: Session) -> None:
        line = _line(session, form.get("line_id", ""))
        try:
            day = date.fromisoformat(form.get("day", "").strip())
        except ValueError:
            raise ValueError(_("The date is YYYY-MM-DD.")) from None
        row = session.exec(
            select(LineClosure).where(LineClosure.line_id == line.id, LineClosure.day == day)
        ).first() or LineClosure(line_id=line.id or 0, day=day)
        row.reason = form.get("reason", "")[:200]
        session.add(row)
        audit.record(
            session,
            actor=auth.actor(),
            action="calendar.closure_add",
            entity="line",
            entity_id=line.code,
            address=auth.address(),
            detail={"day": day.isoformat(), "reason": row.reason},
        )

    return _calendar_change(act, _("Day closed."), "line closed for a day")


@bp.post("/calendar/closures/<int:closure_id>/delete")
@auth.require("supervisor")
def delete_closure(closure_id: int) -> Any:
    def act(session: Session) -> None:
        row = session.get(LineClosure, closure_id)
        if row is None:
            raise ValueError(_("No such closed day."))
        audit.record(
            session,
            actor=auth.actor(),
            action="calendar.closure_delete",
            entity="line",
            entity_id=str(row.line_id),
            address=auth.address(),
            detail={"day": row.day.isoformat()},
        )
        session.delete(row)

    return _calendar_change(act, _("Day opened again."), "line calendar changed")


@bp.post("/calendar/stations/<code>/down")
@auth.require("supervisor")
def station_down(code: str) -> Any:
    from server.models import StationDowntime

    form = request.form

    def act(session: Session) -> None:
        station = session.exec(select(Station).where(Station.code == code)).first()
        if station is None:
            raise ValueError(_("No station %(code)s.", code=code))
        hours = form.get("hours", "").strip()
        end = None
        if hours:
            try:
                value = float(hours)
            except ValueError:
                raise ValueError(_("Hours must be a number.")) from None
            if not 0 < value <= 24 * 365:  # before timedelta: inf and 1e300 overflow it
                raise ValueError(_("Hours must be a number."))
            end = utcnow() + timedelta(hours=value)
        row = StationDowntime(
            station_id=station.id or 0,
            start_at=utcnow(),
            end_at=end,
            reason=form.get("reason", "")[:200],
            created_by=auth.actor(),
        )
        session.add(row)
        audit.record(
            session,
            actor=auth.actor(),
            action="station.down",
            entity="station",
            entity_id=code,
            address=auth.address(),
            detail={"until": end.isoformat() if end else None, "reason": row.reason},
        )

    return _calendar_change(act, _("%(code)s is down.", code=code), f"station {code} down")


@bp.post("/calendar/stations/<code>/up")
@auth.require("supervisor")
def station_up(code: str) -> Any:
    def act(session: Session) -> None:
        station = session.exec(select(Station).where(Station.code == code)).first()
        if station is None:
            raise ValueError(_("No station %(code)s.", code=code))
        now = utcnow()
        for row in service_downtime(session):
            if row.station_id == station.id:
                row.end_at = now
                session.add(row)
        audit.record(
            session,
            actor=auth.actor(),
            action="station.up",
            entity="station",
            entity_id=code,
            address=auth.address(),
        )

    return _calendar_change(act, _("%(code)s is back up.", code=code), f"station {code} back up")


# -- the line board's promise part ------------------------------------------------------


@bp.get("/promise/board")
@auth.require("supervisor")
def board_part() -> str:
    session = get_session()
    promise_publish.sweep(session)
    return render_template(
        "board/_promise.html",
        pb=board.figures(session, now=utcnow(), zone=zone()),
        describe=describe,
    )


def _now_local() -> datetime:
    return utcnow().astimezone(zone())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
