"""CSRF, security headers, and HTML/script payloads rendered as text on every page.

The page crawl walks ``app.url_map``: pages added later (board, genealogy, ...) are
covered as they land, as long as their URL arguments are among ``ARGUMENTS`` below.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from server.db import write_session
from server.models import CustomerOrder, Station, Unit
from server.orders import service
from server.security import auth
from tests.support.apps import login
from tests.support.pdf_text import pdf_text

PAYLOAD = "<script>alert('x')</script><img src=x onerror=alert(2)>"
ESCAPED = "&lt;script&gt;alert("
# Free-text columns people type or import; each gets the payload in front.
TEXT_COLUMNS = {
    "site": ["name"],
    "line": ["name"],
    "station": ["name"],
    "operator": ["name"],
    "location": ["name"],
    "part": ["description"],
    "product": ["name", "description"],
    "optiongroup": ["name"],
    "option": ["name"],
    "operation": ["name", "instructions"],
    "customerorder": ["customer"],
    "optionrule": ["message"],
}
FORM = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.I | re.S)


class _CSPAudit(HTMLParser):
    """What the Content-Security-Policy would block: inline scripts without the nonce,
    inline event handlers (onclick=..., hx-on:...)."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and not names & {"src", "nonce"}:
            self.problems.append("inline <script> without nonce")
        self.problems += [
            f"<{tag} {n}=...>" for n in names if n.startswith("on") or n.startswith("hx-on")
        ]


# -- CSRF ----------------------------------------------------------------------------


def test_post_without_or_with_a_wrong_csrf_token_is_refused(demo_client: FlaskClient) -> None:
    data = {"username": "admin", "password": "admin"}
    missing = demo_client.post("/login", data=data, csrf=False)  # type: ignore[call-arg]
    assert missing.status_code == 400 and "Form expired" in missing.get_data(as_text=True)
    wrong = demo_client.post("/login", data={**data, "csrf_token": "forged"}, csrf=False)  # type: ignore[call-arg]
    assert wrong.status_code == 400
    assert demo_client.get("/healthz").json["user"] == ""  # type: ignore[index]


def test_the_token_in_the_page_is_accepted(demo_client: FlaskClient) -> None:
    html = demo_client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    r = demo_client.post(
        "/login", data={"username": "admin", "password": "admin", "csrf_token": token}, csrf=False
    )  # type: ignore[call-arg]
    assert r.status_code == 303
    # htmx sends the token of <body hx-headers> as X-CSRFToken.
    body = demo_client.get("/admin/").get_data(as_text=True)
    header = re.search(r'"X-CSRFToken": "([^"]+)"', body).group(1)  # type: ignore[union-attr]
    r = demo_client.post(
        "/logout", headers={"X-CSRFToken": header, "HX-Request": "true"}, csrf=False
    )  # type: ignore[call-arg]
    assert r.status_code == 303


def test_api_needs_csrf_with_a_session_but_not_with_a_bearer_token(demo_app: Flask) -> None:
    with write_session(demo_app.extensions["taktline.engine"]) as db:
        token = auth.issue_api_token(db, name="erp", scopes=["orders:write"], by=None)
    client = demo_app.test_client()
    login(client, "supervisor")
    by_cookie = client.post("/api/v1/orders/NOPE/cancel", csrf=False)  # type: ignore[call-arg]
    assert by_cookie.status_code == 400 and "CSRF" in by_cookie.json["error"]  # type: ignore[index]
    bearer = demo_app.test_client().post(
        "/api/v1/orders/NOPE/cancel",
        csrf=False,  # type: ignore[call-arg]
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bearer.status_code == 404


# -- headers -------------------------------------------------------------------------


def test_security_headers(demo_client: FlaskClient) -> None:
    r = demo_client.get("/")
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp and "object-src 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in r.headers  # only with SECURE_COOKIES
    nonce_1 = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
    nonce_2 = re.search(
        r"'nonce-([^']+)'",  # type: ignore[union-attr]
        demo_client.get("/").headers["Content-Security-Policy"],
    ).group(1)
    assert nonce_1 != nonce_2


# -- payloads render as text everywhere ----------------------------------------------


@pytest.fixture
def poisoned(demo_app: Flask) -> Iterator[dict[str, Any]]:
    """The demo plant with the payload in every free-text field, an order released with
    the payload as override reason, and a browser signed in as admin and bound to KIT-1."""
    engine = demo_app.extensions["taktline.engine"]
    with engine.begin() as conn:
        for table, columns in TEXT_COLUMNS.items():
            for column in columns:
                conn.execute(
                    sa.text(f'UPDATE "{table}" SET "{column}" = :p || "{column}"'), {"p": PAYLOAD}
                )
    with write_session(engine) as db:
        order = db.exec(select(CustomerOrder).order_by(CustomerOrder.id)).first()
        assert order is not None
        service.release(db, order=order, by="test", override_reason=PAYLOAD)
        number = order.number
        kit = db.exec(select(Station).where(Station.code == "KIT-1")).one()
        device = auth.issue_device_token(db, station=kit, by=None, label=PAYLOAD)
    with Session(engine) as db:
        serial = db.exec(select(Unit.serial).order_by(Unit.id)).first()
    client = demo_app.test_client()
    login(client, "admin")
    client.set_cookie(auth.DEVICE_COOKIE, device)
    client.post("/station/KIT-1/sign-in", data={"badge": "OP1001"})
    yield {
        "client": client,
        "values": {"code": "KIT-1", "number": number, "serial": serial, "fmt": "json"},
    }


def _get_pages(app: Flask, values: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or "GET" not in (rule.methods or ()):
            continue
        choices: list[dict[str, Any]] = [{}]
        for name in rule.arguments:
            converter = rule._converters[name]  # noqa: SLF001 - werkzeug API
            if type(converter).__name__ == "AnyConverter":
                options = sorted(converter.items)  # type: ignore[attr-defined]
            elif type(converter).__name__ == "IntegerConverter":
                options = [values.get(name, 1)]
            else:
                options = [values.get(name, f"x-{name}")]
            choices = [{**c, name: o} for c in choices for o in options]
        for args in choices:
            yield rule.endpoint, rule.build(args, append_unknown=False)[1]  # type: ignore[index]


def test_payloads_render_as_text_on_every_page(demo_app: Flask, poisoned: dict[str, Any]) -> None:
    client: FlaskClient = poisoned["client"]
    seen: dict[str, int] = {}
    for endpoint, path in _get_pages(demo_app, poisoned["values"]):
        response = client.get(path, headers={"Accept": "text/html"})
        kind = response.mimetype
        if kind == "text/event-stream":
            response.close()  # an endless stream; its frames are the partials checked here
            continue
        body = response.get_data()
        response.close()
        if kind == "application/pdf":
            _check_pdf(path, body)
        elif kind == "text/html":
            html = body.decode()
            assert "<script>alert" not in html and "<img src=x" not in html, path
            audit = _CSPAudit()
            audit.feed(html)
            assert audit.problems == [], path
            for attrs, inner in FORM.findall(html):
                if "post" in attrs.lower():
                    assert 'name="csrf_token"' in inner, (path, attrs)
            seen[endpoint] = html.count(ESCAPED)
    shown = {e for e, n in seen.items() if n}
    # The payload must really be on the pages that show these texts, escaped.
    # (station, line board, genealogy, orders, traveler, dispatch, audit, admin)
    assert {
        "home.index",
        "orders.show",
        "orders.index",
        "station.page",
        "board.page",
        "trace.unit_page",
        "units.traveler",
        "dispatch.board",
        "audit.index",
        "admin.devices",
    } <= shown, seen


def _check_pdf(path: str, pdf: bytes) -> None:
    assert pdf.startswith(b"%PDF"), path
    for marker in (b"/JavaScript", b"/JS ", b"/Launch", b"/URI"):
        assert marker not in pdf, (path, marker)
    # Drawn as text: the markup characters themselves appear in the page's text.
    assert "<script>alert('x')</script>" in pdf_text(pdf).replace("\n", ""), path


def test_json_and_csv_carry_payloads_as_data(demo_app: Flask, poisoned: dict[str, Any]) -> None:
    client: FlaskClient = poisoned["client"]
    r = client.get("/audit/export.json?entity=device_token")
    assert r.mimetype == "application/json" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.json[0]["detail"]["label"] == PAYLOAD  # type: ignore[index]
