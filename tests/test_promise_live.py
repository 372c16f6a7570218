"""Promise dates over real HTTP against `taktline serve` (waitress, a private Mosquitto,
the demo plant): the order form's promise follows the options, and a station taken
down flags the orders it breaks on MQTT."""

from __future__ import annotations

import http.cookiejar
import json
import re
import threading
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt

from tests.support.live_server import LiveServer


class Browser:
    """Cookies and the CSRF token, as a browser (or htmx) sends them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.csrf = ""

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as r:
            html: str = r.read().decode()
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        if found:
            self.csrf = found.group(1)
        return html

    def post(self, path: str, data: list[tuple[str, str]], htmx: bool = False) -> tuple[int, str]:
        body = urllib.parse.urlencode([*data, ("csrf_token", self.csrf)]).encode()
        request = urllib.request.Request(self.base + path, data=body, method="POST")
        if htmx:
            request.add_header("HX-Request", "true")
        try:
            with self.opener.open(request, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


def test_the_order_form_promise_and_flags_over_http_and_mqtt(live_server: LiveServer) -> None:
    web = Browser(live_server.url)
    web.get("/login")
    status, _ = web.post("/login", [("username", "supervisor"), ("password", "supervisor")])
    assert status == 200  # followed the redirect
    page = web.get("/orders/new")
    assert 'id="promise"' in page and 'hx-post="/orders/new/promise"' in page
    base = [("product", "PC"), ("quantity", "1"), ("priority", "0"), ("due_date", "2030-01-01")]

    def promise(options: list[str], quantity: str = "1") -> str:
        data = [(k, quantity if k == "quantity" else v) for k, v in base]
        status, html = web.post(
            "/orders/new/promise", data + [("options", o) for o in options], htmx=True
        )
        assert status == 200
        return html

    assert "Choose the options" in promise(["mt"])
    on_hand = promise(["i7", "mem32", "ssd1t", "mt"])
    assert "Ships on" in on_hand and 'data-reason="part"' not in on_hand
    arrival = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    waits = promise(["i7", "mem32", "ssd1t", "mt", "gpu4080"], quantity="4")
    assert f"GPU-4080: 4 arrive on {arrival}" in waits

    got: list[dict[str, Any]] = []
    subscribed, five = threading.Event(), threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="promise-watch")

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        got.append(json.loads(msg.payload))
        if len(got) >= 5:
            five.set()

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", live_server.mqtt_port)
    client.subscribe("taktline/PLT1/promise/flag", qos=1)
    client.loop_start()
    try:
        assert subscribed.wait(10)
        web.get("/calendar/")
        status, html = web.post(
            "/calendar/stations/TST-1/down", [("reason", "burn-in rack"), ("hours", "200")]
        )
        assert status == 200 and "Promises no longer met" in html
        assert five.wait(15), got
    finally:
        client.loop_stop()
        client.disconnect()
    assert sorted(m["order"] for m in got) == [
        "SO-1001",
        "SO-1002",
        "SO-1003",
        "SO-1004",
        "SO-1005",
    ]
    assert all(m["flagged"] and m["trigger"] == "station TST-1 down" for m in got)
    listed = web.get("/orders/")
    assert listed.count('data-flagged="1"') == 5
