"""Flask-Babel: every user-facing string goes through ``_()``; English and French ship.

The language follows the signed-in operator; before sign-in, the ``lang`` cookie or
``DEFAULT_LOCALE``. Catalogs live in ``server/translations`` (see docs/i18n.md).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, request
from flask_babel import Babel, get_locale

from server import plant_time

LANGUAGES = ("en", "fr")


def select_locale() -> str:
    # A station tablet speaks the language of the operator signed in at the station
    # (set by station.views before rendering); None there means "nobody signed in".
    station_locale = g.get("station_locale")
    if station_locale in LANGUAGES:
        return str(station_locale)
    user = g.get("user")
    if user is not None and getattr(user, "locale", None) in LANGUAGES:
        return str(user.locale)
    cookie = request.cookies.get("lang")
    if cookie in LANGUAGES:
        return str(cookie)
    from flask import current_app

    return str(current_app.config["DEFAULT_LOCALE"])


def init_app(app: Flask) -> None:
    Babel(
        app,
        locale_selector=select_locale,
        timezone_selector=plant_time.zone_name,  # flask_babel.format_datetime too
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, get_locale=get_locale)
    plant_time.init_app(app)  # times shown in the plant's time zone
