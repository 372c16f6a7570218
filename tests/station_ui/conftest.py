"""Station tablet fixtures on the shared browser-test ones (``tests/support/browser.py``):
the module's live server (`taktline serve`, private Mosquitto, demo plant) with order
SO-1001 released, and a touch tablet in headless Chromium. A tablet is bound to a
station by its binding link: ``page.goto(station_server.device_link("KIT-1"))``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from server.db import write_session
from server.models import CustomerOrder
from server.orders import service as orders
from tests.support.browser import PageLog, open_page
from tests.support.live_server import LiveServer


@pytest.fixture(scope="module")
def station_server(live_server: LiveServer) -> LiveServer:
    """The module's live server with SO-1001 released: PC-000001... queued at KIT-1."""
    with write_session(live_server.engine) as db:
        order = db.exec(select(CustomerOrder).where(CustomerOrder.number == "SO-1001")).one()
        orders.release(db, order=order, by="e2e setup")
    return live_server


@pytest.fixture
def shots(artifacts_dir: Path) -> Path:
    path = artifacts_dir / "station"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def tablet(
    chromium: Any, page_log: PageLog, request: pytest.FixtureRequest, shots: Path
) -> Iterator[Any]:
    """A fresh 1280x800 touch tablet (its own cookies); a screenshot when the test fails."""
    with open_page(
        chromium,
        request,
        page_log,
        shots=shots,
        viewport={"width": 1280, "height": 800},
        has_touch=True,
        device_scale_factor=1,
    ) as page:
        yield page
