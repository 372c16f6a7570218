"""Release demo units for station tests: work order, unit, routing and per-unit
reservations, built with the catalog's resolver and the orders' reservation service.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from server.catalog.configure import resolve
from server.catalog.products import load_product
from server.db import write_session
from server.models import OrderLine, Product, Unit, UnitOperation, WorkOrder
from server.orders.reservations import reserve_for_unit


def release_unit(
    session: Session,
    *,
    options: list[str],
    serial: str,
    reserve: bool = True,
    product_code: str = "PC",
) -> Unit:
    product = session.exec(select(Product).where(Product.code == product_code)).one()
    config = resolve(load_product(session, product), options)
    line = session.exec(select(OrderLine).where(OrderLine.product_id == product.id)).first()
    assert line is not None
    wo = WorkOrder(number=f"WO-{serial}", order_line_id=line.id, quantity=1)
    session.add(wo)
    session.flush()
    unit = Unit(
        serial=serial,
        work_order_id=wo.id,
        product_id=product.id,
        options=list(config.options),
        status="queued",
    )
    session.add(unit)
    session.flush()
    for i, routed in enumerate(config.routing):
        session.add(
            UnitOperation(
                unit_id=unit.id,
                operation_id=routed.operation.id,
                sequence=routed.operation.sequence,
                station_kind=routed.operation.station_kind,
                status="ready" if i == 0 else "pending",
                picks=[p.as_dict() for p in routed.picks],
            )
        )
        if reserve:
            for pick in routed.picks:
                reserve_for_unit(session, unit=unit, part_id=pick.part_id, qty=pick.qty, by="test")
    session.flush()
    return unit


def release(engine: Engine, *, options: list[str], serial: str, reserve: bool = True) -> int:
    with write_session(engine) as session:
        unit = release_unit(session, options=options, serial=serial, reserve=reserve)
        assert unit.id is not None
        return unit.id
