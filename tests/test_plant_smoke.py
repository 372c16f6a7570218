"""The plant-scale load test's CI smoke (issue 19): ``bench/bench_plant.py --smoke``.

Every part as a real process at once: Mosquitto with per-station logins, 2 ``taktline
web`` (gunicorn), 2 partitioned ``taktline ingest``, 5 stations scanning through real
MQTT clients, their tablets and a line board on SSE; ``kill -9`` of one ingest mid-run.
What must hold is what the plant's users see: every scan answered, every scan applied
once, stock equal to the ledger. Its timings are printed, never asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from tests.support.databases import PG_URL

ROOT = Path(__file__).resolve().parents[1]


def test_plant_smoke_with_an_ingest_killed(tmp_path: Path) -> None:
    db = "sqlite"
    if PG_URL:  # a database of its own, beside the suite's
        url = sa.engine.make_url(PG_URL)
        db = url.set(database=f"{url.database}_plant_smoke").render_as_string(hide_password=False)
    try:
        run = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "bench_plant.py"), "--smoke", "--db", db]
            + ["--workdir", str(tmp_path / "plant")],
            capture_output=True,
            text=True,
            timeout=280,
            cwd=ROOT,
        )
    finally:
        if db != "sqlite":
            drop_database(db)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    assert "faults kill -9 ingest-1" in out
    assert "scans unanswered 0, answered other than accepted 0" in out, out
    assert "reconciled: every scan applied once, stock = ledger" in out, out


def drop_database(url: str) -> None:
    parsed = sa.engine.make_url(url)
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    admin.dispose()
