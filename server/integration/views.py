"""The Webhooks page (blueprint "integration", admins): subscriptions, deliveries that
failed or are dead, and replay (docs/integration.md)."""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlmodel import col, select

from server.db import begin_write, get_session
from server.integration import subscriptions
from server.integration.outbox import TYPES
from server.models import WebhookSubscription
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("integration", __name__, url_prefix="/integration")


def _page(status: int = 200, **extra: Any) -> Any:
    db = get_session()
    subs = db.exec(select(WebhookSubscription).order_by(col(WebhookSubscription.id))).all()
    counts = subscriptions.counts(db)
    names = {subscriptions.channel_of(s): s.name for s in subs}
    names["mqtt"] = "MQTT"
    response = make_response(
        render_template(
            "integration/webhooks.html",
            subs=subs,
            counts=counts,
            names=names,
            types=TYPES,
            troubled=subscriptions.troubled(db),
            channel_of=subscriptions.channel_of,
            **extra,
        ),
        status,
    )
    response.headers["Cache-Control"] = "no-store"  # secrets are on the page
    return response


@bp.get("/webhooks")
@auth.require("admin")
def webhooks() -> Any:
    return _page()


@bp.post("/webhooks")
@auth.require("admin")
def create_webhook() -> Any:
    db = get_session()
    begin_write(db)
    try:
        sub = subscriptions.create(
            db,
            name=request.form.get("name", ""),
            url=request.form.get("url", ""),
            event_types=request.form.getlist("event_types"),
            by=auth.actor(),
            address=auth.address(),
        )
    except subscriptions.InvalidSubscription as exc:
        db.rollback()
        log.info("webhook form refused: %s", exc)
        return _page(400, error=_("Check the name and the URL (http:// or https://)."))
    db.commit()
    flash(_("Webhook %(name)s added.", name=sub.name))
    return redirect(url_for("integration.webhooks"), code=303)


def _subscription(sub_id: int) -> WebhookSubscription:
    db = get_session()
    begin_write(db)
    sub: WebhookSubscription = db.get(WebhookSubscription, sub_id) or abort(404)
    return sub


@bp.post("/webhooks/<int:sub_id>/active")
@auth.require("admin")
def toggle_webhook(sub_id: int) -> Any:
    sub = _subscription(sub_id)
    active = request.form.get("active") == "1"
    subscriptions.set_active(
        get_session(), subscription=sub, active=active, by=auth.actor(), address=auth.address()
    )
    get_session().commit()
    flash(
        _("Webhook %(name)s enabled.", name=sub.name)
        if active
        else _("Webhook %(name)s paused.", name=sub.name)
    )
    return redirect(url_for("integration.webhooks"), code=303)


@bp.post("/webhooks/<int:sub_id>/delete")
@auth.require("admin")
def delete_webhook(sub_id: int) -> Any:
    sub = _subscription(sub_id)
    name = sub.name
    subscriptions.delete(get_session(), subscription=sub, by=auth.actor(), address=auth.address())
    get_session().commit()
    flash(_("Webhook %(name)s deleted.", name=name))
    return redirect(url_for("integration.webhooks"), code=303)


@bp.post("/webhooks/<int:sub_id>/replay")
@auth.require("admin")
def replay_webhook(sub_id: int) -> Any:
    sub = _subscription(sub_id)
    count = subscriptions.replay(
        get_session(),
        channel=subscriptions.channel_of(sub),
        by=auth.actor(),
        address=auth.address(),
    )
    get_session().commit()
    flash(_("%(count)s dead deliveries sent again.", count=count))
    return redirect(url_for("integration.webhooks"), code=303)


@bp.post("/deliveries/<int:delivery_id>/replay")
@auth.require("admin")
def replay_delivery(delivery_id: int) -> Any:
    db = get_session()
    begin_write(db)
    count = subscriptions.replay(
        db, delivery_id=delivery_id, by=auth.actor(), address=auth.address()
    )
    db.commit()
    flash(_("%(count)s dead deliveries sent again.", count=count))
    return redirect(url_for("integration.webhooks"), code=303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
