"""The hostile payloads of issue 13 on a broker set up like production: the listeners,
logins and ACL of ``taktline mqtt-credentials``, the station's own login publishing on
its own topic, the ingest on its login (its client id). Each payload is answered and
kept as a dead letter; a valid scan right after is accepted."""

from __future__ import annotations

import queue
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from server.db import get_engine
from server.ingest.worker import Ingest
from server.models import DeadLetter
from tests.support.credentials import Bridge, credentials, password
from tests.support.hostile import HOSTILE
from tests.support.mosquitto import credentials_broker

INGEST = "taktline-ingest-1"


def answer_to(bridge: Bridge, ref: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            feedback = bridge.feedback.get(timeout=max(deadline - time.monotonic(), 0.01))
        except queue.Empty:
            raise AssertionError(f"no answer to {ref}") from None
        if feedback.get("ref") == ref:
            return feedback


def test_hostile_payloads_from_a_station_login_are_answered_kept_and_harmless(
    plant: str, tmp_path: Path
) -> None:
    out, server_port, station_port = credentials(plant, tmp_path)
    url = f"mqtt://{INGEST}:{password(out, INGEST)}@127.0.0.1:{server_port}"
    with credentials_broker(tmp_path / "broker", out, port=server_port):
        ingest = Ingest(engine=get_engine(plant), url=url, client_id=INGEST).start()
        assert ingest.subscribed.wait(10), "the ingest's login could not subscribe"
        bridge = Bridge(station_port, password(out, "station-KIT-1"))
        try:
            bridge.ping()
            refs = {}
            for name, raw in HOSTILE.items():
                ref = "deep-1" if name == "deep" else raw.split(b'"msg_id": "')[1].split(b'"')[0]
                refs[name] = ref if isinstance(ref, str) else ref.decode()
                bridge.publish("evt/scan", raw)
                got = answer_to(bridge, refs[name])
                assert got["result"] == "rejected" and got["code"] == "bad_payload", name
            bridge.publish("evt/scan", {"msg_id": "good-1", "seq": 1, "data": "SCRM3"})
            assert answer_to(bridge, "good-1")["result"] == "accepted"
            assert ingest.alive()
        finally:
            bridge.close()
            ingest.stop()
    with Session(get_engine(plant)) as db:
        kept = db.exec(select(DeadLetter.msg_id).order_by(col(DeadLetter.id))).all()
    assert kept == list(refs.values())
