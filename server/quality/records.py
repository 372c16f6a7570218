"""A unit's quality records for its genealogy (page, JSON, CSV, the DHR PDF): check
results, components removed and installed in reworks, non-conformances. Database
only; times as RFC 3339 text, as the JSON shows them."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from server.models import ComponentChange, NonConformance, Part, Station, StockLot
from server.models.types import rfc3339
from server.quality import results
from server.quality.ncr import label


def for_unit(session: Session, *, unit_id: int) -> dict[str, list[dict[str, Any]]]:
    checks = [
        r | {"at": rfc3339(r["at"])}  # type: ignore[arg-type]
        for r in results.unit_results(session, unit_id=unit_id)
    ]
    changes = [
        {
            "action": c.action,
            "sku": sku,
            "serial": c.serial,
            "lot": lot or None,
            "station": station,
            "by": c.by,
            "at": rfc3339(c.at),
            "ncr": f"NCR-{c.ncr_id:05d}",
            "released_at": rfc3339(c.released_at) if c.action == "removed" else None,
        }
        for c, sku, lot, station in session.exec(
            select(ComponentChange, Part.sku, StockLot.lot_code, Station.code)
            .join(Part, col(Part.id) == ComponentChange.part_id)
            .outerjoin(StockLot, col(StockLot.id) == ComponentChange.lot_id)
            .outerjoin(Station, col(Station.id) == ComponentChange.station_id)
            .where(ComponentChange.unit_id == unit_id)
            .order_by(col(ComponentChange.id))
        )
    ]
    ncrs = [
        {
            "ncr": label(n),
            "origin": n.origin,
            "cause": n.cause,
            "characteristic": n.characteristic,
            "value": n.value,
            "lower": n.lower,
            "upper": n.upper,
            "unit": n.unit,
            "status": n.status,
            "disposition": n.disposition,
            "disposition_reason": n.disposition_reason,
            "opened_by": n.opened_by,
            "opened_at": rfc3339(n.opened_at),
            "decided_by": n.decided_by or None,
            "closed_at": rfc3339(n.closed_at),
        }
        for n in session.exec(
            select(NonConformance)
            .where(NonConformance.unit_id == unit_id)
            .order_by(col(NonConformance.id))
        )
    ]
    return {"checks": checks, "component_changes": changes, "non_conformances": ncrs}
