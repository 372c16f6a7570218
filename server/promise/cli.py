"""``taktline promise refresh``: re-promise every open order now, print the flags raised,
moved or cleared, and publish them on MQTT when ``MQTT_URL`` is set (for a cron job or
a timer: changes made outside the pages, such as a defect that scraps a unit, are then
flagged without anyone looking). ``taktline promise show`` prints the plan."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session

from server.db import write_session
from server.messaging import client
from server.models.types import rfc3339, utcnow
from server.promise import publish, service


@click.group("promise")
def promise_group() -> None:
    """Promise dates (docs/promise.md)."""


@promise_group.command("refresh")
@with_appcontext
def refresh_command() -> None:
    """Re-promise every open order; print and publish the flags that changed."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    engine = app.extensions["taktline.engine"]
    options = publish.options(app)
    with write_session(engine) as db:
        entry = service.plan_for(db, options=options, cached=False)
        changes = service.refresh(
            db, options=options, trigger="taktline promise refresh", plan=entry.plan
        )
        where = publish.topic(app, db)
    for c in changes:
        click.echo(
            f"{c.order}: promised {c.promised_on}, plan {c.projected_on or 'no date'} "
            f"({'flagged' if c.flagged else 'holds again'}): {c.reason.get('text', '')}"
        )
    click.echo(
        f"{len(entry.plan.promises)} open orders re-promised, {len(changes)} flag(s) changed"
    )
    url = app.config.get("MQTT_URL")
    if changes and url:
        mqtt_client, broker = client.make_client(url, client_id=client.default_client_id("promise"))
        mqtt_client.connect(broker.host, broker.port, keepalive=30)
        mqtt_client.loop_start()
        try:
            at = rfc3339(utcnow())
            for c in changes:
                info = mqtt_client.publish(where, client.dumps({**c.as_dict(), "at": at}), qos=1)
                info.wait_for_publish(10)
        finally:
            mqtt_client.disconnect()
            mqtt_client.loop_stop()


@promise_group.command("show")
@with_appcontext
def show_command() -> None:
    """Print each open order's plan: ship date, completion and reason."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    with Session(app.extensions["taktline.engine"]) as db:
        plan = service.plan_for(db, options=publish.options(app), cached=False).plan
    for order in plan.orders:
        p = plan.promises[order.id]
        done = rfc3339(p.completion) or ""
        click.echo(f"{order.number}\t{p.ship_on or 'no date'}\t{done}\t{p.reason.text}")
