"""Outbound events (the transactional outbox) and their delivery to webhooks and MQTT.

``OutboxEvent`` is written in the same transaction as what it reports
(``server.integration.outbox``); every column is fixed once written, so the CloudEvent
built from it is the same on every delivery. ``Delivery`` is one event for one
channel (a webhook subscription, or MQTT): its attempts, next try and final state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from server.models.types import json_list, when


class OutboxEvent(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("order_id", "order_seq"),)
    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=36, unique=True, description="the CloudEvent id")
    type: str = Field(max_length=64, description="e.g. com.taktline.unit.completed")
    order_id: int = Field(foreign_key="customerorder.id")
    order_seq: int = Field(description="1, 2, 3 ... per order: the delivery order")
    subject: str = Field(max_length=64, description="the order number")
    time: datetime = when()
    data: str = Field(sa_column=sa.Column(sa.Text, nullable=False), description="JSON text")
    fanned_out: bool = Field(default=False, index=True, description="deliveries created")


class WebhookSubscription(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    url: str = Field(max_length=500)
    secret: str = Field(max_length=200, description="HMAC-SHA256 key of the signature")
    event_types: list[Any] = json_list()  # empty: every type
    active: bool = Field(default=True)
    created_at: datetime = when(default_now=True)
    created_by: str = Field(default="", max_length=200)


class Delivery(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("channel", "outbox_id"),
        sa.Index("ix_delivery_lane", "channel", "order_id", "order_seq"),
        sa.Index("ix_delivery_due", "status", "next_attempt_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=32, description="webhook:<subscription id> | mqtt")
    subscription_id: int | None = Field(
        default=None, foreign_key="webhooksubscription.id", index=True
    )
    outbox_id: int = Field(foreign_key="outboxevent.id", index=True)
    order_id: int = Field(description="copied from the event: the lane it is delivered in")
    order_seq: int
    status: str = Field(default="pending", max_length=16, description="pending|delivered|dead")
    attempts: int = Field(default=0)
    created_at: datetime = when(default_now=True)
    next_attempt_at: datetime = when(default_now=True)
    locked_until: datetime | None = when(nullable=True)
    delivered_at: datetime | None = when(nullable=True)
    last_status: int | None = Field(default=None, description="HTTP status of the last try")
    last_error: str = Field(default="", max_length=500)
