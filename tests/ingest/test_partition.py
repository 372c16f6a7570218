"""Partitioned ingest (issue 19): each ingest takes only its lines' events with its own
persistent session; moving a partition to a new process with the same session loses
nothing. On a private Mosquitto, SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from server.db import dispose_engine, get_engine, write_session
from server.ingest import partition
from server.ingest.partition import Partition, owner
from server.ingest.worker import Ingest
from server.models import Line, Site, Station
from tests.support.apps import CliRunner, make_app
from tests.support.databases import DB_KINDS, fresh_db
from tests.support.ingest import Station as StationClient
from tests.support.ingest import counts, screw_step
from tests.support.mosquitto import Mosquitto

SCANS = 20
# In the demo plant PLT1/PC1 (KIT-1) is partition 2 of 2; the line added here is 1 of 2.
OTHER_LINE = "PC2"


def test_partition_of_a_line_is_a_fixed_stable_hash() -> None:
    # Fixed values: a release that changed them would move lines between processes.
    assert owner("PLT1", "PC1", 2) == 2
    assert owner("PLT1", OTHER_LINE, 2) == 1
    assert [owner("B", f"L{i}", 3) for i in range(1, 7)] == [
        owner("B", f"L{i}", 3) for i in range(1, 7)
    ]
    assert {owner("B", f"L{i:02d}", 4) for i in range(40)} == {1, 2, 3, 4}


def test_filters_and_what_a_partition_leaves() -> None:
    plant = [("PLT1", "PC1"), ("PLT1", OTHER_LINE)]
    by_lines = Partition.parse(lines="PC1, PC3")
    assert by_lines is not None
    assert by_lines.filters(plant, prefix="taktline") == [
        "taktline/+/PC1/+/evt/#",
        "taktline/+/PC3/+/evt/#",
    ]
    second = Partition.parse(partition="2/2")
    assert second is not None
    assert second.filters(plant, prefix="taktline") == ["taktline/PLT1/PC1/+/evt/#"]
    others = second.others(plant, prefix="taktline", shared="taktline-ingest")
    assert "taktline/+/+/+/evt/#" in others
    assert "$share/taktline-ingest/taktline/+/+/+/evt/#" in others
    assert "taktline/PLT1/PC2/+/evt/#" in others
    assert "taktline/PLT1/PC1/+/evt/#" not in others
    assert Partition.parse() is None


@pytest.mark.parametrize(
    ("lines", "partition"),
    [("L1", "1/2"), (None, "0/2"), (None, "3/2"), (None, "x"), (",", None), ("L/1", None)],
)
def test_bad_partitions_are_refused(lines: str | None, partition: str | None) -> None:
    with pytest.raises(ValueError):
        Partition.parse(lines=lines, partition=partition)


def test_the_command_refuses_a_bad_partition(demo_db_url: str, tmp_path: Path) -> None:
    app = make_app(demo_db_url, tmp_path, MQTT_URL="mqtt://127.0.0.1:1")
    result = CliRunner(app).invoke(["ingest", "--lines", "PC1", "--partition", "1/2"])
    assert result.exit_code != 0
    assert "not both" in result.output


@pytest.fixture(params=DB_KINDS)
def two_lines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The demo plant (a 150-screw step in progress at KIT-1 on PC1) and a second line."""
    for url in fresh_db(request.param, request, tmp_path, demo=True):
        engine = get_engine(url)
        screw_step(engine, qty=150)
        with write_session(engine) as db:
            site = db.exec(select(Site)).one()
            assert site.id is not None
            line = Line(site_id=site.id, code=OTHER_LINE, name="Second line")
            db.add(line)
            db.flush()
            assert line.id is not None
            db.add(Station(line_id=line.id, code="KIT-21", name="Kitting 2", kind="kitting"))
        dispose_engine(url)
        yield url


def test_a_moved_partition_applies_what_was_queued_for_it(
    two_lines: str, broker: Mosquitto
) -> None:
    engine = get_engine(two_lines)
    start = counts(two_lines)

    def ingest(client_id: str, partition: str | None) -> Ingest:
        owned = Partition.parse(partition=partition) if partition else None
        started = Ingest(engine=engine, url=broker.url, client_id=client_id, partition=owned)
        started.start()
        assert started.subscribed.wait(10)
        return started

    kit1 = StationClient(broker.port)  # taktline/PLT1/PC1/KIT-1
    kit21 = StationClient(broker.port, prefix=f"taktline/PLT1/{OTHER_LINE}/KIT-21")
    # This session took the whole plant before; as partition 1/2 it must stop doing so.
    whole = ingest("ingest-a", None)
    kit1.wait_for_ingest()
    whole.stop()
    first = ingest("ingest-a", "1/2")  # PC2
    second = ingest("ingest-b", "2/2")  # PC1
    try:
        kit1.wait_for_ingest()
        kit21.wait_for_ingest()
        before = [kit1.scan("SCRM3", seq=n) for n in range(1, 4)]
        assert all(kit1.answer(m)["result"] == "accepted" for m in before)

        second.stop()  # PC1's owner goes away; its session keeps what arrives
        queued = []
        for n in range(4, 4 + SCANS):
            msg_id = f"queued-{n}"
            info = kit1.publish(
                {"msg_id": msg_id, "ts": "2026-03-02T08:00:00.000Z", "seq": n, "data": "SCRM3"}
            )
            info.wait_for_publish(10)
            queued.append(msg_id)
        # PC2's owner answers after those were routed: it never took PC1's.
        kit21.wait_for_ingest()
        assert not any(m in kit1.feedback for m in queued)
        assert counts(two_lines)["consumptions"] == 3

        moved = ingest("ingest-b", "2/2")  # the new owner, with the same session
        try:
            answers = [kit1.answer(m, timeout=30) for m in queued]
        finally:
            moved.stop()
    finally:
        first.stop()
        second.stop()
        kit1.close()
        kit21.close()
    assert [a["result"] for a in answers] == ["accepted"] * SCANS
    assert all(len(kit1.feedback[m]) == 1 for m in queued)
    after = counts(two_lines)
    assert after["consumptions"] == after["ledger"] == 3 + SCANS
    assert after["on_hand"] == start["on_hand"] - 3 - SCANS


def test_a_line_added_to_a_running_plant_is_taken_by_its_partition(
    plant: str, broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner of a new line subscribes to it on its next look at the lines; from
    then on the line's stations are answered (before, the broker drops what they send:
    docs/deploy.md says to start a new line's bridges after the owner logged it)."""
    monkeypatch.setattr(partition, "REFRESH_SECONDS", 0.2)
    engine = get_engine(plant)
    owned = Partition.parse(partition="1/2")
    ingest = Ingest(engine=engine, url=broker.url, client_id="ingest-new-line", partition=owned)
    ingest.start()
    kit21 = StationClient(broker.port, prefix=f"taktline/PLT1/{OTHER_LINE}/KIT-21")
    try:
        assert ingest.subscribed.wait(10)
        with write_session(engine) as db:
            site = db.exec(select(Site)).one()
            assert site.id is not None
            line = Line(site_id=site.id, code=OTHER_LINE, name="Second line")
            db.add(line)
            db.flush()
            assert line.id is not None
            db.add(Station(line_id=line.id, code="KIT-21", name="Kitting 2", kind="kitting"))
        kit21.wait_for_ingest()  # pings until the new line's owner answers
    finally:
        kit21.close()
        ingest.stop()
