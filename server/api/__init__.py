"""The JSON API, ``/api/v1``: one blueprint that every area's route module adds to.

Route modules (``server.api.orders``...) import ``bp`` from here, add their views and
describe them in ``server.api.openapi``; ``init_app`` names each of them and registers
the blueprint (a new route module is added there).
Errors are JSON: ``{"error": "...", "problems": [...]}``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, jsonify
from werkzeug.exceptions import HTTPException

from server.api import openapi
from server.security import auth

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__, url_prefix="/api/v1")


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
    # The route modules decorate ``bp``: they must be loaded before it is registered.
    from server.api import orders, stations, trace  # noqa: F401

    app.register_blueprint(bp)
