"""The desk navigation: one list of sections, shown on every desk page.

``templates/_nav.html`` (included by ``templates/base.html``) renders ``desk_nav()``:
the sections the signed-in person may open, the current one marked, and the current
section's own tabs as a second row. Station tablet pages replace base.html's header
and never show it. The home page (``home_cards()``) lists the same sections, each
with what it is for, its tabs and its shortcuts (the board's TV mode).

A link is shown when its view's access marker (``@auth.public`` /
``@auth.require(role)``, server.security.auth) admits the current user, so the
navigation follows the route rules and cannot drift from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, g, has_request_context, request, url_for
from flask_babel import lazy_gettext as _l

from server.models.types import Role
from server.security import auth


@dataclass(frozen=True)
class Link:
    endpoint: str
    label: Any  # a lazy string, translated when rendered
    args: tuple[tuple[str, str], ...] = ()  # query arguments of the URL

    def url(self) -> str:
        values: dict[str, Any] = dict(self.args)
        return url_for(self.endpoint, **values)


@dataclass(frozen=True)
class Section:
    link: Link
    blueprints: tuple[str, ...]  # the pages of this section
    tabs: tuple[Link, ...] = ()
    about: Any = ""  # what the section is for, on the home page
    shortcuts: tuple[Link, ...] = ()  # further links on the home page only


SECTIONS: tuple[Section, ...] = (
    Section(Link("home.index", _l("Home")), ("home",)),
    Section(
        Link("orders.index", _l("Orders")),
        ("orders", "units"),
        (
            Link("orders.index", _l("All orders")),
            Link("orders.new", _l("New order")),
            Link("orders.import_csv", _l("Import CSV")),
        ),
        about=_l("Take customer orders, check what stock allows, release them to the line."),
    ),
    Section(
        Link("dispatch.board", _l("Dispatch")),
        ("dispatch",),
        about=_l("What each station builds next: hold, resume, move and reprioritise work."),
    ),
    Section(
        Link("promise.receipts_page", _l("Supply")),
        ("promise",),
        (
            Link("promise.receipts_page", _l("Scheduled receipts")),
            Link("promise.calendar_page", _l("Line calendars")),
        ),
        about=_l(
            "Deliveries expected from suppliers, line shifts and stations down: what "
            "promise dates are made of."
        ),
    ),
    Section(
        Link("stock.index", _l("Stock")),
        ("stock",),
        about=_l("Parts on hand by lot, expiry, and stock adjustments."),
    ),
    Section(
        Link("trace.trace_page", _l("Trace")),
        ("trace",),
        (
            Link("trace.trace_page", _l("Search")),
            Link("trace.assembly_time_page", _l("Assembly time")),
        ),
        about=_l("What went into a unit, where a lot went, how long assembly takes."),
    ),
    Section(
        Link("quality.index", _l("Quality")),
        ("quality",),
        (
            Link("quality.index", _l("Non-conformances")),
            Link("quality.quarantine", _l("Quarantine")),
            Link("quality.charts", _l("Control charts")),
        ),
        about=_l("Non-conformances and their dispositions, rework, quarantine, control charts."),
    ),
    Section(
        Link("board.page", _l("Line board")),
        ("board",),
        about=_l("Every station live, andon calls and the day's output against plan."),
        shortcuts=(Link("board.page", _l("TV mode"), (("tv", "1"),)),),
    ),
    Section(
        Link("audit.index", _l("Audit trail")),
        ("audit", "ingest"),
        (
            Link("audit.index", _l("Audit trail")),
            Link("ingest.dead_letters", _l("Dead letters")),
        ),
        about=_l("Who changed what, when and from where; messages that could not be read."),
    ),
    Section(
        Link("admin.index", _l("Admin")),
        ("admin", "integration"),
        (
            Link("admin.users", _l("People")),
            Link("admin.api_tokens", _l("API tokens")),
            Link("admin.devices", _l("Station tablets")),
            Link("integration.webhooks", _l("Webhooks")),
        ),
        about=_l("People and roles, API tokens, station tablets and webhooks."),
    ),
)


@dataclass(frozen=True)
class Item:
    """A link as rendered: ``current`` marks it with aria-current="page"."""

    label: Any
    url: str
    current: bool


@dataclass(frozen=True)
class Nav:
    sections: list[Item] = field(default_factory=list)
    tabs: list[Item] = field(default_factory=list)  # the current section's own tabs
    tabs_label: Any = ""  # the current section's name


_ROLES = frozenset(role.value for role in Role)


def may_open(endpoint: str) -> bool:
    """Whether the current user passes the access marker of ``endpoint``'s view."""
    view = current_app.view_functions.get(endpoint)
    access = getattr(view, "access", None)
    if access == "public":
        return True
    if access not in _ROLES:
        return False  # unknown endpoint, or a station-device view
    user = g.get("user")
    if user is None:
        return False
    return auth.RANK.get(Role(user.role), 0) >= auth.RANK[Role(access)]


def desk_nav() -> Nav:
    """The navigation of this request's page, for the signed-in user (or nobody)."""
    if not has_request_context():
        return Nav()
    blueprint = request.blueprint or ""
    sections: list[Item] = []
    tabs: list[Item] = []
    tabs_label: Any = ""
    for section in SECTIONS:
        if not may_open(section.link.endpoint):
            continue
        here = blueprint in section.blueprints
        sections.append(Item(section.link.label, url_for(section.link.endpoint), here))
        if here:
            tabs = [
                Item(tab.label, url_for(tab.endpoint), request.endpoint == tab.endpoint)
                for tab in section.tabs
                if may_open(tab.endpoint)
            ]
            tabs_label = section.link.label
    return Nav(sections, tabs, tabs_label)


@dataclass(frozen=True)
class Card:
    """A section on the home page: its link, what it is for, its tabs and shortcuts."""

    label: Any
    url: str
    about: Any
    links: list[Item]


def home_cards() -> list[Card]:
    """The sections the current user may open, Home itself aside."""
    cards = []
    for section in SECTIONS:
        if section.link.endpoint == "home.index" or not may_open(section.link.endpoint):
            continue
        links = [
            Item(link.label, link.url(), False)
            for link in (*section.tabs, *section.shortcuts)
            if (link.endpoint, link.args) != (section.link.endpoint, section.link.args)
            and may_open(link.endpoint)
        ]
        cards.append(Card(section.link.label, section.link.url(), section.about, links))
    return cards


def init_app(app: Flask) -> None:
    # A function, not a value: computed only by the pages that include templates/_nav.html.
    app.jinja_env.globals["desk_nav"] = desk_nav
