"""After the commit, tell the station's devices and screens what changed: one function
for every path (the tablet, the JSON API and the MQTT ingest).

For each event answered: its ``cmd/feedback`` payload (the bridge beeps, a stack
light shows it, an integrator hears it), then, once per station touched, the
station's new snapshot (the retained ``state`` topic and this process's live
screens). A rejection is published like an acceptance: every screen re-renders with
its banner, whichever path the event came in by. Where the messages go is the
caller's ``Sink``: the ingest publishes on its own MQTT client, a web process through
its publisher and live hub (``server.messaging.live.WebSink``). No Flask, no MQTT here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from station import service
from station import workflow as wf


class Sink(Protocol):
    def feedback(self, site: str, line: str, station: str, payload: dict[str, Any]) -> None:
        """Publish ``payload`` on the station's ``cmd/feedback`` topic."""

    def state(self, site: str, line: str, station: str, snapshot: dict[str, Any]) -> None:
        """Publish the station's snapshot (retained ``state``) and update live screens."""


@dataclass(frozen=True)
class Answer:
    """What one decided event changed, as the publisher needs it."""

    site: str
    line: str
    station: str
    feedback: dict[str, Any] | None
    state: wf.StationState | None = None


def answer(outcome: service.Outcome, *, site: str = "", line: str = "") -> Answer:
    """The ``Answer`` for an outcome; the state names the station's site and line
    (an unknown station has none: then the topic's, if the caller has one)."""
    state = outcome.state
    return Answer(
        site=state.site if state else site,
        line=state.line if state else line,
        station=outcome.station,
        feedback=outcome.feedback(),
        state=state,
    )


def after_commit(
    sink: Sink, answers: Iterable[Answer], *, acknowledge: Callable[[int], None] | None = None
) -> None:
    """Publish each answer's feedback (then ``acknowledge(i)``, the i-th answer's ack:
    feedback first, so a crash in between leaves the message unacked, redelivered and
    answered ``duplicate``), then each touched station's last state, once."""
    states: dict[tuple[str, str, str], wf.StationState] = {}
    for i, a in enumerate(answers):
        if a.feedback is not None and a.station and a.site and a.line:
            sink.feedback(a.site, a.line, a.station, a.feedback)
        if acknowledge is not None:
            acknowledge(i)
        if a.state is not None:
            states[(a.site, a.line, a.station)] = a.state  # the last one counts
    for (site, line, station), state in states.items():
        sink.state(site, line, station, service.snapshot(state))
