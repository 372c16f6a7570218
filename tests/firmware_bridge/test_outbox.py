from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_bridge.outbox import Outbox, OutboxFull


def event(name: str) -> Any:
    return lambda seq: {"msg_id": f"id-{name}", "seq": seq, "data": name}


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(tmp_path / "outbox.sqlite")
    yield box
    box.close()


def payloads(box: Outbox) -> list[dict[str, Any]]:
    return [json.loads(row.payload) for row in box.pending(limit=1000)]


def test_rows_come_back_in_order_with_per_source_seq(outbox: Outbox) -> None:
    for name in ("a", "b", "c"):
        outbox.append("t/scan", "scanner1", event(name))
    outbox.append("t/device", "board", event("d"))
    assert [(p["data"], p["seq"]) for p in payloads(outbox)] == [
        ("a", 1),
        ("b", 2),
        ("c", 3),
        ("d", 1),
    ]
    first = outbox.pending(limit=1)[0]
    assert outbox.pending(after=first.id, limit=1)[0].msg_id == "id-b"


def test_delete_on_ack_and_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    rows = [box.append("t", "s", event(n)) for n in ("a", "b", "c")]
    box.delete(rows[0].id)
    box.close()

    box = Outbox(path)
    try:
        assert [p["data"] for p in payloads(box)] == ["b", "c"]
        assert len(box) == 2
        box.append("t", "s", event("d"))
        assert payloads(box)[-1]["seq"] == 4  # seq is not reused after a restart
    finally:
        box.close()


def test_refuse_new_when_full(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_messages=2)
    try:
        box.append("t", "s", event("a"))
        box.append("t", "s", event("b"))
        with caplog.at_level(logging.ERROR), pytest.raises(OutboxFull):
            box.append("t", "s", event("c"))
        assert "refusing new event" in caplog.text
        assert [p["data"] for p in payloads(box)] == ["a", "b"]
        box.delete(box.pending(limit=1)[0].id)
        box.append("t", "s", event("d"))
        assert [(p["data"], p["seq"]) for p in payloads(box)] == [("b", 2), ("d", 3)]
    finally:
        box.close()


def test_drop_oldest_when_full(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    box = Outbox(tmp_path / "o.sqlite", max_messages=2, when_full="drop_oldest")
    try:
        for name in ("a", "b", "c"):
            with caplog.at_level(logging.ERROR):
                box.append("t", "s", event(name))
        assert "dropped oldest event id-a" in caplog.text
        assert [p["data"] for p in payloads(box)] == ["b", "c"]
    finally:
        box.close()
