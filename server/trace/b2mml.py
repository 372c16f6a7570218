"""ISA-95 B2MML export of a completed customer order (B2MML V0600, MESA International).

Two documents, each a single root element of the official schemas:

- ``performance``: a ``ProductionPerformance`` (B2MML-V0600-ProductionPerformance.xsd):
  one ``ProductionResponse`` per unit of the order (its work order as the request), one
  ``SegmentResponse`` per step record (operation, actual start and end, operator as
  ``PersonnelActual``, station as ``EquipmentActual``, each component picked in the
  step as a consumed ``MaterialActual``; the unit's serial as the produced
  ``MaterialActual`` of its last step);
- ``material``: a ``MaterialInformation`` (B2MML-V0600-Material.xsd): one
  ``MaterialLot`` per lot or serial consumed by the order, with its part and quantity.

Everything is read through ``server.trace.genealogy`` (one genealogy per unit). Only a
completed (or shipped) order is exported: anything else raises ``NotCompleted``, a 409
on the API (docs/traceability.md, "B2MML export").

The command ``taktline export b2mml --order SO-1001 [--document material] [--out FILE]``
is defined here and added by name in ``server/cli.py``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session, col, select

from server.models import CustomerOrder, Part
from server.models.types import OrderStatus, rfc3339
from server.orders.service import order_units
from server.trace.genealogy import Genealogy, PickedComponent, Step, genealogy

NS = "http://www.mesa.org/xml/B2MML-V0600"
VERSION = "V0600"
DOCUMENTS = ("performance", "material")
EXPORTABLE = (OrderStatus.COMPLETED, OrderStatus.SHIPPED)
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class NotCompleted(Exception):
    """The order exists but is not completed: there is no final performance to report."""


@dataclass
class OrderRecord:
    """What the two documents are written from: the order and its units' genealogies."""

    number: str
    customer: str
    status: str
    completed_at: datetime | None
    units: list[Genealogy] = field(default_factory=list)
    uom: dict[str, str] = field(default_factory=dict)  # sku -> unit of measure


def order_record(db: Session, *, number: str) -> OrderRecord:
    """The order ``number`` with every unit's genealogy. ``LookupError``: no such order;
    ``NotCompleted``: the order is not completed (nor shipped)."""
    order = db.exec(select(CustomerOrder).where(CustomerOrder.number == number)).first()
    if order is None:
        raise LookupError(f"no order {number}")
    if order.status not in EXPORTABLE:
        raise NotCompleted(
            f"order {number} is {order.status}: the B2MML export reports the production "
            "performance of a completed order only"
        )
    record = OrderRecord(
        number=order.number,
        customer=order.customer,
        status=order.status,
        completed_at=order.completed_at,
    )
    for unit in order_units(db, order=order):
        g = genealogy(db, serial=unit.serial, max_depth=0)
        if g is not None:
            record.units.append(g)
    skus = {p.sku for g in record.units for p in g.picks}
    if skus:
        record.uom = dict(
            db.exec(select(Part.sku, Part.uom).where(col(Part.sku).in_(sorted(skus)))).all()
        )
    return record


def export_order(
    db: Session, *, number: str, document: str = "performance", published_at: datetime | None = None
) -> bytes:
    """The B2MML document ``document`` (``performance`` or ``material``) of order
    ``number`` as UTF-8 XML. Raises ``ValueError`` for an unknown document, and as
    ``order_record``."""
    if document not in DOCUMENTS:
        raise ValueError(f"unknown document {document!r}; expected one of {', '.join(DOCUMENTS)}")
    record = order_record(db, number=number)
    published = published_at or datetime.now(UTC)
    if document == "material":
        return material_information(record, published_at=published)
    return production_performance(record, published_at=published)


# --- the documents -------------------------------------------------------------------


def production_performance(record: OrderRecord, *, published_at: datetime) -> bytes:
    root = _el("ProductionPerformance")
    _text(root, "ID", record.number)
    _text(root, "Description", f"Production performance of order {record.number}")
    _text(root, "Description", f"Customer: {record.customer}")
    _time(root, "PublishedDate", published_at)
    starts = [s.started_at for g in record.units for s in g.steps]
    _time(root, "StartTime", min(starts) if starts else None)
    _time(root, "EndTime", record.completed_at)
    for g in record.units:
        root.append(_production_response(g, record.uom))
    _text(root, "PerformanceState", "Completed")
    return _serialize(root)


def _production_response(g: Genealogy, uom: dict[str, str]) -> ET.Element:
    response = _el("ProductionResponse")
    _text(response, "ID", g.serial)
    _text(response, "ProductionRequestID", g.work_order)
    _text(response, "ProductProductionRuleID", g.product)
    _time(response, "StartTime", min((s.started_at for s in g.steps), default=None))
    _time(response, "EndTime", g.completed_at)
    segments = _segments(g)
    timed = [i for i, (step, _op, _picks) in enumerate(segments) if step is not None]
    last = max(timed, key=lambda i: _step_end(segments[i][0]), default=len(segments) - 1)
    for n, (step, operation, picks) in enumerate(segments):
        segment = _el("SegmentResponse")
        _text(segment, "ID", f"{g.serial}-{n + 1}")
        _text(segment, "ProcessSegmentID", operation)
        if step is not None:
            _text(segment, "Description", step.name)
            _time(segment, "ActualStartTime", step.started_at)
            _time(segment, "ActualEndTime", step.ended_at)
            if step.badge or step.operator:
                person = _sub(segment, "PersonnelActual")
                _text(person, "PersonID", step.badge or step.operator)
                _text(person, "Description", step.operator)
            equipment = _sub(segment, "EquipmentActual")
            _text(equipment, "EquipmentID", step.station)
        for pick in picks:
            segment.append(_consumed(pick, uom))
        if n == last:
            segment.append(_material_actual(g.product, g.serial, None, "Produced", 1, "ea"))
        done = step is None or step.ended_at is not None
        _text(segment, "SegmentState", "Completed" if done else "Running")
        response.append(segment)
    _text(response, "ResponseState", "Completed" if g.status == "completed" else "Other")
    return response


def _step_end(step: Step | None) -> datetime:
    assert step is not None
    return step.ended_at or step.started_at


def _segments(g: Genealogy) -> list[tuple[Step | None, str, list[PickedComponent]]]:
    """One segment per step record, each with the picks made during it: a pick goes to
    the latest step of its operation started before it (the first one otherwise); a
    pick of an operation without a step record gets a segment of its own, without times."""
    segments: list[tuple[Step | None, str, list[PickedComponent]]] = [
        (s, s.operation, []) for s in g.steps
    ]
    loose: dict[str, list[PickedComponent]] = {}
    for pick in g.picks:
        same = [seg for seg in segments if seg[1] == pick.operation]
        if not same:
            loose.setdefault(pick.operation, []).append(pick)
            continue
        started = [seg for seg in same if seg[0] and pick.at and seg[0].started_at <= pick.at]
        (started[-1] if started else same[0])[2].append(pick)
    segments += [(None, operation, picks) for operation, picks in loose.items()]
    return segments


def _consumed(pick: PickedComponent, uom: dict[str, str]) -> ET.Element:
    element = _material_actual(
        pick.sku,
        pick.lot_code or pick.serial,
        pick.description,
        "Consumed",
        pick.quantity,
        uom.get(pick.sku, "ea"),
    )
    if pick.substituted:
        prop = _sub(element, "MaterialActualProperty")
        _text(prop, "ID", "substitute-for")
        _sub(_sub(prop, "Value"), "ValueString").text = _xml_chars(pick.for_sku)
    return element


def _material_actual(
    sku: str, lot: str | None, description: str | None, use: str, quantity: int, uom: str
) -> ET.Element:
    element = _el("MaterialActual")
    _text(element, "MaterialDefinitionID", sku)
    _text(element, "MaterialLotID", lot)
    _text(element, "Description", description)
    _text(element, "MaterialUse", use)
    _quantity(element, quantity, uom)
    return element


@dataclass
class _Lot:
    sku: str
    description: str
    tracking: str
    quantity: int = 0
    units: list[str] = field(default_factory=list)


def consumed_lots(record: OrderRecord) -> dict[tuple[str, str], _Lot]:
    """(sku, lot code or serial) -> the lot and how much of it the order consumed."""
    lots: dict[tuple[str, str], _Lot] = {}
    for g in record.units:
        for pick in g.picks:
            lot_id = pick.lot_code or pick.serial
            if not lot_id:
                continue  # an untracked part: no lot to report
            lot = lots.setdefault(
                (pick.sku, lot_id), _Lot(pick.sku, pick.description, pick.tracking)
            )
            lot.quantity += pick.quantity
            if g.serial not in lot.units:
                lot.units.append(g.serial)
    return lots


def material_information(record: OrderRecord, *, published_at: datetime) -> bytes:
    root = _el("MaterialInformation")
    _text(root, "ID", f"{record.number}-lots")
    _text(root, "Description", f"Material lots consumed by order {record.number}")
    _time(root, "PublishedDate", published_at)
    for (sku, lot_id), lot in sorted(consumed_lots(record).items()):
        element = _sub(root, "MaterialLot")
        _text(element, "ID", lot_id)
        _text(element, "Description", lot.description)
        _text(element, "MaterialDefinitionID", sku)
        _text(element, "Status", "Consumed")
        for name, value in (
            ("tracking", lot.tracking),
            ("consumed-by-units", " ".join(lot.units)),
        ):
            prop = _sub(element, "MaterialLotProperty")
            _text(prop, "ID", name)
            _sub(_sub(prop, "Value"), "ValueString").text = _xml_chars(value)
        _quantity(element, lot.quantity, record.uom.get(sku, "ea"))
    return _serialize(root)


# --- XML helpers -----------------------------------------------------------------------


def _el(tag: str) -> ET.Element:
    return ET.Element(f"{{{NS}}}{tag}")


def _sub(parent: ET.Element, tag: str) -> ET.Element:
    return ET.SubElement(parent, f"{{{NS}}}{tag}")


def _text(parent: ET.Element, tag: str, value: str | None) -> None:
    """A child with text; nothing when there is no value (every optional element)."""
    if value:
        _sub(parent, tag).text = _xml_chars(value)


def _xml_chars(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot carry (control characters), so odd
    data never makes the document ill-formed."""
    return _NOT_XML.sub("", value)


def _time(parent: ET.Element, tag: str, value: datetime | None) -> None:
    _text(parent, tag, rfc3339(value))


def _quantity(parent: ET.Element, quantity: int, uom: str) -> None:
    q = _sub(parent, "Quantity")
    _sub(q, "QuantityString").text = str(quantity)
    _sub(q, "DataType").text = "integer"
    _text(q, "UnitOfMeasure", uom or "ea")


def _serialize(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=NS)


# --- the command -----------------------------------------------------------------------


@click.group("export")
def export_group() -> None:
    """Exports for other systems (B2MML)."""


@export_group.command("b2mml")
@click.option("--order", "number", required=True, help="The customer order number, e.g. SO-1001.")
@click.option(
    "--document",
    type=click.Choice(DOCUMENTS),
    default="performance",
    show_default=True,
    help="performance: ProductionPerformance; material: MaterialInformation (lots consumed).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
@with_appcontext
def b2mml_command(number: str, document: str, out: Path | None) -> None:
    """A completed order as ISA-95 B2MML V0600 XML (docs/traceability.md)."""
    with Session(current_app.extensions["taktline.engine"]) as db:
        try:
            xml = export_order(db, number=number, document=document)
        except (LookupError, NotCompleted) as exc:
            raise click.ClickException(str(exc)) from exc
    if out is None:
        click.echo(xml.decode("utf-8"), nl=False)
    else:
        out.write_bytes(xml)
        click.echo(f"{out}: B2MML {VERSION} {document} of order {number}", err=True)
