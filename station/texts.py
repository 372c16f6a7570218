"""Station messages in the reader's language (Flask-Babel), from code and parameters.

``station.messages`` holds the codes and English templates and stays free of Flask;
this adapter renders them for a person: ``lazy`` (translated when the template is
rendered, in the request's locale) and ``translated`` (now). Stored events are
rendered the same way from ``Event.code`` and ``Event.params``, whenever they are read.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext, lazy_gettext

from station.messages import TEMPLATES, safe


def lazy(code: str, params: dict[str, Any] | None = None) -> Any:
    """The message as a lazy translatable string (rendered in the request's locale)."""
    return lazy_gettext(TEMPLATES[code], **safe(params))


def translated(code: str, params: dict[str, Any] | None = None) -> str:
    """The message translated now (needs a Flask app or request context)."""
    return str(gettext(TEMPLATES[code], **safe(params)))
