"""An audit entry's detail as a person reads it: labelled lines, not JSON.

``lines(entry)`` turns the stored ``detail`` (a JSON object, kept as is for the
exports) into ``(label, text)`` pairs in the reader's language: known keys get a
label, others their name with spaces; yes/no for booleans; ``before → after`` for a
change; lists joined; a station event's message code rendered as its message.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from station import texts
from station.messages import TEMPLATES

LABELS: dict[str, Any] = {
    "andon_id": _l("Andon call"),
    "cleared": _l("Cleared"),
    "code": _l("Station message"),
    "counts": _l("Counts"),
    "customer": _l("Customer"),
    "due_date": _l("Due date"),
    "event_types": _l("Event types"),
    "file": _l("File"),
    "from": _l("From"),
    "label": _l("Label"),
    "lines": _l("Lines"),
    "lot": _l("Lot"),
    "movement": _l("Stock movement"),
    "msg_id": _l("Message id"),
    "name": _l("Name"),
    "on_hand": _l("On hand"),
    "operations": _l("Operations"),
    "override_reason": _l("Override reason"),
    "password": _l("Password set"),
    "pin": _l("PIN set"),
    "previous": _l("Previous"),
    "previous_status": _l("Previous status"),
    "priority": _l("Priority"),
    "quantity": _l("Quantity"),
    "reason": _l("Reason"),
    "replayed": _l("Replayed"),
    "role": _l("Role"),
    "scopes": _l("Scopes"),
    "serial": _l("Serial"),
    "short": _l("Short"),
    "sku": _l("Part"),
    "station": _l("Station"),
    "status": _l("Status"),
    "to": _l("To"),
    "unit": _l("Unit"),
    "units": _l("Units released"),
    "unreserved": _l("Unreserved"),
    "url": _l("URL"),
    "work_orders": _l("Work orders"),
}
# Actions whose every value is a [before, after] pair; keys that are one anywhere.
CHANGE_ACTIONS = frozenset({"user.update"})
CHANGE_KEYS = frozenset({"on_hand"})


def lines(action: str, detail: Any) -> list[tuple[str, str]]:
    """``(label, text)`` for each field of ``detail``, in its stored order."""
    if not isinstance(detail, dict):
        return [] if detail in (None, "", [], {}) else [("", text(detail))]
    out: list[tuple[str, str]] = []
    if action.startswith("station.") and detail.get("code") in TEMPLATES:
        params = {k: v for k, v in detail.items() if k not in ("code", "msg_id")}
        out.append((str(LABELS["code"]), texts.translated(detail["code"], params)))
        if detail.get("msg_id"):
            out.append((str(LABELS["msg_id"]), str(detail["msg_id"])))
        return out
    for key, value in detail.items():
        label = str(LABELS.get(key) or key.replace("_", " ").capitalize())
        if (action in CHANGE_ACTIONS or key in CHANGE_KEYS) and _is_pair(value):
            out.append((label, f"{text(value[0])} → {text(value[1])}"))
        else:
            out.append((label, text(value)))
    return out


def text(value: Any) -> str:
    """One value as words: "—" for nothing, yes/no, lists and objects inline."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dict):
        return ", ".join(f"{k}: {text(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list):
        joiner = "; " if any(isinstance(v, dict | list) for v in value) else ", "
        return joiner.join(text(v) for v in value) or "—"
    return str(value)


def _is_pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2
