"""Taktline server: the Flask app factory.

``create_app(test_config=None)`` resolves the settings (server.settings), then calls
``init_app(app)`` on each area of ``areas()``, in that order: each registers its own
blueprint(s) and extensions. Nothing registers itself on import. Background services
(broker, live updates, ingest) are started by ``server.runtime.start``, not here.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

import templates as _templates
from server import settings
from server.models.types import INT32_MAX

log = logging.getLogger(__name__)
# ``<int:...>`` in every URL is at most this: ids are INTEGER columns (32-bit on
# PostgreSQL), and a larger number must match no route (404), not overflow the driver.
MAX_ID = INT32_MAX


def create_app(
    test_config: dict[str, Any] | None = None, *, instance_path: str | None = None
) -> Flask:
    app = Flask(
        __name__,
        instance_path=instance_path or str(Path.cwd() / "instance"),
        instance_relative_config=True,
        template_folder=str(Path(_templates.__file__).parent),
    )
    app.config.from_mapping(settings.load(Path(app.instance_path), test_config))
    # MAX_CONTENT_LENGTH (a setting) is Flask's own: a bigger body is a 413.
    app.url_map.converters["int"] = partial(IntegerConverter, max=MAX_ID)  # type: ignore[assignment]
    logging.basicConfig(
        level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    for area in areas():
        area.init_app(app)
    return app


def areas() -> tuple[Any, ...]:
    """Every area of the app, in wiring order (each module has ``init_app(app)``).

    Imported here, not at module level, so ``import server.models`` stays light."""
    from server import admin, api, db, home, i18n, navigation
    from server.audit import views as audit_views
    from server.board import views as board_views
    from server.dispatch import views as dispatch_views
    from server.ingest import views as ingest_views
    from server.integration import views as integration_views
    from server.inventory import views as stock_views
    from server.messaging import live
    from server.operations import views as operations_views
    from server.orders import views as order_views
    from server.promise import views as promise_views
    from server.quality import views as quality_views
    from server.security import auth, headers
    from server.security import views as security_views
    from server.trace import views as trace_views
    from station import views as station_views

    return (
        db,
        i18n,
        auth,
        headers,
        navigation,
        security_views,
        home,
        admin,
        audit_views,
        ingest_views,
        integration_views,
        stock_views,
        live,
        api,
        operations_views,
        order_views,
        promise_views,
        quality_views,
        dispatch_views,
        station_views,
        trace_views,
        board_views,
    )
