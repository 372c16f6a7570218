"""The domain model: one module per area, all tables on one SQLModel metadata.

Every table says who changed it and when where that matters (invariant: every change
to production data says who, where and when). Times are stored as UTC.
"""

from server.models.audit import AuditEntry
from server.models.catalog import (
    BomLine,
    Operation,
    Option,
    OptionGroup,
    OptionRule,
    Part,
    PartIdentifier,
    PartSubstitute,
    Product,
    Reason,
)
from server.models.events import DeadLetter, Event
from server.models.execution import AndonCall, Consumption, Defect, DefectPhoto, StepRecord
from server.models.integration import Delivery, OutboxEvent, WebhookSubscription
from server.models.inventory import Location, StockLot, StockMovement
from server.models.joins import join_unit_to_order, join_work_order_to_order
from server.models.orders import CustomerOrder, OrderLine, Unit, UnitOperation, WorkOrder
from server.models.plant import ApiToken, DeviceToken, Line, Operator, Site, Station
from server.models.quality import Check, CheckResult, ComponentChange, NonConformance
from server.models.supply import (
    LineClosure,
    LineShift,
    OrderPromise,
    ScheduledReceipt,
    StationDowntime,
)
from server.models.types import (
    EventResult,
    OrderStatus,
    Role,
    Tracking,
    UnitOperationStatus,
    UnitStatus,
    WorkOrderStatus,
)

__all__ = [
    "AndonCall",
    "ApiToken",
    "AuditEntry",
    "BomLine",
    "Check",
    "CheckResult",
    "ComponentChange",
    "Consumption",
    "CustomerOrder",
    "Defect",
    "DefectPhoto",
    "DeviceToken",
    "DeadLetter",
    "Delivery",
    "Event",
    "EventResult",
    "Line",
    "LineClosure",
    "LineShift",
    "NonConformance",
    "Location",
    "Operation",
    "Operator",
    "Option",
    "OptionGroup",
    "OptionRule",
    "OrderLine",
    "OrderPromise",
    "OrderStatus",
    "OutboxEvent",
    "Part",
    "PartIdentifier",
    "PartSubstitute",
    "Product",
    "Reason",
    "Role",
    "ScheduledReceipt",
    "Site",
    "Station",
    "StationDowntime",
    "StepRecord",
    "StockLot",
    "StockMovement",
    "Tracking",
    "Unit",
    "UnitOperation",
    "UnitOperationStatus",
    "UnitStatus",
    "WebhookSubscription",
    "WorkOrder",
    "WorkOrderStatus",
    "join_unit_to_order",
    "join_work_order_to_order",
]
