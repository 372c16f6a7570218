"""Webhook subscriptions and replay: the service functions the admin page and the API
share (keyword arguments; the caller owns the transaction)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col, select

from server import audit
from server.integration.outbox import TYPES
from server.models import Delivery, WebhookSubscription
from server.models.types import utcnow

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


class InvalidSubscription(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check(name: str, url: str, event_types: list[str]) -> tuple[str, str, list[str]]:
    name, url = name.strip(), url.strip()
    problems = []
    if not name or len(name) > 100:
        problems.append("name: 1 to 100 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        problems.append("url: an http:// or https:// URL of at most 500 characters")
    unknown = [t for t in event_types if t not in TYPES]
    if unknown:
        problems.append(f"event_types: unknown {', '.join(unknown)} (known: {', '.join(TYPES)})")
    if problems:
        raise InvalidSubscription(problems)
    return name, url, sorted(set(event_types), key=TYPES.index)


def create(
    session: Session,
    *,
    name: str,
    url: str,
    event_types: list[str],
    by: str,
    address: str = "",
) -> WebhookSubscription:
    name, url, event_types = check(name, url, event_types)
    sub = WebhookSubscription(
        name=name, url=url, secret=new_secret(), event_types=event_types, created_by=by
    )
    session.add(sub)
    session.flush()
    audit.record(
        session,
        actor=by,
        action="webhook.create",
        entity="webhook",
        entity_id=sub.id or "",
        address=address,
        detail={"name": name, "url": url, "event_types": event_types},
    )
    return sub


def set_active(
    session: Session, *, subscription: WebhookSubscription, active: bool, by: str, address: str = ""
) -> None:
    subscription.active = active
    session.add(subscription)
    audit.record(
        session,
        actor=by,
        action="webhook.enable" if active else "webhook.disable",
        entity="webhook",
        entity_id=subscription.id or "",
        address=address,
    )
    session.flush()


def delete(
    session: Session, *, subscription: WebhookSubscription, by: str, address: str = ""
) -> None:
    session.execute(sa.delete(Delivery).where(col(Delivery.subscription_id) == subscription.id))
    audit.record(
        session,
        actor=by,
        action="webhook.delete",
        entity="webhook",
        entity_id=subscription.id or "",
        address=address,
        detail={"name": subscription.name, "url": subscription.url},
    )
    session.delete(subscription)
    session.flush()


def replay(
    session: Session,
    *,
    by: str,
    delivery_id: int | None = None,
    channel: str | None = None,
    address: str = "",
) -> int:
    """Dead deliveries (one, or every one of a channel) back to pending, due now, their
    age counted again from now. Returns how many."""
    now = utcnow()
    query = sa.update(Delivery).where(col(Delivery.status) == DEAD)
    if delivery_id is not None:
        query = query.where(col(Delivery.id) == delivery_id)
    if channel is not None:
        query = query.where(col(Delivery.channel) == channel)
    result = session.execute(
        query.values(
            status=PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
            locked_until=None,
        ).execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)  # type: ignore[attr-defined]
    audit.record(
        session,
        actor=by,
        action="webhook.replay",
        entity="delivery",
        entity_id=delivery_id or channel or "all",
        address=address,
        detail={"replayed": count},
    )
    return count


def channel_of(subscription: WebhookSubscription) -> str:
    return f"webhook:{subscription.id}"


def counts(session: Session) -> dict[tuple[str, str], int]:
    """(channel, status) -> deliveries."""
    rows = session.exec(
        select(Delivery.channel, Delivery.status, sa.func.count()).group_by(  # type: ignore[call-overload]
            col(Delivery.channel), col(Delivery.status)
        )
    ).all()
    return {(channel, status): int(n) for channel, status, n in rows}


def troubled(session: Session, *, limit: int = 200, channel: str | None = None) -> list[Any]:
    """Deliveries that failed at least once and are not delivered, or are dead: newest
    first, with their event (of one channel, or all)."""
    from server.models import OutboxEvent

    query = (
        select(Delivery, OutboxEvent)  # type: ignore[call-overload]
        .join(OutboxEvent, col(OutboxEvent.id) == col(Delivery.outbox_id))
        .where(
            (col(Delivery.status) == DEAD)
            | ((col(Delivery.status) == PENDING) & (col(Delivery.attempts) > 0))
        )
        .order_by(col(Delivery.id).desc())
        .limit(limit)
    )
    if channel is not None:
        query = query.where(col(Delivery.channel) == channel)
    return list(session.exec(query).all())


def as_json(sub: WebhookSubscription, *, with_secret: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": sub.id,
        "name": sub.name,
        "url": sub.url,
        "event_types": list(sub.event_types),
        "active": sub.active,
        "created_at": sub.created_at,
        "created_by": sub.created_by,
    }
    if with_secret:
        body["secret"] = sub.secret
    return body
