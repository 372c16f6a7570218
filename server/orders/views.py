"""Planner pages: order list with what can be released, the live order form, the order
page (lead-time stamps, ATP, release / override / cancel / ship), CSV import, travelers."""

from __future__ import annotations

import logging
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
    OrderLine,
    OrderStatus,
    Product,
    Unit,
    WorkOrder,
    join_work_order_to_order,
)
from server.models.types import fits_int32
from server.orders import csv_import, service, travelers
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
    return render_template("orders/index.html", orders=orders, short=short)


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


@bp.get("/new")
@auth.require("supervisor")
def new() -> str:
    session = get_session()
    return render_template(
        "orders/new.html", form=request.args, problems=[], **_configurator(session, request.args)
    )


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
        "number": form.get("number", ""),
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
    try:
        order_input = service.from_mapping(data)
        with write_session(_engine()) as session:
            order = service.create_order(
                session, order=order_input, by=auth.actor(), address=auth.address()
            )
            number = order.number
    except service.InvalidOrder as exc:
        log.info("order form refused: %s", exc)
        return render_template(
            "orders/new.html",
            form=form,
            problems=exc.problems,
            **_configurator(get_session(), form),
        ), 422
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
    return render_template(
        "orders/show.html",
        order=order,
        lines=lines,
        atp=atp,
        releasable=not any(a.short for a in atp),
        units=units,
        work_orders=work_orders,
        stamps=STAMPS,
    )


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
    return _act(
        number,
        lambda s, o: dispatch.reprioritise(
            s, order=o, priority=value, by=auth.actor(), address=auth.address()
        ),
        _("Priority of %(number)s set to %(p)s.", number=number, p=value),
    )


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
