"""``/api/v1/quality``: non-conformances and the control chart of a characteristic
(docs/quality.md). Scope ``quality:read``.

- ``GET /quality/ncrs?status=&station=&cause=``: newest first, at most 200;
- ``GET /quality/checks/<id>/chart``: the I-MR chart's values, limits and Cpk.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from server.api import bp, path_id, problem
from server.api import openapi as oa
from server.db import get_session
from server.models.types import rfc3339
from server.quality import figures, ncr
from server.security import auth

MAX_TEXT = 64


@bp.get("/quality/ncrs")
@auth.require("supervisor", scope="quality:read")
def list_ncrs() -> Any:
    args = {k: request.args.get(k, "").strip() for k in ("status", "station", "cause")}
    too_long = [k for k, v in args.items() if len(v) > MAX_TEXT]
    if too_long:
        return problem(400, f"{too_long[0]} is longer than {MAX_TEXT} characters")
    if args["status"] and args["status"] not in ncr.STATUSES:
        return problem(400, f"status must be one of {', '.join(ncr.STATUSES)}")
    rows = ncr.listing(
        get_session(),
        status=args["status"] or None,
        station=args["station"] or None,
        cause=args["cause"] or None,
    )
    return jsonify(
        ncrs=[
            {
                "ncr": ncr.label(r.ncr),
                "unit": r.unit,
                "station": r.station or None,
                "origin": r.ncr.origin,
                "cause": r.ncr.cause,
                "characteristic": r.ncr.characteristic,
                "value": r.ncr.value,
                "lower": r.ncr.lower,
                "upper": r.ncr.upper,
                "unit_of_measure": r.ncr.unit,
                "status": r.ncr.status,
                "disposition": r.ncr.disposition,
                "disposition_reason": r.ncr.disposition_reason,
                "opened_at": rfc3339(r.ncr.opened_at),
                "closed_at": rfc3339(r.ncr.closed_at),
            }
            for r in rows
        ]
    )


@bp.get("/quality/checks/<check_id>/chart")
@auth.require("supervisor", scope="quality:read")
def check_chart(check_id: str) -> Any:
    number = path_id(check_id)
    if number is None:
        return problem(404, "no such check")
    try:
        check, chart, times = figures.chart(get_session(), check_id=number)
    except LookupError:
        return problem(404, "no such check")
    body: dict[str, Any] = {
        "check": check.code,
        "name": check.name,
        "unit": check.unit,
        "lower": check.lower,
        "upper": check.upper,
        "values": list(chart.values) if chart else [],
        "times": times,
    }
    if chart is not None:
        body.update(
            mean=chart.centre,
            ucl=chart.ucl,
            lcl=chart.lcl,
            mr_bar=chart.mr_bar,
            mr_ucl=chart.mr_ucl,
            sigma=chart.sigma,
            cpk=chart.cpk,
        )
    return jsonify(body)


oa.add_path(
    "/quality/ncrs",
    {
        "get": {
            "summary": "Non-conformances, newest first (at most 200)",
            "tags": ["quality"],
            "parameters": [
                {"name": k, "in": "query", "schema": {"type": "string", "maxLength": MAX_TEXT}}
                for k in ("status", "station", "cause")
            ],
            "responses": {"200": {"description": "the NCRs"}, "400": {"description": "bad filter"}},
        }
    },
)
oa.add_path(
    "/quality/checks/{check_id}/chart",
    {
        "get": {
            "summary": "Individuals and moving-range chart of a measured check, with Cpk",
            "tags": ["quality"],
            "parameters": [
                {"name": "check_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "responses": {
                "200": {"description": "the chart"},
                "404": {"description": "no such check"},
            },
        }
    },
)
