"""Assembly-time statistics (pure) and the report over generated history."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlmodel import Session

from server.board.figures import day_figures
from server.tools.generate import generate
from server.trace.timing import assembly_time, percentile, summarize
from tests.support.apps import login

NOW = datetime(2026, 3, 4, 20, 0, tzinfo=UTC)


def test_percentile_and_summary() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.5 and percentile(values, 90) == pytest.approx(9.1)
    s = summarize([300, 100, 200], standard=150)
    assert (s.n, s.mean, s.p50, s.minimum, s.maximum) == (3, 200, 200, 100, 300)
    assert s.versus_standard == pytest.approx(200 / 150)
    assert sum(c for _, _, c in s.histogram) == 3 and s.histogram[0][0] == 100
    empty = summarize([], standard=60)
    assert empty.n == 0 and math.isnan(empty.mean) and empty.histogram == ()
    same = summarize([42, 42], standard=0)
    assert same.versus_standard is None and sum(c for _, _, c in same.histogram) == 2


@pytest.fixture
def history(demo_app: Flask) -> Flask:
    generate(demo_app.extensions["taktline.engine"], units=400, days=2, seed=5, now=NOW)
    return demo_app


def test_assembly_time_report_groups_and_excludes_pauses(history: Flask) -> None:
    start = datetime(2026, 3, 3, tzinfo=UTC)
    with Session(history.extensions["taktline.engine"]) as db:
        report = assembly_time(db, start=start, end=start + timedelta(days=2))
    stations = {g.key: g.stats for g in report.by_station}
    assert set(stations) >= {
        ("KIT", "KIT-1"),
        ("BRD", "BRD-1"),
        ("BRD", "BRD-2"),
        ("FIN", "FIN-1"),
        ("TST", "TST-1"),
    }
    kit = stations[("KIT", "KIT-1")]
    assert kit.standard == 240 and kit.minimum <= kit.p50 <= kit.p90 <= kit.maximum
    # Generated work takes about the standard time (lognormal around it) plus operator pace,
    # and pauses never count: the mean stays well below standard + the longest pause.
    assert 0.8 < kit.versus_standard < 1.6
    configs = {g.key: g.stats for g in report.by_configuration}
    assert ("PC", "i5 mem16 mt ssd512") in configs
    whole = configs[("PC", "i5 mem16 mt ssd512")]
    assert whole.standard == 240 + 420 + 480 + 360 and whole.mean > 1000
    operators = {g.key[1] for g in report.by_operator}
    assert operators <= {"Alice Martin", "Bruno Lefèvre", "Chen Wei"} and len(operators) >= 2


def test_board_figures_over_generated_history(history: Flask) -> None:
    with Session(history.extensions["taktline.engine"]) as db:
        f = day_figures(db, day=NOW.date() - timedelta(days=1), now=NOW)
    assert f.completed > 100 and sum(f.hourly) == f.completed
    assert f.first_pass_yield is not None and 0.8 < f.first_pass_yield <= 1.0
    assert f.orders_completed > 20 and f.on_time_rate is not None and f.on_time_rate < 1
    assert f.lead_time_hours["p50"] is not None and f.lead_time_hours["p50"] > 24


def test_assembly_time_page(history: Flask) -> None:
    client = history.test_client()
    login(client, "supervisor")
    page = client.get("/reports/assembly-time?from=2026-03-03&to=2026-03-04")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-key="KIT|KIT-1"' in html
    assert 'data-key="PC|i5 mem16 mt ssd512"' in html
    assert client.get("/reports/assembly-time?from=2026-03-05&to=2026-03-01").status_code == 400
    assert client.get("/reports/assembly-time?from=yesterday").status_code == 400
