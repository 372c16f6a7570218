"""Order intake: one validation and one writer for the web form, the JSON API and CSV.

An order is checked whole (header, every line, every option) before anything is
written; ``InvalidOrder.problems`` lists every reason, each naming its line and field.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session, select

from server import audit
from server.catalog.configure import ProductSpec, normalise, validate
from server.catalog.products import load_product
from server.models import CustomerOrder, OrderLine, Product
from server.models.types import INT32_MAX, INT32_MIN, fits_int32

log = logging.getLogger(__name__)
MAX_QUANTITY = 1000


class InvalidOrder(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("Order refused: " + " ".join(problems))
        self.problems = problems


@dataclass
class LineInput:
    product: str
    quantity: int
    options: list[str] = field(default_factory=list)


@dataclass
class OrderInput:
    number: str
    customer: str
    due_date: date
    priority: int = 0
    lines: list[LineInput] = field(default_factory=list)


def _options(value: Any) -> list[str]:
    if isinstance(value, str):
        return normalise(value.replace(";", " ").replace(",", " ").split())
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return normalise(list(value))
    raise TypeError


def from_mapping(data: Any) -> OrderInput:
    """Read an order from a JSON-like mapping (API body, CSV rows grouped); raises
    ``InvalidOrder`` naming every missing or mistyped field."""
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise InvalidOrder(["The order must be a JSON object."])

    def text(key: str, max_len: int) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{key}: is required (text).")
            return ""
        if len(value.strip()) > max_len:
            problems.append(f"{key}: at most {max_len} characters.")
        return value.strip()

    number, customer = text("number", 32), text("customer", 200)
    due = date.min
    raw_due = data.get("due_date")
    try:
        due = raw_due if isinstance(raw_due, date) else date.fromisoformat(str(raw_due))
    except ValueError:
        problems.append(f"due_date: {raw_due!r} is not a date (YYYY-MM-DD).")
    priority = 0
    raw_priority = data.get("priority", 0)
    if isinstance(raw_priority, bool) or not isinstance(raw_priority, int | str):
        problems.append("priority: must be a whole number.")
    else:
        try:
            priority = int(raw_priority or 0)
        except ValueError:
            problems.append(f"priority: {str(raw_priority)[:40]!r} is not a whole number.")
        else:
            if not fits_int32(priority):
                problems.append(f"priority: must be between {INT32_MIN} and {INT32_MAX}.")
                priority = 0
    lines: list[LineInput] = []
    raw_lines = data.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        problems.append("lines: at least one line is required.")
        raw_lines = []
    for n, raw in enumerate(raw_lines, start=1):
        if not isinstance(raw, Mapping):
            problems.append(f"line {n}: must be an object with product, quantity, options.")
            continue
        product = raw.get("product")
        if not isinstance(product, str) or not product.strip():
            problems.append(f"line {n}: product is required.")
            product = ""
        qty = raw.get("quantity", raw.get("qty"))
        try:
            if isinstance(qty, bool) or qty is None:
                raise ValueError
            quantity = int(qty)
        except (TypeError, ValueError):
            problems.append(f"line {n}: quantity {qty!r} is not a whole number.")
            quantity = 0
        try:
            options = _options(raw.get("options", []))
        except TypeError:
            problems.append(f"line {n}: options must be a list of option codes.")
            options = []
        lines.append(LineInput(product.strip(), quantity, options))
    if problems:
        raise InvalidOrder(problems)
    return OrderInput(number, customer, due, priority, lines)


def check(session: Session, *, order: OrderInput) -> list[tuple[Product, ProductSpec]]:
    """Check ``order`` against the database and the catalog; returns each line's
    product, raises ``InvalidOrder`` with every problem."""
    problems: list[str] = []
    if (
        session.exec(select(CustomerOrder.id).where(CustomerOrder.number == order.number)).first()
        is not None
    ):
        problems.append(f"number: order {order.number} already exists.")
    specs: dict[str, tuple[Product, ProductSpec]] = {}
    resolved: list[tuple[Product, ProductSpec]] = []
    for n, line in enumerate(order.lines, start=1):
        if not 0 < line.quantity <= MAX_QUANTITY:
            problems.append(f"line {n}: quantity must be between 1 and {MAX_QUANTITY}.")
        if line.product not in specs:
            product = session.exec(select(Product).where(Product.code == line.product)).first()
            if product is None:
                problems.append(f"line {n}: unknown product {line.product!r}.")
                continue
            specs[line.product] = (product, load_product(session, product))
        product, spec = specs[line.product]
        problems += [f"line {n} ({spec.code}): {p.message}" for p in validate(spec, line.options)]
        resolved.append((product, spec))
    if problems:
        raise InvalidOrder(problems)
    return resolved


def create_order(
    session: Session, *, order: OrderInput, by: str, address: str = "", channel: str = "web"
) -> CustomerOrder:
    """Validate and write a received order with its lines (the caller commits)."""
    products = check(session, order=order)
    row = CustomerOrder(
        number=order.number,
        customer=order.customer,
        due_date=order.due_date,
        priority=order.priority,
        created_by=by,
    )
    session.add(row)
    session.flush()
    for n, (line, (product, _spec)) in enumerate(zip(order.lines, products, strict=True), start=1):
        session.add(
            OrderLine(
                order_id=row.id or 0,
                line_no=n,
                product_id=product.id or 0,
                quantity=line.quantity,
                options=normalise(line.options),
            )
        )
    audit.record(
        session,
        actor=by,
        action="order.create",
        entity="order",
        entity_id=row.number,
        address=address,
        detail={
            "channel": channel,
            "customer": row.customer,
            "due_date": row.due_date.isoformat(),
            "priority": row.priority,
            "lines": [
                {"product": li.product, "quantity": li.quantity, "options": li.options}
                for li in order.lines
            ],
        },
    )
    session.flush()
    log.info("order %s received via %s by %s", row.number, channel, by)
    return row
