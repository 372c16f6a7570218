"""Write to the audit trail: who did what, when, from where, and what changed.

Call ``record`` inside the same transaction as the change it describes, so the change
and its audit entry commit together or not at all.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from server.models import AuditEntry


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: object = "",
    detail: dict[str, Any] | None = None,
    address: str = "",
) -> AuditEntry:
    entry = AuditEntry(
        actor=actor,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        detail=detail or {},
        address=address,
    )
    session.add(entry)
    return entry
