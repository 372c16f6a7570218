"""Station messages in the reader's language (Flask-Babel), from code and parameters.

``station.messages`` holds the codes and English templates and stays free of Flask;
this adapter renders them for a person: ``lazy`` (translated when the template is
rendered, in the request's locale) and ``translated`` (now). Stored events are
rendered the same way from ``Event.code`` and ``Event.params``, whenever they are read.

Both give plain text, never markup: the parameters are outside data (a scanned label,
an unknown badge, a serial or lot number, an andon reason), so Jinja must escape the
whole message. Flask-Babel's own lazy string has ``__html__`` (Jinja would take it as
safe markup, parameters included), which is why ``lazy`` does not use it.
"""

from __future__ import annotations

from typing import Any

from babel.lists import format_list
from flask_babel import get_locale, gettext

from station.messages import ANDON_REASONS, DEFECT_REASONS, TEMPLATES, safe

# Parameters that hold a code with a label of its own, rendered as that label.
_LABELS: dict[str, dict[str, str]] = {
    "andon_raised": dict(ANDON_REASONS),
    "defect_recorded": dict(DEFECT_REASONS),
    "unit_held": dict(DEFECT_REASONS),
}


class Text:
    """A station message rendered when it is turned into text, in the locale of that
    moment. Deliberately no ``__html__``: templates escape it like any string."""

    __slots__ = ("code", "params")

    def __init__(self, code: str, params: dict[str, Any] | None = None) -> None:
        self.code = code
        self.params = dict(params or {})

    def __str__(self) -> str:
        return translated(self.code, self.params)

    def __repr__(self) -> str:
        return f"Text({self.code!r}, {self.params!r})"


def lazy(code: str, params: dict[str, Any] | None = None) -> Text:
    """The message as text translated when rendered (in the request's locale then)."""
    return Text(code, params)


def translated(code: str, params: dict[str, Any] | None = None) -> str:
    """The message translated now (needs a Flask app or request context), as plain
    text: a template escapes it, parameters included."""
    return str(gettext(TEMPLATES[code], **safe(localized(code, params))))


def localized(code: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """``params`` ready for the reader: a reason code as its translated label, a list of
    parts joined the reader's way ("A, B ou C"), not with the English " or "."""
    params = dict(params or {})
    labels = _LABELS.get(code)
    reason = params.get("reason")
    if labels and isinstance(reason, str) and reason in labels:
        params["reason"] = gettext(labels[reason])
    names = params.get("needed_list")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        params["needed"] = format_list(names, style="or", locale=str(get_locale() or "en"))
    return params


def label(pairs: tuple[tuple[str, str], ...], code: str) -> str:
    """The translated label of ``code`` in ``pairs`` (``ANDON_REASONS``...), else the
    code itself (a free-text reason sent over MQTT or the API)."""
    return gettext(dict(pairs)[code]) if code in dict(pairs) else code
