"""The JSON API, ``/api/v1``: one blueprint that every area's route module adds to.

Route modules (``server.api.orders``...) import ``bp`` from here, add their views and
describe them in ``server.api.openapi``; ``init_app`` imports them and registers the
blueprint. Errors are JSON: ``{"error": "...", "problems": [...]}``.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from flask import Blueprint, Flask, jsonify
from werkzeug.exceptions import HTTPException

from server import auth
from server.api import openapi

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Route modules; others add theirs here (each imports ``bp`` and decorates views).
ROUTE_MODULES = ["server.api.orders", "server.api.scans", "server.api.trace"]


def problem(status: int, message: str, problems: list[str] | None = None) -> Any:
    body: dict[str, Any] = {"error": message}
    if problems:
        body["problems"] = problems
    response = jsonify(body)
    response.status_code = status
    return response


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    return problem(exc.code or 500, exc.description or exc.name)


@bp.get("/openapi.json")
@auth.public
def openapi_json() -> Any:
    return jsonify(openapi.document())


def init_app(app: Flask) -> None:
    for name in ROUTE_MODULES:
        importlib.import_module(name)
    app.register_blueprint(bp)
