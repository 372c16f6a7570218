"""The unit -> work order -> order line -> customer order join helper."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import col, select

from server.models import (
    CustomerOrder,
    OrderLine,
    Unit,
    WorkOrder,
    join_unit_to_order,
    join_work_order_to_order,
)


def _sql(stmt: object) -> str:
    return " ".join(str(stmt).split())


def test_join_unit_to_order_walks_the_whole_chain_for_orm_and_core_selects() -> None:
    orm = _sql(join_unit_to_order(select(Unit)))
    assert (
        "FROM unit JOIN workorder ON workorder.id = unit.work_order_id "
        "JOIN orderline ON orderline.id = workorder.order_line_id "
        "JOIN customerorder ON customerorder.id = orderline.order_id"
    ) in orm
    core = _sql(
        join_unit_to_order(sa.select(col(Unit.serial), col(CustomerOrder.number)), outer=True)
    )
    assert core.count("LEFT OUTER JOIN") == 3 and core.count("customerorder") == 3


def test_upto_stops_the_walk() -> None:
    to_line = _sql(join_unit_to_order(select(Unit.id), upto=OrderLine))
    assert "orderline" in to_line and "customerorder" not in to_line
    to_work_order = _sql(join_unit_to_order(select(Unit.id), upto=WorkOrder))
    assert "workorder" in to_work_order and "orderline" not in to_work_order
    from_work_order = _sql(join_work_order_to_order(select(CustomerOrder).select_from(WorkOrder)))
    assert (
        "FROM workorder JOIN orderline ON orderline.id = workorder.order_line_id "
        "JOIN customerorder ON customerorder.id = orderline.order_id"
    ) in from_work_order
