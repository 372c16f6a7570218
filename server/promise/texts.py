"""A promise's reason in the reader's language (Flask-Babel): the plan stores each
reason as data (``kind``, ``params``) with its English words; pages render it here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import format_datetime
from flask_babel import gettext as _

from server.promise.engine import Reason


def _moment(params: dict[str, Any]) -> str:
    at = params.get("at")
    if not at:
        return ""
    moment = datetime.fromisoformat(str(at))
    if params.get("soon"):
        return f"{format_datetime(moment, 'EEEE', rebase=False)} {moment:%H:%M}"
    return f"{moment:%Y-%m-%d %H:%M}"


def describe(reason: dict[str, Any] | Reason | None) -> str:
    """The reason in words, translated (its English text for a kind not known here)."""
    if reason is None:
        return ""
    data = reason.as_dict() if isinstance(reason, Reason) else reason
    kind, p = data.get("kind"), dict(data.get("params") or {})
    if kind == "part":
        return _("%(sku)s: %(qty)s arrive on %(day)s", sku=p["sku"], qty=p["qty"], day=p["day"])
    if kind == "short":
        return _("%(sku)s: %(qty)s short, no receipt scheduled", sku=p["sku"], qty=p["qty"])
    if kind == "capacity":
        return _("%(name)s is full until %(when)s", name=p["name"], when=_moment(p))
    if kind == "calendar":
        return _("The line does not work until %(when)s", when=_moment(p))
    if kind == "assembly":
        return _(
            "Components on hand or reserved; %(minutes)s min of assembly", minutes=p["minutes"]
        )
    if kind == "no_station":
        return _("No station does %(kind)s work", kind=p["kind"])
    if kind == "horizon":
        return _("Not within the next %(days)s days of the line calendar", days=p["days"])
    return str(data.get("text", ""))
