"""Unit travelers: the paper that goes with a unit down the line.

The serial is a Code 128 barcode drawn by python-barcode: an SVG for the print page,
and the same bar pattern drawn as rectangles in the PDF (fpdf2), so both scan alike.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date

import barcode
from barcode.writer import SVGWriter
from fpdf import FPDF
from sqlmodel import Session, col, select

from server.dispatch import order_of
from server.models import Operation, Product, Unit, UnitOperation


@dataclass(frozen=True)
class TravelerStep:
    sequence: int
    code: str
    name: str
    station_kind: str
    skill: str | None
    instructions: str
    picks: list[dict[str, object]]


@dataclass(frozen=True)
class Traveler:
    serial: str
    product: str
    product_name: str
    options: list[str]
    order: str
    customer: str
    due_date: date
    steps: list[TravelerStep]


def load(session: Session, *, unit: Unit) -> Traveler:
    product = session.get(Product, unit.product_id)
    order = order_of(session, unit=unit)
    rows = session.exec(
        select(UnitOperation, Operation)
        .join(Operation, col(UnitOperation.operation_id) == Operation.id)
        .where(UnitOperation.unit_id == unit.id)
        .order_by(col(UnitOperation.sequence))
    ).all()
    return Traveler(
        serial=unit.serial,
        product=product.code if product else "",
        product_name=product.name if product else "",
        options=list(unit.options),
        order=order.number,
        customer=order.customer,
        due_date=order.due_date,
        steps=[
            TravelerStep(
                uop.sequence,
                op.code,
                op.name,
                uop.station_kind,
                op.required_skill,
                op.instructions,
                list(uop.picks),
            )
            for uop, op in rows
        ],
    )


def barcode_svg_data_uri(text: str) -> str:
    """A Code 128 SVG of ``text`` as a data: URI (allowed by the page's CSP)."""
    svg = barcode.get("code128", text, writer=SVGWriter()).render(
        writer_options={
            "module_height": 14.0,
            "module_width": 0.3,
            "font_size": 8,
            "text_distance": 4.0,
            "quiet_zone": 4.0,
        }
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def code128_modules(text: str) -> str:
    """The bar pattern of ``text``: '1' a dark module, '0' a light one."""
    modules: str = barcode.get("code128", text).build()[0]
    return modules


def pdf(traveler: Traveler) -> bytes:
    doc = FPDF(format="A4")
    doc.set_auto_page_break(auto=True, margin=15)
    doc.add_page()
    doc.set_font("Helvetica", "B", 18)
    doc.cell(0, 10, f"Traveler {traveler.serial}", new_x="LMARGIN", new_y="NEXT")
    x0, y0, module = doc.l_margin + 4, doc.get_y() + 2, 0.35
    for i, bit in enumerate(code128_modules(traveler.serial)):
        if bit == "1":
            doc.rect(x0 + i * module, y0, module, 16, style="F")
    doc.set_y(y0 + 17)
    doc.set_font("Courier", "", 11)
    doc.cell(0, 6, traveler.serial, new_x="LMARGIN", new_y="NEXT")
    doc.set_font("Helvetica", "", 11)
    for label, value in (
        ("Product", f"{traveler.product} - {traveler.product_name}"),
        ("Options", ", ".join(traveler.options)),
        ("Order", f"{traveler.order} ({traveler.customer})"),
        ("Due", traveler.due_date.isoformat()),
    ):
        doc.cell(0, 6, _latin1(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    for step in traveler.steps:
        doc.ln(3)
        doc.set_font("Helvetica", "B", 12)
        skill = f"  [skill: {step.skill}]" if step.skill else ""
        doc.cell(
            0,
            7,
            _latin1(f"{step.sequence}  {step.name} ({step.station_kind}){skill}"),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        doc.set_font("Helvetica", "", 10)
        if step.instructions:
            doc.multi_cell(0, 5, _latin1(step.instructions), new_x="LMARGIN", new_y="NEXT")
        for pick in step.picks:
            sku = pick.get("reserved_sku") or pick["sku"]
            doc.cell(0, 5, _latin1(f"   [ ]  {pick['qty']} x {sku}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def _latin1(text: str) -> str:
    # The core PDF fonts are Latin-1; replace what they cannot show instead of failing.
    return text.encode("latin-1", "replace").decode("latin-1")
