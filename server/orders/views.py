"""Planner pages: order list with what can be released and each order's promise, the
live order form (configuration and promise date as options change, the number from a
pattern), the order page (lead-time stamps, ATP, promise, release after a confirmation
that shows what it reserves / override / cancel / ship), CSV import, travelers.

Promises come from ``server.promise`` (docs/promise.md); changes that can move them
(an order taken, a priority changed) re-promise and publish the flags after the commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

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

from server import dispatch
from server.catalog.configure import ConfigurationError, evaluate
from server.catalog.products import load_product
from server.db import get_session, write_session
from server.models import (
    CustomerOrder,
    Location,
    OrderLine,
    OrderStatus,
    Part,
    Product,
    StockLot,
    Unit,
    WorkOrder,
    join_work_order_to_order,
)
from server.models.types import fits_int32, utcnow
from server.orders import atp as atp_mod
from server.orders import csv_import, numbering, service, travelers
from server.orders.reservations import lock_lots, snapshot, substitutes_for
from server.plant_time import zone as plant_zone
from server.promise import publish as promise_publish
from server.promise import service as promises
from server.promise.texts import describe
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("orders", __name__, url_prefix="/orders")
units_bp = Blueprint("units", __name__, url_prefix="/units")
STAMPS = [
    ("received_at", "Received"),
    ("released_at", "Released"),
    ("first_started_at", "First step started"),
    ("completed_at", "Completed"),
    ("shipped_at", "Shipped"),
]


def _engine() -> Any:
    return current_app.extensions["taktline.engine"]


def _order_or_404(session: Session, number: str) -> CustomerOrder:
    order = session.exec(select(CustomerOrder).where(CustomerOrder.number == number)).first()
    if order is None:
        abort(404)
    return order


@bp.get("/")
@auth.require("supervisor")
def index() -> str:
    session = get_session()
    orders = session.exec(
        select(CustomerOrder).order_by(
            col(CustomerOrder.status) != OrderStatus.RECEIVED,
            col(CustomerOrder.due_date),
            col(CustomerOrder.id),
        )
    ).all()
    promise_publish.sweep(session)  # flags follow what moved since the last look
    plan = promises.plan_for(session, options=promise_publish.options()).plan
    rows = promises.rows_by_order(session, [o.id or 0 for o in orders])
    short: dict[str, list[str]] = {}
    for order in orders:
        if order.status == OrderStatus.RECEIVED:
            try:
                short[order.number] = [
                    f"{a.sku} −{a.short}"
                    for a in service.order_atp(session, order=order)
                    if a.short
                ]
            except ConfigurationError as exc:
                short[order.number] = [str(exc)]
    return render_template(
        "orders/index.html",
        orders=orders,
        short=short,
        plan=plan.promises,
        promised=rows,
        describe=describe,
    )


def _products(session: Session) -> list[Product]:
    return list(session.exec(select(Product).order_by(col(Product.code))).all())


def _chosen(form: Any) -> list[str]:
    """Chosen option codes: radios are named ``options.<group>`` (one radio group per
    option group), checkboxes too; plain ``options`` is accepted as well."""
    return [
        v
        for key in form
        for v in form.getlist(key)
        if key == "options" or key.startswith("options.")
    ]


def _configurator(session: Session, form: Any) -> dict[str, Any]:
    products = _products(session)
    code = form.get("product") or (products[0].code if products else "")
    product = next((p for p in products if p.code == code), None)
    if product is None:
        return {"products": products, "product": None, "spec": None, "evaluation": None}
    spec = load_product(session, product)
    return {
        "products": products,
        "product": product,
        "spec": spec,
        "evaluation": evaluate(spec, _chosen(form)),
    }


def _form_page(session: Session, form: Any, problems: list[str]) -> str:
    return render_template(
        "orders/new.html",
        form=form,
        problems=problems,
        next_number=numbering.next_number(
            session, pattern=current_app.config["ORDER_NUMBER_PATTERN"]
        ),
        book_default=current_app.config["PROMISE_BOOK_ON_ACCEPT"],
        **_configurator(session, form),
    )


@bp.get("/new")
@auth.require("supervisor")
def new() -> str:
    return _form_page(get_session(), request.args, [])


@bp.post("/new/promise")
@auth.require("supervisor")
def promise_preview() -> str:
    """htmx: the promise date of the order being entered, and why, after each change."""
    form = request.form
    promise, problem = None, ""
    try:
        quantity = int(form.get("quantity") or 1)
        if not 0 < quantity <= 1000:
            raise ValueError
    except ValueError:
        problem = _("Quantity must be between 1 and 1000.")
        quantity = 0
    try:
        priority = int(form.get("priority") or 0)
        if not fits_int32(priority):
            raise ValueError
    except ValueError:
        priority = 0
    due = _iso_date(form.get("due_date", ""))
    if not problem:
        try:
            promise = promises.what_if(
                get_session(),
                lines=[
                    promises.LineWanted(
                        form.get("product", ""), quantity, tuple(sorted(_chosen(form)))
                    )
                ],
                priority=priority,
                due=due,
                options=promise_publish.options(),
            )
        except ConfigurationError:
            problem = _("Choose the options to see the promise date.")
        except LookupError:
            problem = _("Choose a product to see the promise date.")
    return render_template(
        "orders/_promise.html", promise=promise, problem=problem, due=due, describe=describe
    )


def _iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


@bp.post("/new/configure")
@auth.require("supervisor")
def configure() -> str:
    """htmx: the option picker and resolved BOM after each change."""
    return render_template(
        "orders/_configurator.html", **_configurator(get_session(), request.form)
    )


@bp.post("/new")
@auth.require("supervisor")
def create() -> Any:
    form = request.form
    data = {
        "number": form.get("number", "").strip(),
        "customer": form.get("customer", ""),
        "due_date": form.get("due_date", ""),
        "priority": form.get("priority") or 0,
        "lines": [
            {
                "product": form.get("product", ""),
                "quantity": form.get("quantity"),
                "options": _chosen(form),
            }
        ],
    }
    book = bool(form.get("book"))
    booked: date | None = None
    try:
        with write_session(_engine()) as session:
            if not data["number"]:
                data["number"] = numbering.next_number(
                    session, pattern=current_app.config["ORDER_NUMBER_PATTERN"]
                )
            order_input = service.from_mapping(data)
            order = service.create_order(
                session, order=order_input, by=auth.actor(), address=auth.address()
            )
            number = order.number
            if book:
                promise = promises.promise_of(
                    session, order=order, options=promise_publish.options()
                )
                if promise is not None and promise.ship_on is not None:
                    promises.book(
                        session,
                        order=order,
                        promise=promise,
                        by=auth.actor(),
                        address=auth.address(),
                    )
                    booked = promise.ship_on
    except service.InvalidOrder as exc:
        log.info("order form refused: %s", exc)
        return _form_page(get_session(), form, exc.problems), 422
    # A rush order can jump the queue: whose promise no longer holds?
    promise_publish.sweep(get_session(), trigger=f"order {number} taken")
    if booked:
        flash(_("Order %(number)s received, promised for %(day)s.", number=number, day=booked))
    else:
        flash(_("Order %(number)s received.", number=number))
    return redirect(url_for("orders.show", number=number), code=303)


@bp.get("/<number>")
@auth.require("supervisor")
def show(number: str) -> str:
    session = get_session()
    order = _order_or_404(session, number)
    lines = session.exec(
        select(OrderLine, Product)
        .join(Product, col(OrderLine.product_id) == Product.id)
        .where(OrderLine.order_id == order.id)
        .order_by(col(OrderLine.line_no))
    ).all()
    atp = service.order_atp(session, order=order) if order.status == OrderStatus.RECEIVED else []
    units = service.order_units(session, order=order)
    work_orders = session.exec(
        join_work_order_to_order(select(WorkOrder), upto=OrderLine).where(
            OrderLine.order_id == order.id
        )
    ).all()
    promise_publish.sweep(session)
    return render_template(
        "orders/show.html",
        order=order,
        lines=lines,
        atp=atp,
        releasable=not any(a.short for a in atp),
        units=units,
        work_orders=work_orders,
        stamps=STAMPS,
        promise=promises.promise_of(session, order=order, options=promise_publish.options()),
        promised=promises.rows_by_order(session, [order.id or 0]).get(order.id or 0),
        describe=describe,
    )


@dataclass(frozen=True)
class Reserve:
    """One line of what a release reserves: ``qty`` of ``sku`` (for BOM part
    ``for_sku`` when a substitute) from one lot or serial at one location."""

    sku: str
    for_sku: str
    lot: str
    location: str
    qty: int


def release_preview(session: Session, order: CustomerOrder) -> tuple[list[Reserve], dict[str, int]]:
    """What releasing ``order`` now would reserve, lot by lot (the release's own plan,
    read without locks), and what would be left short."""
    configs = service.configurations(session, order=order)
    units: list[list[atp_mod.Need]] = []
    for cfg in configs:
        per_part: dict[int, int] = {}
        for pick in cfg.configuration.bom:
            per_part[pick.part_id] = per_part.get(pick.part_id, 0) + pick.qty
        units += [[atp_mod.Need(p, q) for p, q in per_part.items()]] * cfg.line.quantity
    part_ids = {n.part_id for unit in units for n in unit}
    subs = substitutes_for(session, part_ids)
    locked = lock_lots(session, part_ids | {s for v in subs.values() for s in v}, lock=False)
    plan = atp_mod.plan(units, snapshot(session, locked), subs)
    lots = {lot.id: lot for part_lots in locked.values() for lot in part_lots}
    skus = dict(session.exec(select(Part.id, Part.sku)).all())  # type: ignore[call-overload]
    places = dict(session.exec(select(Location.id, Location.code)).all())  # type: ignore[call-overload]
    totals: dict[tuple[str, str, str, str], int] = {}
    for unit in plan.units:
        for a in unit:
            for take in a.takes:
                lot: StockLot = lots[take.lot_id]
                key = (
                    skus.get(a.reserved_part_id, "?"),
                    skus.get(a.part_id, "?") if a.reserved_part_id != a.part_id else "",
                    lot.serial or lot.lot_code,
                    places.get(lot.location_id, ""),
                )
                totals[key] = totals.get(key, 0) + take.qty
    short = {skus.get(p, str(p)): n for p, n in plan.shortages.items()}
    return [Reserve(*k, q) for k, q in sorted(totals.items())], short


@bp.get("/<number>/release")
@auth.require("supervisor")
def confirm_release(number: str) -> str:
    """The release's confirmation: every lot it will reserve, before anything moves."""
    session = get_session()
    order = _order_or_404(session, number)
    reserves, short = (
        release_preview(session, order) if order.status == OrderStatus.RECEIVED else ([], {})
    )
    return render_template(
        "orders/release.html",
        order=order,
        reserves=reserves,
        short=short,
        promise=promises.promise_of(session, order=order, options=promise_publish.options()),
        describe=describe,
    )


@bp.post("/<number>/promise")
@auth.require("supervisor")
def book_promise(number: str) -> Any:
    """Book the plan's date (or the date given) as the one promised to the customer."""
    day = _iso_date(request.form.get("day", ""))
    if request.form.get("day") and day is None:
        flash(_("The date is YYYY-MM-DD."))
        return redirect(url_for("orders.show", number=number), code=303)
    if day is not None and not promises.bookable(day, utcnow().astimezone(plant_zone()).date()):
        flash(_("A promise date is from today to ten years ahead."))
        return redirect(url_for("orders.show", number=number), code=303)
    try:
        with write_session(_engine()) as session:
            order = _order_or_404(session, number)
            promise = promises.promise_of(session, order=order, options=promise_publish.options())
            row = promises.book(
                session,
                order=order,
                promise=promise,
                day=day,
                by=auth.actor(),
                address=auth.address(),
            )
            booked = row.promised_on
    except ValueError as exc:
        flash(str(exc))
        return redirect(url_for("orders.show", number=number), code=303)
    flash(_("Order %(number)s promised for %(day)s.", number=number, day=booked))
    return redirect(url_for("orders.show", number=number), code=303)


def _act(number: str, action: Any, done: str) -> Any:
    try:
        with write_session(_engine()) as session:
            action(session, _order_or_404(session, number))
        flash(done)
    except (
        service.Shortage,
        service.OrderStateError,
        ConfigurationError,
        dispatch.DispatchError,
    ) as exc:
        log.info("order %s: %s refused: %s", number, request.path, exc)
        flash(str(exc))
    return redirect(url_for("orders.show", number=number), code=303)


@bp.post("/<number>/release")
@auth.require("supervisor")
def release(number: str) -> Any:
    override = request.form.get("override_reason", "").strip() or None
    if request.form.get("override") and not override:
        flash(_("An override needs a reason."))
        return redirect(url_for("orders.show", number=number), code=303)
    return _act(
        number,
        lambda s, o: service.release(
            s, order=o, by=auth.actor(), override_reason=override, address=auth.address()
        ),
        _("Order %(number)s released.", number=number),
    )


@bp.post("/<number>/cancel")
@auth.require("supervisor")
def cancel(number: str) -> Any:
    reason = request.form.get("reason", "")
    return _act(
        number,
        lambda s, o: service.cancel(
            s, order=o, by=auth.actor(), reason=reason, address=auth.address()
        ),
        _("Order %(number)s cancelled.", number=number),
    )


@bp.post("/<number>/ship")
@auth.require("supervisor")
def ship(number: str) -> Any:
    return _act(
        number,
        lambda s, o: service.ship(s, order=o, by=auth.actor(), address=auth.address()),
        _("Order %(number)s shipped.", number=number),
    )


@bp.post("/<number>/priority")
@auth.require("supervisor")
def priority(number: str) -> Any:
    try:
        value = int(request.form.get("priority", ""))
        if not fits_int32(value):
            raise ValueError("out of range")
    except ValueError:
        flash(_("Priority must be a whole number."))
        return redirect(url_for("orders.show", number=number), code=303)
    response = _act(
        number,
        lambda s, o: dispatch.reprioritise(
            s, order=o, priority=value, by=auth.actor(), address=auth.address()
        ),
        _("Priority of %(number)s set to %(p)s.", number=number, p=value),
    )
    # A rush jumps the queue: whose promise no longer holds?
    promise_publish.sweep(get_session(), trigger=f"priority of {number} set to {value}")
    return response


@bp.route("/import", methods=["GET", "POST"])
@auth.require("supervisor")
def import_csv() -> Any:
    if request.method == "GET":
        return render_template("orders/import.html", problems=[])
    upload = request.files.get("file")
    text = upload.read().decode("utf-8-sig", errors="replace") if upload else ""
    try:
        with write_session(_engine()) as session:
            numbers = csv_import.import_orders(
                session,
                text=text,
                by=auth.actor(),
                address=auth.address(),
                source=(upload.filename or "") if upload else "",
            )
    except csv_import.CsvOrderError as exc:
        log.info("order CSV refused: %s", exc)
        return render_template("orders/import.html", problems=exc.problems), 422
    flash(_("%(n)s order(s) imported: %(numbers)s", n=len(numbers), numbers=", ".join(numbers)))
    return redirect(url_for("orders.index"), code=303)


def _unit_or_404(session: Session, serial: str) -> Unit:
    unit = session.exec(select(Unit).where(Unit.serial == serial)).first()
    if unit is None:
        abort(404)
    return unit


@units_bp.get("/<serial>/traveler")
@auth.require("operator")
def traveler(serial: str) -> str:
    session = get_session()
    doc = travelers.load(session, unit=_unit_or_404(session, serial))
    return render_template(
        "orders/traveler.html", t=doc, barcode=travelers.barcode_svg_data_uri(doc.serial)
    )


@units_bp.get("/<serial>/traveler.pdf")
@auth.require("operator")
def traveler_pdf(serial: str) -> Response:
    session = get_session()
    doc = travelers.load(session, unit=_unit_or_404(session, serial))
    return Response(
        travelers.pdf(doc),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'inline; filename="traveler-{doc.serial}.pdf"'},
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(units_bp)
