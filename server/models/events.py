"""Every station event, keyed by its unique ``msg_id`` (dedupe), and its verdict.

The verdict is stored as data: ``code`` (a ``station.messages`` code) and ``params``,
rendered when read in the reader's language; ``reason`` is its English text, for a
person reading the table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.types import json_dict, when


class Event(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    msg_id: str = Field(max_length=64, unique=True)
    station_id: int | None = Field(default=None, foreign_key="station.id", index=True)
    channel: str = Field(max_length=8, description="mqtt | http | ui")
    kind: str = Field(max_length=16, description="scan | device | ...")
    source: str = Field(default="", max_length=64)
    seq: int | None = Field(default=None, sa_type=sa.BigInteger)  # a device counter, 64 bits
    ts: datetime | None = when(nullable=True)
    received_at: datetime = when(default_now=True, index=True)
    data: str = Field(default="", max_length=4096)
    payload: dict[str, Any] = json_dict()
    result: str = Field(max_length=16, description="accepted | rejected")
    code: str = Field(default="", max_length=32, description="station.messages code")
    params: dict[str, Any] = json_dict()
    reason: str = Field(default="", max_length=500, description="English text of code")
    unit_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    operator_id: int | None = Field(default=None, foreign_key="operator.id")


class DeadLetter(SQLModel, table=True):
    """An MQTT message the ingest could not decode or decide: kept with its raw bytes,
    answered ``rejected`` and acknowledged, so it never blocks the queue. Bounded:
    the oldest rows go beyond ``DEAD_LETTER_MAX`` (server.ingest.deadletters)."""

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime = when(default_now=True, index=True)
    incident: str = Field(max_length=32, unique=True, description="quoted to the sender")
    kind: str = Field(max_length=16, description="bad_payload | internal_error")
    topic: str = Field(max_length=512)
    station: str = Field(default="", max_length=64)
    msg_id: str | None = Field(default=None, max_length=64)
    error: str = Field(max_length=1000)
    size: int = Field(description="bytes received; payload keeps the first 64 KiB")
    payload: bytes = Field(sa_column=sa.Column(sa.LargeBinary, nullable=False))
