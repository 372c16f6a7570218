"""A product's configuration rules read from the database, for ``server.catalog.configure``."""

from __future__ import annotations

from sqlmodel import Session, col, select

from server.catalog.configure import (
    BomSpec,
    GroupSpec,
    OperationSpec,
    OptionSpec,
    ProductSpec,
    RuleSpec,
)
from server.models import BomLine, Operation, Option, OptionGroup, OptionRule, Part, Product


def load_product(session: Session, product: Product) -> ProductSpec:
    """Read ``product``'s options, rules, routing and BOM into a ``ProductSpec``."""
    groups = session.exec(
        select(OptionGroup)
        .where(OptionGroup.product_id == product.id)
        .order_by(col(OptionGroup.position), col(OptionGroup.id))
    ).all()
    options = session.exec(
        select(Option)
        .where(Option.product_id == product.id)
        .order_by(col(Option.position), col(Option.id))
    ).all()
    rules = session.exec(
        select(OptionRule).where(OptionRule.product_id == product.id).order_by(col(OptionRule.id))
    ).all()
    ops = session.exec(select(Operation).where(Operation.product_id == product.id)).all()
    bom = session.exec(
        select(BomLine, Part)
        .join(Part, col(BomLine.part_id) == Part.id)
        .where(BomLine.product_id == product.id)
        .order_by(col(BomLine.id))
    ).all()
    return ProductSpec(
        id=product.id or 0,
        code=product.code,
        name=product.name,
        serial_pattern=product.serial_pattern,
        groups=tuple(
            GroupSpec(
                g.code,
                g.name,
                g.multiple,
                g.required,
                tuple(OptionSpec(o.code, o.name, g.code) for o in options if o.group_id == g.id),
            )
            for g in groups
        ),
        rules=tuple(RuleSpec(r.kind, r.option, r.other, r.message) for r in rules),
        operations=tuple(
            OperationSpec(
                op.id or 0,
                op.code,
                op.sequence,
                op.name,
                op.station_kind,
                op.instructions,
                op.image,
                op.standard_seconds,
                op.required_skill,
                tuple(op.when_options),
            )
            for op in ops
        ),
        bom=tuple(
            BomSpec(
                b.part_id, p.sku, p.description, b.quantity, b.operation_code, tuple(b.when_options)
            )
            for b, p in bom
        ),
    )
