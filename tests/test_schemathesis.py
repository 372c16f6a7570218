"""The JSON API against its own OpenAPI document (``/api/v1/openapi.json``), fuzzed by
Schemathesis through WSGI on the in-process app (the demo plant on SQLite, SO-1001
released, so KIT-1 has work and units PC-000001/2 exist).

Every operation gets a bounded number of generated requests (valid and invalid bodies,
odd path and query values), sent with an API token of scope ``*``. Path parameters are
sometimes steered to real stations, orders and units, and station bodies to real
badges, barcodes and actions, so the workflow runs and not only the 404s. Checked: no
response is a 500; every status code, content type and JSON body is the one the
document describes. The whole run stays well under a minute on a 2-core machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import select

from server.db import write_session
from server.models import CustomerOrder
from server.orders import service as orders
from server.security import auth
from tests.support.apps import make_app

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
REAL = {
    "code": ["KIT-1", "BRD-1", "FIN-1", "TST-1"],
    "number": ["SO-1001", "SO-1002", "SO-1003"],
    "serial": ["PC-000001", "PC-000002"],
}
STATION_BODIES = [
    {"type": "action", "action": "sign_in", "badge": "OP1001"},
    {"type": "action", "action": "start"},
    {"type": "action", "action": "andon", "reason": "<b hx-post=/x>x</b>"},
    {"type": "action", "action": "defect", "reason": "damaged", "disposition": "scrap"},
    {"type": "action", "action": "complete"},
    {"type": "scan", "data": "OP1001"},
    {"type": "scan", "data": "9506000001104"},
    {"type": "scan", "data": "(01)09506000001128(21)P45X00001"},
    {"type": "scan", "data": '=1+cmd|"/c calc"!A1'},
]


def _document() -> dict[str, Any]:
    """The document ``/api/v1/openapi.json`` serves: every area describes its routes
    when an app is wired, so one app is built (on a throwaway database) first, whatever
    ran before. Loaded at collection, since Schemathesis' lazy fixture loader does not
    run under pytest 9; the requests still go to each test's own app (``app=``)."""
    import tempfile
    from pathlib import Path

    from server.api import openapi
    from tests.support.apps import make_app

    folder = Path(tempfile.mkdtemp(prefix="openapi-"))
    make_app(f"sqlite:///{folder / 'doc.db'}", folder)
    return openapi.document()


schema = schemathesis.openapi.from_dict(_document())


@schema.hook("flatmap_path_parameters")
def _real_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
    choices = [st.just(path_parameters)]
    for name, values in REAL.items():
        if path_parameters and name in path_parameters:
            choices.append(st.sampled_from(values).map(lambda v, n=name: {**path_parameters, n: v}))
    return st.one_of(*choices)


def _mostly(generated: Any, real: Any) -> Any:
    """``real`` three times in four, else the generated value."""
    return st.integers(0, 3).flatmap(lambda n: st.just(generated) if n == 0 else real)


@schema.hook("flatmap_body")
def _real_bodies(context: Any, body: Any) -> Any:
    """Sometimes a body that reaches the workflow or the order intake (real badges,
    barcodes, actions; a valid order whose priority and number are generated)."""
    path = context.operation.path
    if not isinstance(body, dict):
        return st.just(body)
    if path.startswith("/stations/{code}/"):
        scans = path.endswith("/scans")
        real = [b for b in STATION_BODIES if not scans or b["type"] == "scan"]
        return _mostly(
            body,
            st.tuples(st.sampled_from(real), st.uuids()).map(
                lambda pair: {
                    **{k: v for k, v in pair[0].items() if not (scans and k == "type")},
                    "msg_id": str(pair[1]),
                }
            ),
        )
    if path == "/orders" and context.operation.method.upper() == "POST":
        return _mostly(
            body,
            st.tuples(st.uuids(), st.integers()).map(
                lambda pair: {
                    "number": "SO-" + pair[0].hex[:8],
                    "customer": "Fuzz",
                    "due_date": "2030-01-01",
                    "priority": pair[1],
                    "lines": [
                        {"product": "PC", "quantity": 1, "options": ["i5", "mem16", "ssd512", "mt"]}
                    ],
                }
            ),
        )
    return st.just(body)


@pytest.fixture
def api_app(demo_db_url: str, tmp_path: Path) -> Flask:
    app = make_app(demo_db_url, tmp_path)
    with write_session(app.extensions["taktline.engine"]) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(db, order=order, by="schemathesis")
    return app


@pytest.fixture
def api_headers(api_app: Flask) -> dict[str, str]:
    with write_session(api_app.extensions["taktline.engine"]) as db:
        token = auth.issue_api_token(db, name="schemathesis", scopes=["*"], by=None)
    return {"Authorization": f"Bearer {token}"}


# One test per operation with its own node id ("GET /orders"), so pytest-xdist's
# workers each run theirs: ``@schema.parametrize()`` gives every operation the same id,
# and xdist ran 2 of the 37.
OPERATIONS = [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_api_matches_its_openapi_document(
    operation: Any, api_app: Flask, api_headers: dict[str, str]
) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(app=api_app, headers=api_headers, checks=CHECKS)

    run()


def test_the_fuzzed_document_is_the_one_the_api_serves(api_app: Flask) -> None:
    served = api_app.test_client().get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.json == _document()
