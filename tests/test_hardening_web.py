"""Web hardening (issue 14): outside data never becomes markup, a formula or a header;
oversized, deeply nested and out-of-range input gets a 4xx, never a 500.

- Station messages carry scanned text, badges, serial and lot numbers, andon reasons
  and dispositions: every way the tablet renders them (the direct answer, the page,
  the SSE snapshot) escapes them.
- Every CSV export neutralises formulas (one writer, ``server.exports``).
- The request size limit (``MAX_CONTENT_LENGTH``), JSON nested 100,000 deep, ``seq``
  beyond 64 bits, huge page numbers and ids, CR/LF and quotes in a download's name.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, func, select

from server.db import write_session
from server.exports import cell, to_csv
from server.ingest.payload import InvalidPayload, envelope
from server.models import AndonCall, CustomerOrder, Station
from server.orders import service as orders
from server.security import auth
from tests.support.apps import login, make_app

HX = {"HX-Request": "true"}
HOSTILE = "<b hx-post=/station/KIT-1/andon hx-trigger=load>x</b>"
IMG = "<img src=x onerror=alert(1)>"
FORMULA = '=1+cmd|"/c calc"!A1'


@pytest.fixture
def app(demo_db_url: str, tmp_path: Path) -> Flask:
    app = make_app(demo_db_url, tmp_path, STATION_HEARTBEAT_SECONDS=0.2)
    with write_session(app.extensions["taktline.engine"]) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(db, order=order, by="test")
    return app


@pytest.fixture
def tablet(app: Flask) -> FlaskClient:
    client = app.test_client()
    with write_session(app.extensions["taktline.engine"]) as db:
        row = db.exec(select(Station).where(Station.code == "KIT-1")).one()
        token = auth.issue_device_token(db, station=row, by=None, label="test tablet")
    assert client.get(f"/station/bind?token={token}").status_code == 303
    return client


def api_token(app: Flask, *scopes: str) -> dict[str, str]:
    with write_session(app.extensions["taktline.engine"]) as db:
        token = auth.issue_api_token(db, name="hardening", scopes=list(scopes), by=None)
    return {"Authorization": f"Bearer {token}"}


def banner_html(html: str) -> str:
    match = re.search(r'<span class="banner-text">(.*?)</span>', html, re.S)
    assert match, html[:800]
    return match.group(1)


def first_snapshot(client: FlaskClient) -> str:
    response = client.get("/station/KIT-1/events")
    try:
        text = ""
        for chunk in response.response:  # type: ignore[attr-defined]
            text += chunk.decode() if isinstance(chunk, bytes) else chunk
            if "event: snapshot" in text and text.rstrip(" ").endswith("\n\n"):
                return text
    finally:
        response.close()
    raise AssertionError(text)


def andon_calls(app: Flask) -> int:
    with Session(app.extensions["taktline.engine"]) as db:
        return int(db.exec(select(func.count()).select_from(AndonCall)).one())


# -- station messages: text, never markup ---------------------------------------------


def assert_escaped(html: str, payload: str) -> None:
    text = banner_html(html)
    assert "<" not in text and ">" not in text, text
    escaped = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in text.replace("&#34;", '"').replace("&#39;", "'"), text


@pytest.mark.parametrize("payload", [HOSTILE, IMG])
def test_a_hostile_badge_scan_is_text_in_every_rendering(
    app: Flask, tablet: FlaskClient, payload: str
) -> None:
    direct = tablet.post("/station/KIT-1/scan", data={"data": payload}, headers=HX)
    assert direct.status_code == 200
    assert_escaped(direct.text, payload)  # the answer htmx swaps in
    whole = tablet.post("/station/KIT-1/scan", data={"data": payload})
    assert_escaped(whole.text, payload)  # a form post without htmx: the whole page
    assert_escaped(tablet.get("/station/KIT-1").text, payload)  # the page re-rendered
    assert_escaped(tablet.get("/station/KIT-1/banner", headers=HX).text, payload)
    assert_escaped(first_snapshot(tablet), payload)  # the live stream (SSE)
    assert andon_calls(app) == 0


def test_hostile_parts_reasons_and_dispositions_are_text(app: Flask, tablet: FlaskClient) -> None:
    tablet.post("/station/KIT-1/scan", data={"data": "OP1001"}, headers=HX)
    tablet.post("/station/KIT-1/start", headers=HX)
    scanned = tablet.post("/station/KIT-1/scan", data={"data": IMG}, headers=HX)
    assert_escaped(scanned.text, IMG)  # unknown_barcode: %(data)s
    andon = tablet.post("/station/KIT-1/andon", data={"reason": HOSTILE}, headers=HX)
    assert_escaped(andon.text, HOSTILE)  # andon_raised: %(reason)s
    defect = tablet.post(
        "/station/KIT-1/defect",
        data={"reason": "damaged", "disposition": IMG},
        headers=HX,
    )
    assert_escaped(defect.text, IMG)  # bad_disposition: %(disposition)s


def test_station_texts_are_plain_text_not_markup(app: Flask) -> None:
    from station import texts

    with app.test_request_context():
        lazy = texts.lazy("unknown_barcode", {"data": IMG})
        assert not hasattr(lazy, "__html__")
        assert str(lazy) == f"Unknown barcode {IMG}: not a part of this plant."
        assert not hasattr(texts.translated("unknown_barcode", {"data": IMG}), "__html__")


# -- CSV: one writer, formulas neutralised ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (FORMULA, "'" + FORMULA),
        ("+1", "'+1"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("a=1", "a=1"),
        (-3, "-3"),
        (1.5, "1.5"),
        (None, ""),
    ],
)
def test_csv_cells_are_neutralised(value: Any, written: str) -> None:
    assert cell(value) == written
    rows = list(csv.reader(io.StringIO(to_csv(["x"], [[value]]))))
    assert rows == [["x"], [written]]


def test_audit_csv_neutralises_an_order_number(app: Flask) -> None:
    client = app.test_client()
    login(client, "supervisor")
    body = {
        "number": FORMULA[:32],
        "customer": "=HYPERLINK(1)",
        "due_date": "2030-01-01",
        "lines": [{"product": "PC", "quantity": 1, "options": ["i5", "mem16", "ssd512", "mt"]}],
    }
    assert client.post("/api/v1/orders", json=body).status_code == 201
    exported = client.get("/audit/export.csv?entity=order")
    assert exported.status_code == 200
    records = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    mine = [r for r in records if FORMULA[:32] in r["entity_id"]]
    assert mine and all(r["entity_id"] == "'" + FORMULA[:32] for r in mine)
    for record in records:
        for value in record.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), record


def test_trace_csv_neutralises_tab_and_cr(app: Flask) -> None:
    from server.trace import export

    text = export.to_csv(["a", "b", "c"], [["\t=1", "\r=2", "=3"]])
    assert list(csv.reader(io.StringIO(text)))[1] == ["'\t=1", "'\r=2", "'=3"]


# -- request size, nesting, numbers ------------------------------------------------------


def test_a_body_over_the_limit_is_refused_with_413(app: Flask) -> None:
    headers = api_token(app, "stations:write", "orders:write")
    client = app.test_client()
    big = json.dumps({"msg_id": "big", "data": "x" * (10 * 1024 * 1024)})
    response = client.post(
        "/api/v1/stations/KIT-1/scans",
        data=big,
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 413
    assert response.is_json and "error" in response.json  # type: ignore[operator]
    page = client.post("/login", data={"username": "x" * (2 * 1024 * 1024), "password": "y"})
    assert page.status_code == 413


def test_the_limit_is_a_setting(demo_db_url: str, tmp_path: Path) -> None:
    small = make_app(demo_db_url, tmp_path, MAX_CONTENT_LENGTH=1000)
    assert small.config["MAX_CONTENT_LENGTH"] == 1000
    headers = api_token(small, "stations:write")
    response = small.test_client().post(
        "/api/v1/stations/KIT-1/scans",
        json={"msg_id": "m", "data": "x" * 2000},
        headers=headers,
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    "path", ["/api/v1/stations/KIT-1/scans", "/api/v1/stations/KIT-1/events", "/api/v1/orders"]
)
def test_json_nested_100000_deep_is_a_400(app: Flask, path: str) -> None:
    headers = api_token(app, "stations:write", "orders:write")
    deep = "[" * 100_000 + "]" * 100_000
    response = app.test_client().post(
        path, data=deep, content_type="application/json", headers=headers
    )
    assert response.status_code == 400, response.text[:300]
    assert response.is_json


@pytest.mark.parametrize(
    "path", ["/api/v1/orders/SO-1002/release", "/api/v1/orders/SO-1002/cancel"]
)
def test_deep_json_on_order_actions_is_a_400(app: Flask, path: str) -> None:
    headers = api_token(app, "orders:write")
    deep = '{"a":' * 50_000 + "1" + "}" * 50_000
    response = app.test_client().post(
        path, data=deep, content_type="application/json", headers=headers
    )
    assert response.status_code == 400, response.text[:300]


@pytest.mark.parametrize("seq", [2**63, 2**70, -1])
def test_seq_beyond_64_bits_is_a_bad_payload(app: Flask, seq: int) -> None:
    with pytest.raises(InvalidPayload, match="seq"):
        envelope({"msg_id": "s", "seq": seq, "data": "x"}, kind="scan")
    headers = api_token(app, "stations:write")
    response = app.test_client().post(
        "/api/v1/stations/KIT-1/scans",
        json={"msg_id": f"seq-{seq}", "seq": seq, "data": "OP1001"},
        headers=headers,
    )
    assert response.status_code == 400
    assert response.json is not None and response.json["code"] == "bad_payload"


def test_the_largest_seq_is_taken(app: Flask) -> None:
    env = envelope({"msg_id": "s", "seq": 2**63 - 1, "data": "x"}, kind="scan")
    assert env.seq == 2**63 - 1
    headers = api_token(app, "stations:write")
    response = app.test_client().post(
        "/api/v1/stations/KIT-1/scans",
        json={"msg_id": "seq-max", "seq": 2**63 - 1, "data": "OP1001"},
        headers=headers,
    )
    assert response.status_code == 200, response.text[:300]


@pytest.mark.parametrize("page", ["1e40", str(10**40), "-5", "abc", str(2**63)])
def test_audit_page_numbers_are_bounded(app: Flask, page: str) -> None:
    client = app.test_client()
    login(client, "supervisor")
    response = client.get(f"/audit/?page={page}")
    assert response.status_code in (200, 400), response.status_code


def test_an_order_priority_beyond_64_bits_is_refused(app: Flask) -> None:
    headers = api_token(app, "orders:write")
    body = {
        "number": "SO-BIG",
        "customer": "Big",
        "due_date": "2030-01-01",
        "priority": 2**70,
        "lines": [{"product": "PC", "quantity": 1, "options": ["i5", "mem16", "ssd512", "mt"]}],
    }
    response = app.test_client().post("/api/v1/orders", json=body, headers=headers)
    assert response.status_code in (400, 422), response.text[:300]


@pytest.mark.parametrize(
    "path",
    [
        "/board/andon/99999999999999999999999/ack",
        "/ops/99999999999999999999999/hold",
        "/lots/99999999999999999999999/adjust",
        "/admin/api-tokens/99999999999999999999999/revoke",
    ],
)
def test_ids_beyond_64_bits_in_urls_are_not_found(app: Flask, path: str) -> None:
    client = app.test_client()
    login(client, "admin")
    assert client.post(path, data={}).status_code == 404


# -- downloads: the file name is a header -------------------------------------------------


@pytest.mark.parametrize(
    "lot", ['a"b', "a\r\nSet-Cookie: x=1", "lot;name=evil", "lötß", "a\\b", "a/b/../c"]
)
def test_trace_download_names_are_sanitised(app: Flask, lot: str) -> None:
    client = app.test_client()
    login(client, "supervisor")
    response = client.get("/trace", query_string={"part": "FAN-120", "lot": lot, "format": "csv"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers or "x=1" not in response.headers["Set-Cookie"]
    disposition = response.headers["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    match = re.fullmatch(
        r"attachment; filename=\"([^\"\\]*)\"; filename\*=UTF-8''(\S+)", disposition
    )
    assert match, disposition
    fallback, encoded = match.groups()
    assert fallback.isascii() and fallback.endswith(".csv") and "/" not in fallback
    from urllib.parse import unquote

    assert unquote(encoded).endswith(".csv") and "/" not in unquote(encoded)
    if lot == "lötß":
        assert "lötß" in unquote(encoded)
