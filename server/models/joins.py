"""The join from a unit to its order: unit -> work order -> order line -> customer order.

Written once here for every statement that walks it, Core (``sa.select(col(...))``) or
ORM (``sqlmodel.select(Model)``): both are ``sa.Select`` and take the same ``join``.
``upto`` stops the walk early when the question needs no later table (a filter on
``OrderLine.order_id`` needs no ``customerorder`` row), so no statement joins more
than it did when the join was written out.
"""

from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import col

from server.models.orders import CustomerOrder, OrderLine, Unit, WorkOrder

SelectT = TypeVar("SelectT", bound="sa.Select[*tuple[Any, ...]]")
Upto = type[WorkOrder] | type[OrderLine] | type[CustomerOrder]


def join_work_order_to_order(
    stmt: SelectT, *, outer: bool = False, upto: Upto = CustomerOrder
) -> SelectT:
    """``stmt`` (whose FROM has ``WorkOrder``) joined to ``OrderLine`` and, unless
    ``upto=OrderLine``, to ``CustomerOrder``; LEFT OUTER joins when ``outer``."""
    if upto is WorkOrder:
        return stmt
    stmt = stmt.join(OrderLine, col(OrderLine.id) == col(WorkOrder.order_line_id), isouter=outer)
    if upto is OrderLine:
        return stmt
    return stmt.join(CustomerOrder, col(CustomerOrder.id) == col(OrderLine.order_id), isouter=outer)


def join_unit_to_order(
    stmt: SelectT, *, outer: bool = False, upto: Upto = CustomerOrder
) -> SelectT:
    """``stmt`` (whose FROM has ``Unit``) joined to ``WorkOrder``, ``OrderLine`` and
    ``CustomerOrder``, stopping after ``upto``; LEFT OUTER joins when ``outer``."""
    stmt = stmt.join(WorkOrder, col(WorkOrder.id) == col(Unit.work_order_id), isouter=outer)
    return join_work_order_to_order(stmt, outer=outer, upto=upto)
