"""The Webhooks page: admins add, pause, enable and delete subscriptions with the
page's forms (audited); supervisors are refused; the page speaks French."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from server.db import write_session
from server.models import AuditEntry, Operator, WebhookSubscription
from tests.support.apps import login


def _csrf(client: FlaskClient) -> str:
    html = client.get("/integration/webhooks").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    return match.group(1) if match else ""


def _subs(app: Flask) -> list[WebhookSubscription]:
    with Session(app.extensions["taktline.engine"]) as s:
        return list(s.exec(select(WebhookSubscription)).all())


def test_admins_manage_webhooks_on_the_page(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "admin")
    token = _csrf(client)
    refused = client.post(
        "/integration/webhooks", data={"csrf_token": token, "name": "erp", "url": "ftp://x"}
    )
    assert refused.status_code == 400 and "Check the name and the URL" in refused.text
    added = client.post(
        "/integration/webhooks",
        data={
            "csrf_token": token,
            "name": "erp",
            "url": "https://erp.example.com/hook",
            "event_types": ["unit.completed", "order.shipped"],
        },
    )
    assert added.status_code == 303
    [sub] = _subs(demo_app)
    assert sub.event_types == ["unit.completed", "order.shipped"] and sub.active
    page = client.get("/integration/webhooks").text
    assert "Webhook erp added." in page and sub.secret in page
    assert (
        client.post(
            f"/integration/webhooks/{sub.id}/active", data={"csrf_token": token, "active": "0"}
        ).status_code
        == 303
    )
    assert not _subs(demo_app)[0].active
    assert (
        client.post(
            f"/integration/webhooks/{sub.id}/delete", data={"csrf_token": token}
        ).status_code
        == 303
    )
    assert _subs(demo_app) == []
    with Session(demo_app.extensions["taktline.engine"]) as s:
        actions = [a.action for a in s.exec(select(AuditEntry)).all()]
    assert {"webhook.create", "webhook.disable", "webhook.delete"} <= set(actions)


def test_supervisors_are_refused_and_the_page_speaks_french(demo_app: Flask) -> None:
    supervisor = demo_app.test_client()
    login(supervisor, "supervisor")
    assert supervisor.get("/integration/webhooks").status_code == 403
    with write_session(demo_app.extensions["taktline.engine"]) as s:
        person = s.exec(select(Operator).where(Operator.username == "admin")).one()
        person.locale = "fr"
        s.add(person)
    admin = demo_app.test_client()
    login(admin, "admin")
    page = admin.get("/integration/webhooks").text
    assert "Livraisons en échec et abandonnées" in page and "Ajouter un webhook" in page
