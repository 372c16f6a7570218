"""The JSON API, ``/api/v1``: one blueprint that every area's route module adds to.

Route modules (``server.api.orders``...) import ``bp`` from here, add their views and
describe them in ``server.api.openapi``; ``init_app`` names each of them and registers
the blueprint (a new route module is added there).
Errors are JSON: ``{"error": "...", "problems": [...]}``, 413 (a body over
``MAX_CONTENT_LENGTH``) included. Bodies are read with ``read_json``: JSON nested too
deeply for the parser is a 400, like any other body that is not JSON.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, jsonify, request
from werkzeug.exceptions import BadRequest, HTTPException

from server.api import openapi
from server.models.types import fits_int32
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


class TooDeep(BadRequest):
    description = "the body is nested too deeply"


def read_json() -> Any:
    """The request's JSON body; None when there is none or it is not JSON. JSON nested
    deeper than Python's parser recurses (``[[[[...`` 100,000 deep) raises ``TooDeep``,
    a 400, instead of a RecursionError (a 500)."""
    try:
        return request.get_json(silent=True)
    except RecursionError as exc:
        log.warning("API body nested too deeply from %s", auth.address())
        raise TooDeep() from exc


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    return problem(exc.code or 500, exc.description or exc.name)


@bp.get("/openapi.json")
@auth.public
def openapi_json() -> Any:
    return jsonify(openapi.document())


def path_id(text: str) -> int | None:
    """A row id from the path, ``None`` (answer a JSON 404) for anything else: an
    ``<int:>`` rule would answer ``abc``, ``-1`` or ``2**31`` with Werkzeug's HTML 404,
    and ids are INTEGER columns (32-bit on PostgreSQL)."""
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if fits_int32(number) else None


def init_app(app: Flask) -> None:
    # The route modules decorate ``bp``: they must be loaded before it is registered.
    from server.api import (  # noqa: F401
        admin,
        orders,
        promise,
        quality,
        stations,
        stock,
        trace,
        webhooks,
    )

    app.register_blueprint(bp)
