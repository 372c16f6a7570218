"""Re-promise flags out, after the commit: MQTT, and the pieces every web path shares
(the plan options from the settings, the sweep that re-promises when something the
plan reads has moved).

Topic ``{MQTT_PREFIX}/{site}/promise/flag``, QoS 1, not retained; payload
``server.promise.service.Change.as_dict()`` plus ``at`` (docs/mqtt.md). A flag is
published when it is raised, when its date moves, and when it is cleared
(``"flagged": false``). Without a broker (tests, a process without MQTT) the changes
are only logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from flask import Flask, current_app
from sqlmodel import Session, col, select

from server.db import write_session
from server.messaging import client
from server.models import Site
from server.models.types import rfc3339, utcnow
from server.plant_time import zone
from server.promise import service

log = logging.getLogger(__name__)
_SWEEP = threading.Lock()
_SWEPT: dict[str, tuple[Any, ...]] = {}


def options(app: Flask | None = None) -> service.Options:
    config = (app or current_app).config
    return service.Options(
        zone=zone(),
        lead_days=int(config["PROMISE_LEAD_DAYS"]),
        horizon_days=int(config["PROMISE_HORIZON_DAYS"]),
        min_history=int(config["PROMISE_MIN_HISTORY"]),
    )


def topic(app: Flask, session: Session) -> str:
    site = session.exec(select(Site.code).order_by(col(Site.id))).first() or "site"
    return f"{app.config['MQTT_PREFIX']}/{site}/promise/flag"


def publish(changes: Sequence[service.Change], *, app: Flask | None = None) -> None:
    """Publish ``changes`` (call after the commit)."""
    if not changes:
        return
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    for c in changes:
        log.info(
            "promise of %s %s: promised %s, plan %s (%s)",
            c.order,
            "flagged" if c.flagged else "holds again",
            c.promised_on,
            c.projected_on,
            c.trigger or c.reason.get("text", ""),
        )
    pub = client.publisher(app)
    if pub is None:
        return
    with Session(app.extensions["taktline.engine"]) as session:
        where = topic(app, session)
    at = rfc3339(utcnow())
    for c in changes:
        pub.publish(where, {**c.as_dict(), "at": at})


def sweep(session: Session, *, trigger: str = "") -> list[service.Change]:
    """Re-promise when anything the plan reads moved since the last sweep of this
    process (a receipt, stock, an order, a station event, the calendar...): the flags
    then follow changes made anywhere (a defect that scraps a unit, a station taken
    down). Writes in its own transaction, publishes after its commit."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    opts = options(app)
    entry = service.plan_for(session, options=opts)
    url = str(session.get_bind().engine.url)
    if _SWEPT.get(url) == entry.key[:-2]:  # the minute alone moving is no change
        return []
    if not _SWEEP.acquire(blocking=False):
        return []  # another request of this process is sweeping
    try:
        with write_session(app.extensions["taktline.engine"]) as db, entry.lock:
            changes = service.refresh(
                db, options=opts, trigger=trigger or "re-promised", plan=entry.plan
            )
        _SWEPT[url] = entry.key[:-2]
    finally:
        _SWEEP.release()
    publish(changes, app=app)
    return changes
