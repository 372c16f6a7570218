"""One desk navigation on every desk page, links by role; every POST form carries CSRF.

Pages are fetched through real HTTP and the rendered HTML is parsed: the main
navigation (same links, same order on every page of a role), the current section
(aria-current="page"), the section tabs, and the hidden csrf_token of each POST form.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from server.db import write_session
from server.models import Operator, Station, Unit
from server.security import auth

TEMPLATES = Path(__file__).parent.parent / "templates"

HOME = [("/", "Home")]
SUPERVISOR_NAV = HOME + [
    ("/orders/", "Orders"),
    ("/dispatch/", "Dispatch"),
    ("/receipts/", "Supply"),
    ("/stock/", "Stock"),
    ("/trace", "Trace"),
    ("/quality/", "Quality"),
    ("/board", "Line board"),
    ("/audit/", "Audit trail"),
]
ADMIN_NAV = SUPERVISOR_NAV + [("/admin/", "Admin")]
NAV = {"anonymous": HOME, "operator": HOME, "supervisor": SUPERVISOR_NAV, "admin": ADMIN_NAV}

# Desk page -> the section it belongs to (the main-nav label marked current).
DESK_PAGES = {
    "/": "Home",
    "/orders/": "Orders",
    "/orders/new": "Orders",
    "/orders/import": "Orders",
    "/orders/SO-1002": "Orders",
    "/orders/SO-1002/release": "Orders",
    "/orders/{released}": "Orders",
    "/dispatch/": "Dispatch",
    "/dispatch/stations/KIT-1": "Dispatch",
    "/receipts/": "Supply",
    "/calendar/": "Supply",
    "/stock/": "Stock",
    "/trace": "Trace",
    "/reports/assembly-time": "Trace",
    "/units/{unit}": "Trace",
    "/quality/": "Quality",
    "/quality/quarantine": "Quality",
    "/quality/charts": "Quality",
    "/board": "Line board",
    "/audit/": "Audit trail",
    "/ingest/dead-letters": "Audit trail",
}
ADMIN_PAGES = {
    "/admin/": "Admin",
    "/admin/users": "Admin",
    "/admin/users/{user_id}": "Admin",
    "/admin/api-tokens": "Admin",
    "/admin/devices": "Admin",
    "/integration/webhooks": "Admin",
}
OPERATOR_PAGES = {"/": "Home", "/dispatch/stations/KIT-1": None, "/units/{unit}": None}
ANONYMOUS_PAGES = {"/": "Home", "/login": None}
PAGES = {
    "anonymous": ANONYMOUS_PAGES,
    "operator": OPERATOR_PAGES,
    "supervisor": DESK_PAGES,
    "admin": DESK_PAGES | ADMIN_PAGES,
}
TABS = {
    "/orders/new": (
        [
            ("/orders/", "All orders"),
            ("/orders/new", "New order"),
            ("/orders/import", "Import CSV"),
        ],
        "New order",
    ),
    "/reports/assembly-time": (
        [("/trace", "Search"), ("/reports/assembly-time", "Assembly time")],
        "Assembly time",
    ),
    "/ingest/dead-letters": (
        [("/audit/", "Audit trail"), ("/ingest/dead-letters", "Dead letters")],
        "Dead letters",
    ),
    "/admin/api-tokens": (
        [
            ("/admin/users", "People"),
            ("/admin/api-tokens", "API tokens"),
            ("/admin/devices", "Station tablets"),
            ("/integration/webhooks", "Webhooks"),
        ],
        "API tokens",
    ),
}


# -- reading the HTML ------------------------------------------------------------------


@dataclass
class Link:
    href: str
    text: str
    current: str | None


@dataclass
class Nav:
    label: str
    classes: str
    links: list[Link] = field(default_factory=list)


@dataclass
class Form:
    method: str
    action: str | None
    hidden: dict[str, str] = field(default_factory=dict)


class Page(HTMLParser):
    """The navs (with their links), the forms (with their hidden inputs) and the
    sign-in / signed-in corner of one rendered page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.navs: list[Nav] = []
        self.forms: list[Form] = []
        self.who_links: list[Link] = []
        self._nav: Nav | None = None
        self._form: Form | None = None
        self._link: Link | None = None
        self._in_who = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "nav":
            self._nav = Nav(a.get("aria-label") or "", a.get("class") or "")
            self.navs.append(self._nav)
        elif tag == "span" and "who" in (a.get("class") or "").split():
            self._in_who = True
        elif tag == "a":
            self._link = Link(a.get("href") or "", "", a.get("aria-current"))
        elif tag == "form":
            self._form = Form((a.get("method") or "get").lower(), a.get("action"))
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None and a.get("type") == "hidden":
            self._form.hidden[a.get("name") or ""] = a.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._nav = None
        elif tag == "span":
            self._in_who = False
        elif tag == "a" and self._link is not None:
            self._link.text = " ".join(self._link.text.split())
            if self._nav is not None:
                self._nav.links.append(self._link)
            elif self._in_who:
                self.who_links.append(self._link)
            self._link = None
        elif tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        if self._link is not None:
            self._link.text += data

    def main_nav(self) -> Nav:
        mains = [n for n in self.navs if n.label == "Main navigation"]
        assert len(mains) == 1, [n.label for n in self.navs]
        return mains[0]

    def subnavs(self) -> list[Nav]:
        return [n for n in self.navs if "subnav" in n.classes.split()]


# -- the app, people and pages ---------------------------------------------------------


def _login(client: FlaskClient, username: str, password: str) -> None:
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 303, response.data[:500]


@dataclass
class Desk:
    app: Flask
    clients: dict[str, FlaskClient]
    values: dict[str, str]  # fills the {placeholders} of the page paths

    def get(self, role: str, page: str) -> Page:
        response = self.clients[role].get(page.format(**self.values))
        assert response.status_code == 200, (role, page, response.status_code)
        assert response.mimetype == "text/html"
        return Page(response.get_data(as_text=True))


@pytest.fixture
def desk(demo_app: Flask) -> Iterator[Desk]:
    """The demo plant with SO-1001 released (units, queued operations), a signed-in
    client per role (operator OP1001 gets a desk password) and an anonymous one."""
    engine = demo_app.extensions["taktline.engine"]
    with write_session(engine) as db:
        op = db.exec(select(Operator).where(Operator.badge == "OP1001")).one()
        op.username, op.password_hash = "op1001", auth.hash_secret("op1001-pw")
        db.add(op)
    clients = {"anonymous": demo_app.test_client()}
    for role, (user, password) in {
        "operator": ("op1001", "op1001-pw"),
        "supervisor": ("supervisor", "supervisor"),
        "admin": ("admin", "admin"),
    }.items():
        clients[role] = demo_app.test_client()
        _login(clients[role], user, password)
    assert clients["supervisor"].post("/orders/SO-1001/release").status_code == 303
    with Session(engine) as db:
        unit = db.exec(select(Unit).order_by(Unit.id)).first()  # type: ignore[arg-type]
        admin = db.exec(select(Operator).where(Operator.username == "admin")).one()
        assert unit is not None
        values = {"unit": unit.serial, "user_id": str(admin.id), "released": "SO-1001"}
    yield Desk(demo_app, clients, values)


# -- the tests -------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["anonymous", "operator", "supervisor", "admin"])
def test_every_desk_page_shows_the_same_navigation_for_the_role(desk: Desk, role: str) -> None:
    for page, section in PAGES[role].items():
        html = desk.get(role, page)
        nav = html.main_nav()
        assert [(link.href, link.text) for link in nav.links] == NAV[role], (role, page)
        current = [link.text for link in nav.links if link.current is not None]
        assert current == ([section] if section else []), (role, page)
        assert all(link.current == "page" for link in nav.links if link.current), page
        if role == "anonymous":
            assert [(link.href, link.text) for link in html.who_links] == [("/login", "Sign in")]
        else:
            assert html.who_links == []
            assert [f.action for f in html.forms].count("/logout") == 1, (role, page)


def test_the_links_shown_depend_on_the_role(desk: Desk) -> None:
    seen = {role: [link.text for link in desk.get(role, "/").main_nav().links] for role in NAV}
    assert seen == {
        "anonymous": ["Home"],
        "operator": ["Home"],
        "supervisor": [
            "Home",
            "Orders",
            "Dispatch",
            "Supply",
            "Stock",
            "Trace",
            "Quality",
            "Line board",
            "Audit trail",
        ],
        "admin": [
            "Home",
            "Orders",
            "Dispatch",
            "Supply",
            "Stock",
            "Trace",
            "Quality",
            "Line board",
            "Audit trail",
            "Admin",
        ],
    }
    # Every link shown opens for that role; Admin is refused to a supervisor.
    for role, links in NAV.items():
        for href, _label in links:
            assert desk.clients[role].get(href).status_code == 200, (role, href)
    assert desk.clients["supervisor"].get("/admin/").status_code == 403


def test_a_section_s_tabs_are_one_second_row_written_once(desk: Desk) -> None:
    for page, (tabs, current) in TABS.items():
        subnavs = desk.get("admin", page).subnavs()
        assert len(subnavs) == 1, page
        assert [(link.href, link.text) for link in subnavs[0].links] == tabs, page
        assert [link.text for link in subnavs[0].links if link.current == "page"] == [current]
    # Sections without tabs show no second row; an operator never sees a section's tabs.
    for page in ("/", "/dispatch/", "/stock/", "/board"):
        assert desk.get("supervisor", page).subnavs() == [], page
    assert desk.get("operator", "/units/{unit}").subnavs() == []


@pytest.mark.parametrize("role", ["anonymous", "operator", "supervisor", "admin"])
def test_every_post_form_carries_the_csrf_field(desk: Desk, role: str) -> None:
    actions = []
    for page in PAGES[role]:
        for form in desk.get(role, page).forms:
            if form.method == "post":
                assert form.hidden.get("csrf_token"), (role, page, form.action)
                actions.append(form.action or page)
    # The pages really hold the forms the check is about (not an empty loop).
    expected = {
        "anonymous": ["/login"],
        "operator": ["/logout"],
        "supervisor": [
            "/logout",
            "/orders/SO-1002/release",
            "/orders/new",
            "/orders/import",
            "/orders/SO-1001/priority",
            "/orders/SO-1001/cancel",
            "/dispatch/ops/",
            "/stock/lots/",
        ],
        "admin": [
            "/logout",
            "/admin/users",
            "/admin/users/",
            "/admin/api-tokens",
            "/admin/devices",
            "/dispatch/ops/",
        ],
    }[role]
    for prefix in expected:
        assert any(a.startswith(prefix) for a in actions), (role, prefix, sorted(set(actions)))


def test_the_rendered_csrf_field_is_accepted(desk: Desk) -> None:
    client = desk.clients["supervisor"]
    form = next(f for f in desk.get("supervisor", "/stock/").forms if f.action == "/logout")
    # Sent as a plain browser form would: the field, no X-CSRFToken header.
    refused = client.post("/logout", data={}, csrf=False)  # type: ignore[call-arg]
    assert refused.status_code == 400
    signed_out = client.post("/logout", data=form.hidden, csrf=False)  # type: ignore[call-arg]
    assert signed_out.status_code in (302, 303)
    assert client.get("/orders/").status_code in (302, 303)  # back to the sign-in page


def test_station_tablet_pages_keep_their_own_layout(desk: Desk) -> None:
    with write_session(desk.app.extensions["taktline.engine"]) as db:
        kit = db.exec(select(Station).where(Station.code == "KIT-1")).one()
        token = auth.issue_device_token(db, station=kit, by=None)
    tablet = desk.app.test_client()
    tablet.set_cookie(auth.DEVICE_COOKIE, token)
    response = tablet.get("/station/KIT-1")
    assert response.status_code == 200
    assert Page(response.get_data(as_text=True)).navs == []


def test_templates_write_neither_a_nav_nor_a_csrf_input_by_hand() -> None:
    """The navigation lives in _nav.html and the CSRF input in _forms.html only."""
    desk_templates = [p for p in TEMPLATES.rglob("*.html") if "station" not in p.parts]
    by_hand = [
        p.name
        for p in desk_templates
        if 'name="csrf_token"' in p.read_text() and p.name != "_forms.html"
    ]
    assert by_hand == []
    nav_blocks = [p.name for p in desk_templates if "{% block nav" in p.read_text()]
    assert nav_blocks == []
    navs = [p.name for p in desk_templates if "<nav" in p.read_text()]
    assert navs == ["_nav.html"]
