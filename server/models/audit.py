"""The audit trail: append-only, who did what, from where, and what changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from server.models.types import json_dict, when


class AuditEntry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = when(default_now=True, index=True)
    actor: str = Field(max_length=200)
    address: str = Field(default="", max_length=64, description="IP or station code")
    action: str = Field(max_length=64, index=True)
    entity: str = Field(max_length=64)
    entity_id: str = Field(default="", max_length=64)
    detail: dict[str, Any] = json_dict()
