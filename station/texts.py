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

from flask_babel import gettext

from station.messages import TEMPLATES, safe


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
    return str(gettext(TEMPLATES[code], **safe(params)))
