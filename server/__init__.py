"""Taktline server: the Flask app factory.

``create_app(test_config=None)`` resolves the settings (server.settings), wires each
resource with its own ``init_app`` and registers the blueprints.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

import templates as _templates
from server import settings

log = logging.getLogger(__name__)


def create_app(test_config: dict[str, Any] | None = None, *,
               instance_path: str | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=instance_path or str(Path.cwd() / "instance"),
        instance_relative_config=True,
        template_folder=str(Path(_templates.__file__).parent),
    )
    app.config.from_mapping(settings.load(Path(app.instance_path), test_config))
    logging.basicConfig(level=app.config["LOG_LEVEL"],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from server import admin, audit_views, auth, db, i18n, security, views

    db.init_app(app)
    i18n.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    views.init_app(app)
    admin.init_app(app)
    audit_views.init_app(app)
    from server.inventory import views as stock_views

    stock_views.init_app(app)

    from server import ingest, live  # noqa: F401 - ingest registers its runtime starter

    live.init_app(app)
    from server import api

    api.init_app(app)  # /api/v1 (issue 3; others add route modules)

    from server.dispatch import views as dispatch_views
    from server.orders import views as order_views

    order_views.init_app(app)
    dispatch_views.init_app(app)

    from station import views as station_views

    station_views.init_app(app)

    from server.board import views as board_views
    from server.trace import views as trace_views

    trace_views.init_app(app)
    board_views.init_app(app)
    return app
